"""The background's weight in the U-Net's decision, chosen on the validation split and folded into the network.

The U-Net's loss weighs the rare part pixels up (--class_balance, ENet's weights, and the Dice term) so that
it learns them at all; the price is a network that marks too much. On the dev val split (476 real faces)
the 256 px model's parts had a precision of 0.835 and a recall of 0.918. Multiplying the background's
probability by a scale s before the argmax trades that surplus recall for precision. Added as log(s) to
the background's logit (logits_conv's bias), the network's softmax *is* the rescaled distribution,
renormalised: an exported model needs nothing else, and its probabilities stay probabilities.

`choose_scale` scores each of SCALES on the pairs of a split (dataset-level F1, the test metric, with the
same flip averaging as the model will use) and returns the best; `fold_background_scale` edits the network.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from lipseg_tf.errors import UserError
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.train import metrics

if TYPE_CHECKING:   # TensorFlow is imported where it is used: parse_scale checks a flag before it loads
    import keras

log = logging.getLogger("lipseg_tf")

SCALES = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


def parse_scale(text: str) -> float | str:
    """--background_scale's value: "auto", or a number > 0; UserError in one line otherwise."""
    if text == "auto":
        return text
    try:
        scale = float(text)
    except ValueError:
        scale = float("nan")
    if not math.isfinite(scale) or scale <= 0:
        raise UserError(f"--background_scale {text!r}: expected auto or a number > 0 (1: the network as trained)")
    return scale


def choose_scale(probabilities: Callable, pairs, classes: ClassSpec, image_size: int,
                 scales: Sequence[float] = SCALES, batch_size: int = 8) -> tuple[float, dict[float, float]]:
    """(the scale of the background probability with the best mean F1 on `pairs`, {scale: mean F1}).

    probabilities: [-1, 1] images (B, S, S, 3) -> class probabilities (B, S, S, C), the model as it will
    be used (flip averaging included); pairs: find_pairs' PairSource of the split to choose on."""
    from lipseg_tf.train import pipeline

    dataset = pipeline.make_dataset(pairs, classes.colors, classes.flip_perm, training=False,
                                    image_size=image_size, scale_size=image_size, batch_size=batch_size,
                                    cache=False)
    weights = np.asarray(scales, np.float32)
    confusions = np.zeros((len(scales), classes.num_classes, classes.num_classes), np.int64)
    for images, labels in dataset:
        p = np.asarray(probabilities(images))
        labels = labels.numpy()
        for k, scale in enumerate(weights):
            rescaled = p.copy()
            rescaled[..., 0] *= scale
            confusions[k] += metrics.confusion_matrix(labels, rescaled.argmax(-1), classes.num_classes)
    if not confusions[0].sum():
        raise UserError("--background_scale auto: no pairs to choose the scale on")
    means = {float(s): metrics.summary(c, classes.names, 0)["mean_f1"] for s, c in zip(scales, confusions)}
    best = max(means, key=lambda s: (means[s] if means[s] is not None else -1.0, -abs(math.log(s))))
    return best, means


def fold_background_scale(network: keras.Model, scale: float) -> None:
    """Multiply the background's probability by `scale` inside the network (log(scale) added to its
    logit in logits_conv's bias: with a patch, each pixel's of it); the softmax renormalises."""
    if scale == 1.0:
        return
    layer = network.get_layer("logits_conv")
    bias = layer.bias.numpy()
    bias[::network.output_shape[-1]] += math.log(scale)  # logits pixel by pixel, each pixel's classes together
    layer.bias.assign(bias)


def choose_on_val(probabilities: Callable, classes: ClassSpec, image_size: int, pairs_dir) -> float:
    """--background_scale auto: the best of SCALES on pairs_dir's val split, with `probabilities` the model
    as its export will run it (savedmodel.Segmenter.probabilities_at_model_size: flip averaging included)."""
    import tensorflow as tf

    from lipseg_tf.train import pipeline

    try:
        pairs = pipeline.find_pairs(pairs_dir, "val")
    except UserError as err:
        raise UserError(f"--background_scale auto chooses on a val split: {err}") from None
    scale, means = choose_scale(tf.function(probabilities, reduce_retracing=True), pairs, classes, image_size)
    log.info("--background_scale auto: %g, mean F1 %.4f on the %d val pairs of %s (as trained: %.4f; %s)", scale,
             means[scale], pairs.count, pairs_dir, means[1.0], ", ".join(f"{s:g}: {f:.4f}" for s, f in means.items()))
    return scale
