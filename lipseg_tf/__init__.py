"""lipseg_tf: lips-and-eyes segmentation of face photos in TensorFlow/Keras.

Importing the package runs nothing. Its folders are the stages of the data flow, each importing only
from those before it (tests/test_layering.py checks this):

    prep/      dataset layout -> masks (g_mask.py) -> AB pairs (process.py); no TensorFlow
    train/     tf.data pipeline -> networks -> the U-Net and pix2pix trainers (unet.py, pix2pix.py)
    evaluate/  test mode, metrics, grids (print.py)
    serve/     SavedModel and TFLite export, face alignment, predict.py
    cli/       one main per root script, with its command line
    tools/     the demo, the benchmarks, the synthetic sample's command line

errors.py (UserError), quiet.py and memory.py sit below them all.

The Python API (serve/api.py) is reached from here on first use, so `import lipseg_tf` stays cheap:

    seg = lipseg_tf.Segmenter()      # the shipped model; lipseg_tf.Segmenter("export/unet") for your own
    result = seg("photo.jpg")        # result.labels: (H, W) uint8 class ids, result.classes their names
"""

__version__ = "0.1.0"
__all__ = ["Segmenter", "Result", "UserError"]


def __getattr__(name: str):
    """lipseg_tf.Segmenter, lipseg_tf.Result, lipseg_tf.UserError: imported on first use."""
    if name in ("Segmenter", "Result"):
        from lipseg_tf.serve import api
        return getattr(api, name)
    if name == "UserError":
        from lipseg_tf.errors import UserError
        return UserError
    raise AttributeError(f"module 'lipseg_tf' has no attribute {name!r}")
