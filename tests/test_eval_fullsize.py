"""tools/eval_fullsize.py: predict.py's full-size masks scored on a CelebAMask-HQ split, on a tiny dataset
in that layout whose photo colours say the class, with a network that reads the class off the colour."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import COLORS, PHOTO_RGB, face_labels
from lipseg_tf.prep import celebamask
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.masks import META_FILE, mask_meta
from lipseg_tf.prep.parts import DEFAULT_PARTS
from lipseg_tf.serve.predict import Model
from lipseg_tf.serve.savedmodel import Segmenter, export
from lipseg_tf.tools import eval_fullsize

MASK_SIZE, PHOTO_SIZE, MODEL_SIZE = 64, 128, 32  # as 512 px annotations, 1024 px photos, a 256 px model
TEST_IDS, TRAIN_IDS = (0, 2, 3, 5, 6), (1, 4)


class ColourNetwork:
    """Class probabilities from the pixel colour: a softmax over the distances to PHOTO_RGB's colours."""

    def __init__(self):
        self.centres = tf.constant(PHOTO_RGB / 127.5 - 1.0, tf.float32)

    def __call__(self, images, training=False):
        distance = tf.reduce_sum(tf.square(images[..., None, :] - self.centres), axis=-1)
        return tf.nn.softmax(-distance / 0.05, axis=-1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A CelebAMask-HQ root (photos 128 px, mapping file: 5 test and 2 train ids), g_mask-style colour masks
    at 64 px, and the same masks with the eyes swapped; {"root", "masks", "swapped", "model"}."""
    root = tmp_path_factory.mktemp("fullsize")
    data_dir, masks, swapped = root / "CelebAMask-HQ", root / "masks", root / "swapped"
    for folder in (data_dir / celebamask.IMAGE_DIR, masks, swapped):
        folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["idx orig_idx orig_file"]
    for image_id in sorted(TEST_IDS + TRAIN_IDS):
        labels = face_labels(rng, MASK_SIZE)
        big = np.repeat(np.repeat(labels, 2, 0), 2, 1)
        photo = np.clip(PHOTO_RGB[big] + rng.normal(0, 8, big.shape + (3,)), 0, 255).astype(np.uint8)
        Image.fromarray(photo).save(data_dir / celebamask.IMAGE_DIR / f"{image_id}.png")
        Image.fromarray(COLORS[labels]).save(masks / f"{image_id}.png")
        Image.fromarray(COLORS[np.choose(labels, [0, 2, 1, 3, 4])]).save(swapped / f"{image_id}.png")
        orig = celebamask.VAL_LAST + 10 + image_id if image_id in TEST_IDS else image_id  # 0-based orig_idx
        rows.append(f"{image_id} {orig} {orig + 1:06d}.jpg")
    (data_dir / celebamask.MAPPING_FILE).write_text("\n".join(rows) + "\n")
    for folder in (masks, swapped):
        (folder / META_FILE).write_text(json.dumps(mask_meta(data_dir, DEFAULT_PARTS, "color")))
    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    model = root / "model"
    export(Segmenter(ColourNetwork(), MODEL_SIZE, classes, output="probabilities"), classes, model)
    return {"root": data_dir, "masks": masks, "swapped": swapped, "model": model}


def test_split_photos_follow_the_official_split(dataset):
    found = eval_fullsize.split_photos(dataset["root"], dataset["masks"], "test")
    assert [image_id for image_id, _, _ in found] == list(TEST_IDS)
    assert [i for i, _, _ in eval_fullsize.split_photos(dataset["root"], dataset["masks"], "train")] == list(TRAIN_IDS)


def test_decode_mask_styles():
    labels = np.array([[0, 1, 2], [3, 4, 0]], np.uint8)
    meta = mask_meta("x", DEFAULT_PARTS, "color")
    np.testing.assert_array_equal(eval_fullsize.decode_mask(COLORS[labels], meta), labels)
    noisy = np.clip(COLORS[labels].astype(int) + np.array([[[9, -9, 5]]]), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(eval_fullsize.decode_mask(noisy, meta), labels)  # nearest palette colour
    np.testing.assert_array_equal(eval_fullsize.decode_mask(labels, mask_meta("x", DEFAULT_PARTS, "index")), labels)
    binary = eval_fullsize.decode_mask(np.where(labels > 0, 255, 0).astype(np.uint8),
                                       mask_meta("x", DEFAULT_PARTS, "binary"))
    np.testing.assert_array_equal(binary, labels > 0)


def test_full_size_masks_score_the_colour_reader_near_perfect_and_catch_swapped_eyes(dataset, tmp_path):
    out = tmp_path / "eval"
    assert eval_fullsize.main(["--model", str(dataset["model"]), "--data-dir", str(dataset["root"]), "--masks",
                               str(dataset["masks"]), "--split", "test", "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["photos"] == len(TEST_IDS) and result["split"] == "test" and result["detect"] is False
    full, crop = result["full_size"], result["crop_size"]
    assert full["images"] == crop["images"] == len(TEST_IDS)
    # The colour reader is right but for the borders: a 4x upscale of its 32 px answer, pasted back smoothly.
    assert all(part["f1"] > 0.9 for part in full["parts"].values()), full
    assert full["mean_f1"] > 0.93 and crop["mean_f1"] > 0.85
    assert full["mean_f1"] > crop["mean_f1"]  # the smooth paste-back loses nothing to the crop size (0.97, 0.93)
    # Scored against masks whose eyes are swapped, the eyes fail and the lips don't.
    swapped = eval_fullsize.evaluate_fullsize(Model(dataset["model"]), dataset["root"], dataset["swapped"])
    assert swapped["full_size"]["parts"]["l_eye"]["f1"] < 0.05 and swapped["full_size"]["parts"]["r_eye"]["f1"] < 0.05
    assert swapped["full_size"]["parts"]["u_lip"]["f1"] == full["parts"]["u_lip"]["f1"]


def test_crop_targets_are_the_mask_at_the_crop_pixel_centres():
    target = np.arange(64, dtype=np.uint8).reshape(8, 8)
    matrix = np.array([[0.5, 0, 0], [0, 0.5, 0]])  # the 8 px photo -> a 4 px crop: every second pixel
    np.testing.assert_array_equal(eval_fullsize.crop_targets(target, matrix, 4), target[1::2, 1::2])
    shifted = np.array([[1, 0, 2.0], [0, 1, 0]])   # crop x = photo x + 2: two columns before the photo
    np.testing.assert_array_equal(eval_fullsize.crop_targets(target, shifted, 4)[:, :2], 0)
    np.testing.assert_array_equal(eval_fullsize.crop_targets(target, shifted, 4)[:, 2:], target[:4, :2])
