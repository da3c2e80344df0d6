"""--augment face: one geometric and photometric draw per pair, applied to photo and labels together."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from lipseg_tf.errors import UserError
from lipseg_tf.prep.classes import classes_for_training
from lipseg_tf.train import augment, pipeline

SIZE = 32
COLORS = np.array([(0, 0, 0), (250, 0, 0), (0, 250, 0)], np.float32)


def labelled_photo():
    """Labels with two blocks and a photo painted from them, so every pixel's colour names its class."""
    labels = np.zeros((SIZE, SIZE, 1), np.int32)
    labels[8:16, 6:14] = 1
    labels[18:26, 16:28] = 2
    return tf.constant(COLORS[labels[..., 0]]), tf.constant(labels)


def test_identity_parameters_give_the_identity_transform():
    matrix = augment.affine_matrix(tf.constant(1.0), tf.constant(0.0), tf.constant(0.0), tf.constant(0.0), SIZE)
    np.testing.assert_allclose(matrix.numpy(), [1, 0, 0, 0, 1, 0, 0, 0], atol=1e-6)


def test_a_pure_shift_moves_photo_and_labels_by_whole_pixels():
    image, labels = labelled_photo()
    matrix = augment.affine_matrix(tf.constant(1.0), tf.constant(0.0), tf.constant(3.0), tf.constant(-2.0), SIZE)
    moved = augment._warp(tf.cast(labels, tf.float32), matrix, "NEAREST", 0.0).numpy()
    np.testing.assert_array_equal(moved[6:14, 9:17], 1)        # rows -2, columns +3
    assert moved.sum() == labels.numpy().sum()


def test_geometry_moves_photo_and_labels_together_and_adds_no_label_values():
    image, labels = labelled_photo()
    for seed in range(6):
        warped_image, warped_labels = augment.geometry(image, labels, tf.constant([seed, 7], tf.int64), SIZE)
        warped_labels = warped_labels.numpy()[..., 0]
        assert set(np.unique(warped_labels)) <= {0, 1, 2}
        # Inside each block (away from its edges, where the bilinear photo and the nearest labels
        # may differ) the photo has the colour of the pixel's class.
        nearest = np.argmin(((warped_image.numpy()[..., None, :] - COLORS) ** 2).sum(-1), axis=-1)
        padded = np.pad(warped_labels, 1, mode="edge")
        interior = np.all([padded[1 + dy:SIZE + 1 + dy, 1 + dx:SIZE + 1 + dx] == warped_labels
                           for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0) & (warped_labels > 0)
        assert interior.sum() > 20 and (nearest[interior] == warped_labels[interior]).all()


def test_draws_repeat_with_the_seed_and_change_with_it():
    image, labels = labelled_photo()
    first = augment.face_augment(image, labels, tf.constant([1, 2], tf.int64), SIZE)
    again = augment.face_augment(image, labels, tf.constant([1, 2], tf.int64), SIZE)
    other = augment.face_augment(image, labels, tf.constant([3, 2], tf.int64), SIZE)
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    np.testing.assert_array_equal(first[1].numpy(), again[1].numpy())
    assert not np.array_equal(first[0].numpy(), other[0].numpy())
    assert first[0].shape == (SIZE, SIZE, 3) and first[1].dtype == tf.int32
    assert 0.0 <= first[0].numpy().min() and first[0].numpy().max() <= 255.0


def test_blur_keeps_a_flat_photo_flat_and_softens_an_edge():
    flat = tf.fill((SIZE, SIZE, 3), 100.0)
    np.testing.assert_allclose(augment.blur(flat, tf.constant(1.0)).numpy()[4:-4, 4:-4], 100.0, rtol=1e-5)
    edge = np.zeros((SIZE, SIZE, 3), np.float32)
    edge[:, SIZE // 2:] = 200.0
    row = augment.blur(tf.constant(edge), tf.constant(1.0)).numpy()[SIZE // 2, :, 0]
    assert 0 < row[SIZE // 2 - 1] < 100 < row[SIZE // 2] < 200


def test_make_dataset_with_face_augment(tiny_pairs):
    source = pipeline.find_pairs(tiny_pairs["png"], "train")
    classes = classes_for_training(tiny_pairs["png"], None, None)
    ds = pipeline.make_dataset(source, classes.colors, classes.flip_perm, training=True, image_size=32,
                               scale_size=36, batch_size=2, augment="face")
    images, labels = next(iter(ds))
    assert images.shape == (2, 32, 32, 3) and labels.shape == (2, 32, 32)
    assert -1.0 <= images.numpy().min() and images.numpy().max() <= 1.0
    assert set(np.unique(labels.numpy())) <= set(range(classes.num_classes))
    with pytest.raises(UserError, match="--augment"):
        pipeline.make_dataset(source, classes.colors, classes.flip_perm, training=True, image_size=32,
                              scale_size=36, batch_size=2, augment="strong")


@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_augment_is_an_option_of_both_trainers(model):
    from lipseg_tf.cli import runner

    args = runner.build_parser(model).parse_args(["--mode", "train", "--augment", "face"])
    assert runner.config_from_args(model, args).augment == "face"
    assert runner.config_from_args(model, runner.build_parser(model).parse_args(["--mode", "train"])).augment == "none"
    with pytest.raises(SystemExit):
        runner.build_parser(model).parse_args(["--mode", "train", "--augment", "strong"])
