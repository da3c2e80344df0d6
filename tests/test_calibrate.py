"""train/calibrate.py: the background's weight in the decision, chosen on a val split and folded into the
U-Net (unet.py --background_scale, tools/reexport.py --background_scale)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from helpers import PHOTO_RGB, make_ab_dataset
from lipseg_tf.errors import UserError
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.parts import DEFAULT_PARTS
from lipseg_tf.train import calibrate, networks, pipeline

CLASSES = ClassSpec.create(DEFAULT_PARTS, "color")


def over_marking(images):
    """Probabilities of a model that marks too much: each pixel's class from its photo colour, and a
    one-pixel ring of background around every part with the part at 0.55 (background 0.45)."""
    rgb = (np.asarray(images) + 1.0) * 127.5
    labels = ((rgb[..., None, :] - PHOTO_RGB) ** 2).sum(-1).argmin(-1)
    grown = tf.nn.max_pool2d(tf.constant(labels[..., None], tf.float32), 3, 1, "SAME").numpy()[..., 0].astype(int)
    ring = (labels == 0) & (grown > 0)
    probabilities = np.full(labels.shape + (5,), 0.025, np.float32)
    np.put_along_axis(probabilities, labels[..., None], 0.9, axis=-1)
    probabilities[ring] = 0.0
    probabilities[ring, 0] = 0.45
    probabilities[ring, grown[ring]] = 0.55
    return probabilities


def test_choose_scale_undoes_a_model_that_marks_too_much(tmp_path):
    pairs_dir = make_ab_dataset(tmp_path / "ab", {"val": 4}, size=32, jitter_parts=False)
    pairs = pipeline.find_pairs(pairs_dir, "val")
    scale, means = calibrate.choose_scale(over_marking, pairs, CLASSES, 32)
    # 0.45 * 1.25 > 0.55: the smallest scale of SCALES that gives the ring back to the background.
    assert scale == 1.25
    assert set(means) == set(calibrate.SCALES)
    assert means[1.25] > means[1.0] + 0.02
    # At 8 the parts' own 0.9 still beat the background's 0.2: as good as 1.25, and the smaller scale wins.
    assert means[8.0] == means[1.25]


@pytest.mark.parametrize("patch", [1, 2])
def test_fold_background_scale_rescales_the_softmax_inside_the_network(patch):
    network = networks.build_unet(5, 4, 2, 32, patch=patch)
    images = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=1)
    before = network(images, training=False).numpy()
    calibrate.fold_background_scale(network, 3.0)
    after = network(images, training=False).numpy()
    expected = before.copy()
    expected[..., 0] *= 3.0
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(after, expected, atol=1e-5)


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "big"])
def test_a_bad_background_scale_is_one_line(text):
    with pytest.raises(UserError, match=r"--background_scale .*expected auto or a number > 0"):
        calibrate.parse_scale(text)
    assert calibrate.parse_scale("auto") == "auto" and calibrate.parse_scale("2.5") == 2.5
