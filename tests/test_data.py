"""train/pipeline.py: AB decoding, the tf.data pipeline (test and training modes, aligned jitter, flip swaps
left/right), file discovery errors, and the pix2pix colour <-> class conversions."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import COLORS, FLIP, PHOTO_RGB, make_ab_dataset, save_ab, write_ab_pairs
from lipseg_tf.errors import UserError
from lipseg_tf.train import pipeline


def test_flip_permutation_swaps_the_eyes_only():
    np.testing.assert_array_equal(FLIP, [0, 2, 1, 3, 4])


def test_decode_pair_maps_palette_colours_to_class_ids(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, (16, 16))
    photo = rng.integers(0, 256, (16, 16, 3))
    path = save_ab(tmp_path / "ab.png", photo, COLORS[labels])
    image, decoded = pipeline.decode_pair(tf.constant(str(path)), tf.constant(COLORS))
    assert image.dtype == tf.uint8 and decoded.dtype == tf.uint8
    np.testing.assert_array_equal(image.numpy(), photo)
    np.testing.assert_array_equal(decoded.numpy()[..., 0], labels)


def test_decode_pair_maps_slightly_off_colours_to_the_nearest(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 5, (16, 16))
    noisy = np.clip(COLORS[labels].astype(int) + rng.integers(-10, 11, (16, 16, 3)), 0, 255)
    assert np.any(noisy != COLORS[labels])
    path = save_ab(tmp_path / "ab.png", np.zeros((16, 16, 3)), noisy)
    _, decoded = pipeline.decode_pair(tf.constant(str(path)), tf.constant(COLORS))
    np.testing.assert_array_equal(decoded.numpy()[..., 0], labels)


def test_test_mode_dataset_shapes_ranges_and_order(tmp_path):
    root, truth = tmp_path, write_ab_pairs(tmp_path, {"test": 5})
    files = pipeline.find_pair_files(root, "test")
    assert files == sorted(truth)
    ds = pipeline.make_dataset(files, COLORS, FLIP, training=False, image_size=32, scale_size=36, batch_size=2)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]          # the last partial batch is kept
    for (images, labels), start in zip(batches, (0, 2, 4)):
        assert images.dtype == tf.float32 and labels.dtype == tf.int32
        assert images.shape[1:] == (32, 32, 3) and labels.shape[1:] == (32, 32)
        assert images.numpy().min() >= -1.0 and images.numpy().max() <= 1.0
        for j, lab in enumerate(labels.numpy()):
            source = truth[files[start + j]]
            # nearest-neighbour 64 -> 32 keeps every other pixel; the order of files is kept
            assert set(np.unique(lab)) <= set(np.unique(source))
            assert np.mean(lab == source[::2, ::2]) > 0.9


@pytest.mark.parametrize("training", [False, True])
def test_resizing_never_creates_new_label_values(tmp_path, training):
    # Only classes 0 and 4 in a random pattern: interpolating ids (or the mask colours) would make 1..3.
    rng = np.random.default_rng(3)
    for i in range(2):
        labels = rng.choice([0, 4], (64, 64))
        save_ab(tmp_path / f"{i}.png", rng.integers(0, 256, (64, 64, 3)), COLORS[labels])
    files = pipeline.find_pair_files(tmp_path)
    ds = pipeline.make_dataset(files, COLORS, FLIP, training=training, image_size=32, scale_size=45,
                               batch_size=2, flip=False)
    values = np.unique(np.concatenate([lb.numpy().ravel() for _, lb in ds.take(3)]))
    assert set(values) == {0, 4}


def interior(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood holds one label (antialiased photo edges are blends).

    The crop's border rows and columns never count: their neighbours outside the crop are unknown.
    """
    padded = np.pad(labels, 1, constant_values=-1)
    same = np.ones(labels.shape, bool)
    for dy in range(3):
        for dx in range(3):
            same &= padded[dy:dy + labels.shape[0], dx:dx + labels.shape[1]] == labels
    return same


def test_training_jitter_keeps_photo_and_mask_aligned_and_flip_swaps_eyes(tmp_path):
    root = make_ab_dataset(tmp_path, {"train": 8}, noise=0.0)
    files = pipeline.find_pair_files(root, "train")
    ds = pipeline.make_dataset(files, COLORS, FLIP, training=True, image_size=32, scale_size=40, batch_size=4,
                               flip=True, seed=5, repeat=True)
    flipped_count = plain_count = 0
    crops = set()
    for images, labels in ds.take(6):
        photos = (images.numpy() + 1.0) * 127.5
        for photo, lab in zip(photos, labels.numpy()):
            # The l_eye photo colour sits on the right of every source photo: on the left means flipped.
            l_eye_colour = np.linalg.norm(photo - PHOTO_RGB[1], axis=-1) < 30
            assert l_eye_colour.sum() > 10
            flipped = np.nonzero(l_eye_colour)[1].mean() < 16
            flipped_count += flipped
            plain_count += not flipped
            # Where labels say k, the photo shows the colour class k was drawn with (swapped eyes if flipped).
            drawn_as = FLIP[lab] if flipped else lab
            inside = interior(lab)
            assert inside.sum() > 0.5 * lab.size
            distance = np.linalg.norm(photo - PHOTO_RGB[drawn_as], axis=-1)
            assert np.all(distance[inside] < 30), f"photo and mask misaligned (flipped={flipped})"
            # after a flip the eye drawn as l_eye, now on the picture's left, is labelled r_eye (2)
            assert set(np.unique(lab[l_eye_colour & inside])) == ({2} if flipped else {1})
            crops.add(tuple(np.argwhere(lab == 3).min(0)))
    assert flipped_count >= 3 and plain_count >= 3          # both occur over 24 samples
    assert len(crops) > 8                                   # the random crop moves


def test_training_dataset_is_reproducible_from_the_seed(tmp_path):
    root = make_ab_dataset(tmp_path, {"train": 4})
    files = pipeline.find_pair_files(root, "train")

    def first_batches(seed):
        ds = pipeline.make_dataset(files, COLORS, FLIP, training=True, image_size=32, scale_size=40,
                                   batch_size=2, seed=seed, repeat=True, deterministic=True)
        return [lb.numpy() for _, lb in ds.take(3)]

    a, b, c = first_batches(7), first_batches(7), first_batches(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, z) for x, z in zip(a, c))


def test_find_pair_files_uses_the_split_folder(tmp_path):
    root, truth = tmp_path, write_ab_pairs(tmp_path, {"train": 3, "test": 2}, size=16)
    assert pipeline.find_pair_files(root, "train") == sorted(p for p in truth if p.parent.name == "train")
    assert [p.name for p in pipeline.find_pair_files(root / "test", "test")] == ["test000.png", "test001.png"]


def test_find_pair_files_names_the_file_that_is_not_an_ab_pair(tmp_path):
    make_ab_dataset(tmp_path, {"train": 2}, size=16)
    bad = tmp_path / "train" / "train005.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(bad)
    with pytest.raises(UserError, match="twice as wide") as err:
        pipeline.find_pair_files(tmp_path, "train")
    assert str(bad) in str(err.value) and "64x64" in str(err.value)


def test_find_pair_files_names_an_unreadable_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="unreadable") as err:
        pipeline.find_pair_files(tmp_path)
    assert str(tmp_path / "broken.png") in str(err.value)


def test_find_pair_files_names_an_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match="no AB pair images") as err:
        pipeline.find_pair_files(tmp_path / "empty", "train")
    assert str(tmp_path / "empty") in str(err.value)
    with pytest.raises(UserError, match="folder not found") as err:
        pipeline.find_pair_files(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(err.value)


def test_labels_to_image_and_back_round_trip():
    labels = tf.constant(np.random.default_rng(4).integers(0, 5, (2, 8, 8)), tf.int32)
    image = pipeline.labels_to_image(labels, COLORS)
    assert image.shape == (2, 8, 8, 3)
    # palette colours scaled into [-MASK_RANGE, MASK_RANGE], inside the tanh's range
    expected = (COLORS[labels.numpy()] / 127.5 - 1.0) * pipeline.MASK_RANGE
    np.testing.assert_allclose(image.numpy(), expected, atol=1e-5)
    assert np.abs(image.numpy()).max() == pytest.approx(pipeline.MASK_RANGE)
    scores = pipeline.image_to_class_scores(image, COLORS).numpy()
    assert scores.shape == (2, 8, 8, 5)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(scores.argmax(-1), labels.numpy())
    assert scores.max(-1).min() > 0.99          # an exact palette colour is a confident class
    # a generator output a little off the palette colour still decodes to its class
    noisy = image + tf.random.uniform(image.shape, -0.1, 0.1, seed=3)
    np.testing.assert_array_equal(pipeline.image_to_class_scores(noisy, COLORS).numpy().argmax(-1), labels.numpy())
