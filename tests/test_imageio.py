"""prep/imageio.py's own PNG encoder for class-id masks: what PIL (any reader) decodes from it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lipseg_tf.prep import imageio


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (48, 33)])
def test_encode_gray_png_decodes_to_the_same_class_ids(shape):
    rng = np.random.default_rng(sum(shape))
    labels = rng.integers(0, 256, shape).astype(np.uint8)
    labels[: shape[0] // 2] = 0  # rows of background, as in a mask
    image = Image.open(io.BytesIO(imageio.encode_gray_png(labels)))
    assert image.format == "PNG" and image.mode == "L" and image.size == shape[::-1]
    np.testing.assert_array_equal(np.asarray(image), labels)


def test_save_labels_png_is_read_back_by_load_gray(tmp_path):
    labels = np.zeros((20, 30), np.uint8)
    labels[5:9, 10:20] = 3
    labels[12, 2:4] = 4
    imageio.save_labels_png(tmp_path / "mask.png", labels)
    np.testing.assert_array_equal(imageio.load_gray(tmp_path / "mask.png"), labels)


@pytest.mark.parametrize("array", [np.zeros((4, 4), np.int16), np.zeros((4, 4, 3), np.uint8),
                                   np.zeros((0, 4), np.uint8)])
def test_encode_gray_png_refuses_what_is_not_a_uint8_plane(array):
    with pytest.raises(ValueError, match="uint8 array"):
        imageio.encode_gray_png(array)
