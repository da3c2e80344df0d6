"""lipseg_tf: lips-and-eyes segmentation of face photos in TensorFlow/Keras.

Importing the package runs nothing; the data flow is laid out module by module:

    celebamask (dataset layout) -> masks (g_mask) -> pairs (process) -> data (tf.data)
    -> models -> train_unet / train_pix2pix -> evaluate -> export -> plots (print)
"""

__version__ = "0.1.0"
