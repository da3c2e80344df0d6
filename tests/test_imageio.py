"""prep/imageio.py's own PNG encoder for class-id masks: what PIL (any reader) decodes from it."""

from __future__ import annotations

import io
import os
import zlib

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


@pytest.mark.parametrize("band", [None, (0, 1), (699, 700), (300, 420), (0, 700)])
def test_encode_gray_png_skips_the_background_rows_with_a_valid_zlib_stream(band):
    """Rows of background above and below the band that holds classes are ready-made deflate blocks of
    zeros (more than one block's worth here): zlib itself inflates the whole stream, checksum included,
    to every row after its filter byte, and PIL reads the same class ids."""
    labels = np.zeros((700, 300), np.uint8)
    if band is not None:
        rows = slice(*band)
        labels[rows] = np.random.default_rng(band[0]).integers(0, 5, labels[rows].shape)
    png = imageio.encode_gray_png(labels)
    start = png.index(b"IDAT") + 4
    stream = png[start:start + int.from_bytes(png[start - 8:start - 4], "big")]
    unfiltered = np.frombuffer(zlib.decompress(stream), np.uint8).reshape(700, 301)  # raises on a bad checksum
    assert not unfiltered[:, 0].any()
    np.testing.assert_array_equal(unfiltered[:, 1:], labels)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), labels)


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


def _photo(shape=(61, 83)) -> np.ndarray:
    """A smooth colour photo (JPEG-like content, not noise)."""
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    return np.stack([(rows * 3) % 256, (cols * 2 + rows) % 256, (128 + 60 * np.sin(cols / 7))], -1).astype(np.uint8)


@pytest.mark.parametrize("options", [dict(quality=90), dict(quality=95, subsampling=0),
                                     dict(quality=85, progressive=True)])
def test_a_plain_jpeg_is_decoded_by_opencv_with_pils_pixels(tmp_path, options):
    path = tmp_path / "photo.jpg"
    Image.fromarray(_photo()).save(path, **options)
    fast = imageio._plain_jpeg(path)
    assert fast is not None and fast.shape == (61, 83, 3) and fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, np.asarray(Image.open(path).convert("RGB")))
    np.testing.assert_array_equal(imageio.load_rgb(path), fast)


def test_other_jpegs_are_left_to_pil(tmp_path):
    """Gray, CMYK, EXIF-turned and truncated JPEGs (and a PNG) skip OpenCV; load_rgb reads them as before."""
    photo = _photo()
    files = {"gray.jpg": (Image.fromarray(photo[..., 0]), {}), "cmyk.jpg": (Image.fromarray(photo).convert("CMYK"), {}),
             "photo.png": (Image.fromarray(photo), {})}
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees
    files["turned.jpg"] = (Image.fromarray(photo), {"exif": exif.tobytes()})
    for name, (image, options) in files.items():
        image.save(tmp_path / name, **options)
        assert imageio._plain_jpeg(tmp_path / name) is None, name
    assert imageio.load_rgb(tmp_path / "turned.jpg").shape == (83, 61, 3)   # turned upright by PIL
    assert imageio.load_rgb(tmp_path / "gray.jpg").shape == (61, 83, 3)
    Image.fromarray(photo).save(tmp_path / "whole.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:-200])
    assert imageio._plain_jpeg(tmp_path / "cut.jpg") is None
    with pytest.raises(imageio.UserError, match=r"cut\.jpg: unreadable image \(image file is truncated"):
        imageio.load_rgb(tmp_path / "cut.jpg")


def test_write_bytes_makes_its_folder_steps_past_a_stale_temporary_file_and_leaves_no_other(tmp_path, monkeypatch):
    import itertools

    folder = tmp_path / "new" / "folder"
    imageio.write_bytes(folder / "a.bin", b"first")
    assert (folder / "a.bin").read_bytes() == b"first" and sorted(p.name for p in folder.iterdir()) == ["a.bin"]
    monkeypatch.setattr(imageio, "_TEMP_NAMES", itertools.count(7))
    stale = folder / f".tmp-{os.getpid()}-7"
    stale.write_bytes(b"left by a process of the same id")
    imageio.write_bytes(folder / "a.bin", b"second")
    assert (folder / "a.bin").read_bytes() == b"second"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["a.bin", stale.name])
    assert stale.read_bytes() == b"left by a process of the same id"
