"""lipseg_tf: lips-and-eyes segmentation of face photos in TensorFlow/Keras.

Importing the package runs nothing. Its folders are the stages of the data flow, each importing only
from those before it (tests/test_layering.py checks this):

    prep/      dataset layout -> masks (g_mask.py) -> AB pairs (process.py); no TensorFlow
    train/     tf.data pipeline -> networks -> the U-Net and pix2pix trainers (unet.py, pix2pix.py)
    evaluate/  test mode, metrics, grids (print.py)
    serve/     SavedModel and TFLite export, face alignment, predict.py
    cli/       one main per root script, with its command line
    tools/     the demo, the benchmarks, the synthetic sample's command line

errors.py (UserError) sits below them all.
"""

__version__ = "0.1.0"
