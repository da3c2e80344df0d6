"""Class balance: a lip or an eye covers well under 1 % of a face photo, the background ~98 %.

Both trainers count the class frequencies of the first training masks (class_frequencies) and weigh
each pixel by its class (ENet's weights, balancing_weights): the U-Net in its cross-entropy
(--class_balance), pix2pix in its L1 term (--l1_balance, pixel_weight_table).
"""

from __future__ import annotations

import math

import numpy as np

from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.train import pipeline
from lipseg_tf.train.config import RunConfig


def class_frequencies(files, classes: ClassSpec, config: RunConfig, limit: int = 64) -> np.ndarray:
    """Share of each class among the pixels of the first `limit` training masks; (num_classes,) float64."""
    batch_size = 16
    ds = pipeline.make_dataset(files, classes.colors, classes.flip_perm, training=False, image_size=config.crop_size,
                               scale_size=config.scale_size, batch_size=batch_size, cache=False)
    counts = np.zeros(classes.num_classes)
    for _, labels in ds.take(math.ceil(limit / batch_size)):
        counts += np.bincount(labels.numpy().ravel(), minlength=classes.num_classes)
    return counts / max(counts.sum(), 1.0)


def balancing_weights(frequencies: np.ndarray, power: float = 1.0, c: float = 1.02) -> np.ndarray:
    """Class weights (1 / ln(c + frequency)) ** power: ENet's weighting (Paszke et al. 2016) at power 1.

    At power 1 a background covering 98 % of the pixels weighs 1.4 and an eye at 0.2 % weighs 45 (the
    bound is 1 / ln(c) = 50); power 0.5 takes the square root of that (1.2 and 6.7); power 0 gives 1s.
    """
    return (1.0 / np.log(c + np.asarray(frequencies, np.float64))) ** power


def pixel_weight_table(frequencies: np.ndarray, power: float) -> np.ndarray:
    """Per-class pixel weights balancing_weights(frequencies, power), scaled so that an average pixel
    weighs 1 (sum of frequency * weight = 1): a loss's weight (pix2pix's lambda) keeps its meaning.
    Power 0 gives 1s: the unweighted loss. (num_classes,) float32.
    """
    weights = balancing_weights(frequencies, power)
    return (weights / max(float(np.dot(frequencies, weights)), 1e-12)).astype(np.float32)
