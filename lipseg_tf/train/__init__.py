"""Training: the tf.data pipeline over AB pairs, the networks, and the two trainers (unet.py, pix2pix.py)
with what they share (config, run, checkpoints, validation, metrics, balance, distribute, precision, fitloop)."""
