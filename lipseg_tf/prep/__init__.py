"""Preparation: the CelebAMask-HQ layout -> one mask per photo (g_mask.py) -> AB pairs (process.py).

No TensorFlow here, except records.py (TFRecord is TensorFlow's format), which pairs.py imports only
when it writes --format tfrecord.
"""
