"""predict.py: alignment maths, paste-back, face detection on composed photos, and end-to-end runs.

The end-to-end runs use a "template" SavedModel (tests/helpers.py) exported through the real export
path: it ignores the image and always answers discs on the eyes and bands on the lips at the framing's
reference landmarks. So where its labels land in a photo tests detection, alignment and paste-back exactly,
with no trained model (and no accuracy claim) involved.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, TEMPLATE_CROP, TemplateNetwork, faceless_photo
from lipseg_tf.cli.predict import main as predict_main
from lipseg_tf.prep.sample import render_face
from lipseg_tf.serve import align, predict

SIZE = 64  # the template model's crop (conftest.py's template_model fixtures)
CROP = TEMPLATE_CROP  # the box of the framing the cropped template model was "trained" on


def grace_hopper() -> Path:
    from matplotlib import cbook
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def random_similarity(rng) -> np.ndarray:
    angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.2, 3.0)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, rng.uniform(-300, 300)], [s, c, rng.uniform(-300, 300)]])


# ------------------------------------------------------------------------------------------ alignment

def test_similarity_fit_maps_landmarks_and_inverse_maps_back():
    rng = np.random.default_rng(0)
    reference = align.reference_landmarks("sample", 128)
    for _ in range(20):
        crop_to_photo = random_similarity(rng)
        exact = align.face_transform(align.apply(crop_to_photo, reference), 128, "sample")
        np.testing.assert_allclose(exact, align.invert(crop_to_photo), atol=1e-9)
        noise = rng.normal(0, 0.5, (4, 2))  # detector noise, in crop pixels
        landmarks = align.apply(crop_to_photo, reference + noise)
        matrix = align.face_transform(landmarks, 128, "sample")
        np.testing.assert_allclose(matrix[:, :2] @ matrix[:, :2].T / align.scale_of(matrix) ** 2, np.eye(2),
                                   atol=1e-9)                                  # a rotation times a scale
        assert np.abs(align.apply(matrix, landmarks) - reference).max() < 2.5  # only the noise is left
        points = rng.uniform(-50, 200, (30, 2))
        back = align.apply(align.invert(matrix), align.apply(matrix, points))
        assert np.abs(back - points).max() < 1e-6
    with pytest.raises(ValueError, match="valid: celebahq, sample|valid: sample, celebahq"):
        align.reference_landmarks("ffhq", 128)


def test_sample_framing_matches_the_generator_geometry():
    """The 'sample' reference is the mean face of lipseg_tf.prep.sample: measured on its masks (512 px)."""
    measured = []
    for image_id in range(30):
        _, masks = render_face(1, image_id, 64, sunglasses=False)
        eyes = [np.argwhere(masks[p] > 0).mean(0)[::-1] + 0.5 for p in ("r_eye", "l_eye")]  # image left first
        lips = np.argwhere((masks["u_lip"] > 0) | (masks["l_lip"] > 0))[:, ::-1] + 0.5
        corners = [lips[lips[:, 0].argmin()], lips[lips[:, 0].argmax()]]
        measured.append(np.array(eyes + corners))
    error = np.abs(np.mean(measured, axis=0) - align.reference_landmarks("sample", 512))
    assert error.max() < 12, error  # pixels at 512: the mean of 30 random faces, not of all


@pytest.mark.parametrize("prefilter", [False, True])
def test_warp_puts_landmarks_at_the_reference_and_paste_back_returns_them(prefilter):
    """Dots drawn at a tilted face's landmarks land on the reference points of the crop (within 1 px),
    and blobs at the reference points of a crop mask land back on the landmarks (within 1 px); with the
    prefilter too (the faces are shrunk 1.25-3.75 times: block-averaged by 1-3 first)."""
    rng = np.random.default_rng(1)
    size = 128
    reference = align.reference_landmarks("sample", size)
    for _ in range(4):
        crop_to_photo = random_similarity(rng)
        crop_to_photo[:, :2] *= 2.5 / align.scale_of(crop_to_photo) * rng.uniform(0.5, 1.5)
        crop_to_photo[:, 2] = rng.uniform(150, 350, 2)
        landmarks = align.apply(crop_to_photo, reference)
        photo = np.full((600, 700, 3), 30, np.uint8)
        for x, y in landmarks:
            photo[int(y) - 6:int(y) + 7, int(x) - 6:int(x) + 7] = 250  # 13 px squares centred on the pixel
        matrix = align.face_transform(landmarks, size, "sample")
        crop = align.warp_face(photo, matrix, size, prefilter).astype(float).mean(-1)
        for (x, y), (px, py) in zip(reference, landmarks):
            window = np.zeros_like(crop)
            window[int(y) - 8:int(y) + 9, int(x) - 8:int(x) + 9] = 1
            weights = np.clip(crop - 30, 0, None) * window
            rows, cols = np.indices(crop.shape)
            found = np.array([(weights * (cols + 0.5)).sum(), (weights * (rows + 0.5)).sum()]) / weights.sum()
            expected = align.apply(matrix, [(int(px) + 0.5, int(py) + 0.5)])[0]  # the square's centre
            assert np.abs(found - expected).max() < 1.0
        labels = np.zeros((size, size), np.uint8)
        for k, (x, y) in enumerate(reference, start=1):
            labels[int(y) - 2:int(y) + 2, int(x) - 2:int(x) + 2] = k  # centred on the point (x, y) = (n, n)
        pasted = align.paste_labels(labels, matrix, photo.shape[:2])
        for k, (x, y) in enumerate(landmarks, start=1):
            rows, cols = np.nonzero(pasted == k)
            centre = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
            target = align.apply(align.invert(matrix), [(int(reference[k - 1][0]), int(reference[k - 1][1]))])[0]
            assert np.abs(centre - target).max() < 1.0


@pytest.mark.parametrize("prefilter", [False, True])
def test_warp_mirrors_past_the_photo_edge(prefilter):
    photo = np.zeros((100, 100, 3), np.uint8)
    photo[:, :50] = 200  # left half bright
    # a crop twice as wide as the photo, centred on it: mirrored, the left band outside is dark again
    matrix = np.array([[0.5, 0, 50.0], [0, 0.5, 25.0]])
    crop = align.warp_face(photo, matrix, 100, prefilter)
    assert crop[50, 10].max() < 5          # photo x = -80: mirror of x = 79 (dark)
    assert crop[50, 30].min() > 195        # photo x = -40: mirror of x = 39 (bright)
    assert crop[50, 60].min() > 195 and crop[50, 90].max() < 5


@pytest.mark.parametrize("mirror, edge", [(True, False), (False, True)])
def test_a_warp_that_reads_no_border_is_the_same_by_the_constant_border(mirror, edge):
    """sample_affine takes OpenCV's constant border (its faster path) where no sample reaches past the image's
    outermost pixel centres: the values of the border asked for, but for OpenCV's rounding of the mirrored
    path (1 level at a few pixels); where samples reach past them, that border's exactly."""
    import cv2

    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (480, 640, 3), np.uint8)
    border = cv2.BORDER_REFLECT if mirror else cv2.BORDER_REPLICATE
    for shift, reads_border in ((200.0, False), (-3.0, True), (539.0, True)):   # the crop covers 100 px
        to_source = np.array([[100 / 256, 0.02, shift], [-0.02, 100 / 256, 150.0]])
        to_index = np.concatenate([to_source[:, :2], (to_source[:, 2] + to_source[:, :2].sum(1) * 0.5 - 0.5)[:, None]],
                                  axis=1)   # output pixel index -> image pixel index, as OpenCV takes it
        assert align._samples_inside(to_index, (256, 256), image.shape[:2]) is not reads_border
        expected = cv2.warpAffine(image, to_index, (256, 256), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=border).astype(int)
        found = align.sample_affine(image, to_source, (256, 256), edge=edge, mirror=mirror).astype(int)
        assert np.abs(found - expected).max() <= (0 if reads_border else 1)
        assert np.mean(found != expected) < 0.002


def test_the_prefiltered_warp_is_the_plain_one_but_for_rounding():
    rng = np.random.default_rng(3)
    photo = np.asarray(Image.fromarray(rng.integers(0, 256, (12, 16, 3), np.uint8)).resize((640, 480), Image.BICUBIC))
    matrix = align.similarity_transform([(200.0, 150.0), (440.0, 170.0)], [(40.0, 60.0), (88.0, 60.0)])  # 1/5
    plain, prefiltered = (align.warp_face(photo, matrix, 128, p).astype(float) for p in (False, True))
    assert plain.std() > 20 and np.abs(plain - prefiltered).mean() < 1.5
    near = np.array([[1.0, 0, 0], [0, 1.0, 0]])  # not shrunk: no block average, the same crop
    np.testing.assert_array_equal(align.warp_face(photo, near, 64, True), align.warp_face(photo, near, 64))


def test_paste_back_of_a_known_mask():
    labels = np.arange(16, dtype=np.uint8).reshape(4, 4)
    # crop pixel (r, c) covers photo pixels (10 + 2r .. 11 + 2r, 5 + 2c .. 6 + 2c): scale 1/2, shifted
    matrix = np.array([[0.5, 0, -2.5], [0, 0.5, -5.0]])
    pasted = align.paste_labels(labels, matrix, (30, 20))
    expected = np.full((30, 20), -1, np.int16)
    expected[10:18, 5:13] = np.repeat(np.repeat(labels, 2, 0), 2, 1)
    np.testing.assert_array_equal(pasted, expected)
    # rotated by 90 degrees about the crop's centre, scale 1: a permutation of the labels, none new
    rot = np.array([[0, -1, 4.0], [1, 0, 0.0]])  # photo (x, y) -> crop (4 - y, x)
    pasted = align.paste_labels(labels, rot, (4, 4))
    np.testing.assert_array_equal(pasted, np.rot90(labels))
    assert set(np.unique(pasted)) == set(range(16))


def test_a_whole_crop_is_no_crop_and_a_known_crop_moves_the_landmarks():
    for framing in align.FRAMINGS:
        np.testing.assert_allclose(align.reference_landmarks(framing, 256, (0.0, 0.0, 1.0)),
                                   align.reference_landmarks(framing, 256))
    # celebahq's eyes (0.3796, 0.4722) (0.6204, 0.4722), mouth corners (0.4003, 0.75) (0.5997, 0.75), in the box
    # x0 0.2, y0 0.36, side 0.6 of the framing, at 300 px: ((x - 0.2) / 0.6 * 300, (y - 0.36) / 0.6 * 300)
    expected = [(89.8, 56.1), (210.2, 56.1), (100.15, 195.0), (199.85, 195.0)]
    np.testing.assert_allclose(align.reference_landmarks("celebahq", 300, (0.2, 0.36, 0.6)), expected, atol=1e-9)


def test_the_box_of_an_aligned_photo_is_the_face_transform_of_its_landmarks():
    crop = (0.2, 0.36, 0.6)
    matrix = align.box_transform((1000, 1000), 300, crop)
    np.testing.assert_allclose(align.apply(matrix, [(200, 360), (800, 960)]), [(0, 0), (300, 300)], atol=1e-9)
    # a CelebA-HQ photo's landmarks sit at the framing: aligning them gives the box itself
    landmarks = align.FRAMINGS["celebahq"] * 1000
    np.testing.assert_allclose(align.face_transform(landmarks, 300, "celebahq", crop), matrix, atol=1e-9)
    np.testing.assert_allclose(align.box_transform((40, 80), 20), [[0.25, 0, 0], [0, 0.5, 0]])  # no crop: all


def test_pasted_probabilities_give_smooth_borders_and_the_nearest_labels_inside():
    """A disc segmented in a 32 px crop and pasted back 8 times larger: its border is not on the crop's
    8-pixel grid, and wherever the crop's labels are the same all around, the labels are nearest's."""
    size, factor = 32, 8
    rows, cols = np.indices((size, size)) + 0.5
    disc = ((cols - 16) ** 2 + (rows - 15) ** 2 <= 9.3 ** 2).astype(np.uint8)
    probs = np.stack([np.where(disc, 0.2, 0.8), np.where(disc, 0.8, 0.2)], axis=-1)
    matrix = np.array([[1 / factor, 0, 0], [0, 1 / factor, 0]])  # photo 256 px -> crop 32 px
    shape = (size * factor, size * factor)
    window, pasted, inside = align.paste_probabilities(probs, matrix, shape)
    assert window == (0, 256, 0, 256) and inside.all() and pasted.shape == (256, 256, 2)
    labels = pasted.argmax(-1)
    nearest = align.paste_labels(disc, matrix, shape)
    # Where a crop pixel and its 8 neighbours agree, bilinear weights can't change the argmax.
    padded = np.pad(disc, 1, mode="edge")
    shifts = [padded[1 + dy:1 + dy + size, 1 + dx:1 + dx + size] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    uniform = np.repeat(np.repeat(np.min(shifts, 0) == np.max(shifts, 0), factor, 0), factor, 1)
    assert uniform.mean() > 0.6
    np.testing.assert_array_equal(labels[uniform], nearest[uniform])
    # The disc's left border, row by row: nearest's steps along the 8-pixel grid (5 columns here), the
    # pasted one cuts the staircase's corners (straight flanks stay where they are: on crop pixel edges).
    disc_rows = np.flatnonzero(labels.any(1) & nearest.any(1))
    left, nearest_left = labels[disc_rows].argmax(1), nearest[disc_rows].argmax(1)
    assert np.all(nearest_left % factor == 0)
    assert len(set(left)) >= 4 * len(set(nearest_left))
    assert np.abs(np.diff(left)).max() < np.abs(np.diff(nearest_left)).max()
    assert abs(int(labels.sum()) - int(nearest.sum())) < 0.03 * nearest.sum()  # the same disc, not a bigger one


def test_resample_crop_is_paste_probabilities_into_a_crop_with_a_fallback_outside():
    """The tracker's resampling of its average into the next crop: the values paste_probabilities gives
    for a window of the whole crop (four channels a warp, not one), fallback where the centre falls
    outside the old crop."""
    rng = np.random.default_rng(6)
    values = rng.random((32, 32, 5)).astype(np.float32)
    fallback = rng.random((32, 32, 5)).astype(np.float32)
    angle, scale = 0.1, 1.05
    matrix = np.array([[scale * np.cos(angle), -scale * np.sin(angle), -2.5],
                       [scale * np.sin(angle), scale * np.cos(angle), 3.0]])
    (y0, y1, x0, x1), pasted, inside = align.paste_probabilities(values, matrix, (32, 32))
    expected = fallback.copy()
    expected[y0:y1, x0:x1][inside] = pasted[inside]
    moved = align.resample_crop(values, matrix, fallback)
    assert 0.05 < 1 - inside.mean() and (moved == fallback).all(-1).mean() > 0.05  # some pixels fall outside
    np.testing.assert_allclose(moved, expected, atol=1e-4)


def test_overlay_colours_the_parts_and_draws_each_face_even_far_off_the_photo():
    """predict.overlay: part pixels mixed with their colour, the rest untouched but for the white box and
    keypoint rings of each detected face (outline inside the box); faces far off the photo, or with
    non-finite coordinates, draw nothing there and raise nothing."""
    photo = np.full((60, 80, 3), 40, np.uint8)
    labels = np.zeros((60, 80), np.uint8)
    labels[30:34, 50:60] = 3
    colors = np.array([(0, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 0), (255, 255, 0)], np.uint8)
    face = predict.Face((10.0, 12.0, 30.0, 20.0), 0.9, np.array([(20.0, 20.0), (30.0, 20.0)]))
    far = predict.Face((1e12, -1e12, 5.0, 5.0), 0.9, np.array([(np.nan, np.inf), (-1e15, 3.0)]))
    result = predict.PhotoResult(labels, [face, far], [], np.full((60, 80), -1, np.int16), {})
    drawn = predict.overlay(photo, result, colors)
    assert drawn.shape == photo.shape and drawn.dtype == np.uint8 and (photo == 40).all()  # a copy
    mixed = np.round((1 - predict.OVERLAY_ALPHA) * 40 + predict.OVERLAY_ALPHA * np.array([255, 0, 0])).astype(int)
    assert (drawn[30:34, 50:60] == mixed).all()
    white = (drawn == 255).all(-1)
    assert white[12, 10:40].all() and white[31, 10:40].all() and white[12:32, 10].all() and white[12:32, 39].all()
    assert not white[11].any() and not white[:, 9].any() and not white[32:].any() and not white[:, 41:].any()
    for x in (20, 30):  # a ring around each keypoint, about 2 px out
        assert white[16:25, x - 4:x + 5].sum() >= 4 and not white[20, x]
    untouched = ~white
    untouched[30:34, 50:60] = False
    assert (drawn[untouched] == 40).all()


def test_class_argmax_is_numpys_argmax_ties_and_all():
    rng = np.random.default_rng(9)
    values = rng.integers(0, 4, (3, 16, 16, 5)).astype(np.float32)  # many ties
    found = align.class_argmax(values)
    assert found.dtype == np.uint8 and found.shape == (3, 16, 16)
    np.testing.assert_array_equal(found, values.argmax(-1))
    np.testing.assert_array_equal(align.class_argmax(values[0, :, :, :2]), values[0, :, :, :2].argmax(-1))


def test_class_groups_give_the_same_resampling_and_argmax_as_the_array():
    """The tracker keeps its averages as align.class_groups (contiguous groups of four classes, then three
    or one): split so, resample_crop, paste_argmax and groups_argmax give what they give for the array."""
    rng = np.random.default_rng(8)
    assert [g.shape[-1] for g in align.class_groups(np.zeros((4, 4, 5), np.float32))] == [4, 1]
    assert [g.shape[-1] for g in align.class_groups(np.zeros((4, 4, 7), np.float32))] == [4, 3]
    assert [g.shape[-1] for g in align.class_groups(np.zeros((4, 4, 2), np.float32))] == [1, 1]
    values = rng.random((32, 32, 5)).astype(np.float32)
    values[..., 3] = values[..., 1]  # ties go to the lower class, as numpy's argmax's
    fallback = rng.random((32, 32, 5)).astype(np.float32)
    groups, fallback_groups = align.class_groups(values), align.class_groups(fallback)
    assert all(g.flags["C_CONTIGUOUS"] for g in groups)
    np.testing.assert_array_equal(np.concatenate(groups, -1), values)
    np.testing.assert_array_equal(align.groups_argmax(groups), values.argmax(-1))
    matrix = np.array([[0.99, 0.05, 1.7], [-0.05, 0.99, -2.2]])
    moved = align.resample_crop(groups, matrix, fallback_groups)
    assert isinstance(moved, list) and [g.shape for g in moved] == [(32, 32, 4), (32, 32, 1)]
    np.testing.assert_array_equal(np.concatenate(moved, -1), align.resample_crop(values, matrix, fallback))
    inside = np.array([[1.0, 0.0, 0.3], [0.0, 1.0, -0.2]])  # every pixel centre lands in the old crop
    np.testing.assert_array_equal(np.concatenate(align.resample_crop(groups, inside, fallback_groups), -1),
                                  align.paste_probabilities(values, inside, (32, 32))[1])
    photo_matrix = np.array([[0.5, 0.02, -10.0], [-0.02, 0.5, -6.0]])
    window, labels, best = align.paste_argmax(values, photo_matrix, (90, 120))
    same_window, same_labels, same_best = align.paste_argmax(groups, photo_matrix, (90, 120))
    assert same_window == window
    np.testing.assert_array_equal(same_labels, labels)
    np.testing.assert_array_equal(same_best, best)


def test_resample_crop_finds_the_pixels_outside_exactly_from_the_band_along_the_edges():
    """resample_crop places pixel centres only in a band along the crop's edges where a small move leaves
    the rest inside: the same pixels outside as placing every centre (paste_probabilities' rule), for
    small and large moves, turns and scales, and whole-pixel shifts that put centres on the border."""
    rng = np.random.default_rng(9)
    banded = 0
    for trial in range(300):
        size = int(rng.choice([16, 32, 128]))
        small = trial % 3 > 0
        angle = rng.normal(0, 0.05 if small else 0.8)
        scale = np.exp(rng.normal(0, 0.05 if small else 0.3))
        linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        shift = size / 2 + rng.normal(0, 2 if small else size / 4, 2) - linear @ [size / 2, size / 2]
        matrix = np.concatenate([linear, (np.round(shift) if trial % 7 == 0 else shift)[:, None]], axis=1)
        (y0, y1, x0, x1), cx, cy = align._window_coordinates(matrix, size, (size, size))
        expected = np.ones((size, size), bool)
        expected[y0:y1, x0:x1] = (cx < 0) | (cx >= size) | (cy < 0) | (cy >= size)
        rows, cols = align._outside_pixels(matrix, size)
        found = np.zeros((size, size), bool)
        found[rows, cols] = True
        np.testing.assert_array_equal(found, expected)
        banded += bool(expected.any()) and 0 < len(rows) and small
    assert banded > 100  # most small moves leave pixels outside, found from the band


def test_paste_argmax_is_the_argmax_of_the_pasted_probabilities():
    """paste_argmax (one class plane at a time) gives paste_probabilities' argmax and its probability,
    ties to the lower class, 0 outside the crop; and paste_faces takes the more probable of two faces."""
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2, (24, 24, 5)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    probs[:4, :4] = 0.2  # a tie of all five classes: background
    angle, scale = 0.4, 24 / 60
    matrix = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 3.0],
                       [scale * np.sin(angle), scale * np.cos(angle), -9.0]])
    shape = (70, 80)
    window, pasted, inside = align.paste_probabilities(probs, matrix, shape)
    same_window, labels, best = align.paste_argmax(probs, matrix, shape)
    assert same_window == window and labels.dtype == np.uint8 and 0 < inside.mean() < 1
    np.testing.assert_array_equal(labels, np.where(inside, pasted.argmax(-1), 0))
    np.testing.assert_array_equal(best, pasted.max(-1))
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4}
    # Two faces over the same pixels: each pixel takes the more probable part.
    other = np.roll(probs, 3, axis=-1)
    both, owner = predict.paste_faces(np.stack([probs, other]), [matrix, matrix], shape)
    _, other_pasted, _ = align.paste_probabilities(other, matrix, shape)
    (y0, y1, x0, x1) = window
    first, second = pasted.argmax(-1), other_pasted.argmax(-1)
    parts = inside & ((first > 0) | (second > 0))
    second_wins = (second > 0) & ((first == 0) | (other_pasted.max(-1) > pasted.max(-1)))
    assert 0 < second_wins[parts].mean() < 1
    np.testing.assert_array_equal(both[y0:y1, x0:x1][parts], np.where(second_wins, second, first)[parts])
    np.testing.assert_array_equal(owner[y0:y1, x0:x1][parts], second_wins[parts].astype(int))


def test_paste_argmax_of_a_box_inside_the_crop_is_the_per_class_argmax():
    """A parts box well inside the crop (the window's pixel centres all in it: no in-crop test made) and
    one reaching past it, with 1, 5 and 6 classes (resampled four a warp): each class resampled on its own
    by sample_affine, then argmax; 0 where a pixel's centre falls outside the crop."""
    rng = np.random.default_rng(7)
    angle, scale = 0.3, 24 / 50
    matrix = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 2.0],
                       [scale * np.sin(angle), scale * np.cos(angle), -7.0]])
    shape = (80, 90)
    for classes in (1, 5, 6):
        logits = rng.normal(0, 2, (24, 24, classes)).astype(np.float32)
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        for box in ((6.0, 7.0, 17.0, 18.0), (0.0, 0.0, 24.0, 12.0)):
            window, labels, best = align.paste_argmax(probs, matrix, shape, box)
            (y0, y1, x0, x1) = window
            assert y1 - y0 > 5 and x1 - x0 > 5
            to_crop = align._window_to_crop(matrix, x0, y0)
            planes = np.stack([align.sample_affine(np.ascontiguousarray(probs[..., k]), to_crop, (x1 - x0, y1 - y0),
                                                   edge=True) for k in range(classes)], -1)
            _, cx, cy = align._window_coordinates(matrix, 24, shape, box)
            inside = (cx >= 0) & (cx < 24) & (cy >= 0) & (cy < 24)
            assert inside.all() == (box[0] > 0)  # the first box lies inside the crop, the second does not
            np.testing.assert_array_equal(labels, np.where(inside, planes.argmax(-1), 0))
            np.testing.assert_allclose(best, planes.max(-1), atol=1e-6)


def test_a_photos_part_areas_are_counted_over_its_faces_crops():
    labels = np.zeros((60, 80), np.uint8)
    labels[10:14, 20:30] = 1
    labels[40:45, 50:52] = 3
    classes = ("background", "l_eye", "r_eye", "u_lip", "l_lip")
    shift = np.array([[1.0, 0.0, -15.0], [0.0, 1.0, -5.0]])  # a 40 px crop from (15, 5)
    window = predict._faces_window([shift, shift + np.array([[0, 0, -30.0], [0, 0, -30.0]])], 40, labels.shape)
    assert window == (slice(5, 60), slice(15, 80))
    assert predict._part_areas(labels[window], classes) == predict._part_areas(labels, classes) == {
        "l_eye": 40, "r_eye": 0, "u_lip": 10, "l_lip": 0}
    assert predict._faces_window([], 40, labels.shape) == (slice(0, 0), slice(0, 0))


# --------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def detector():
    return predict.FaceDetector(min_face=40, min_confidence=0.9)


def two_sample_faces() -> np.ndarray:
    """Two synthetic faces (ids MTCNN detects) side by side on a grey photo, 620 x 300."""
    photo = np.full((300, 620, 3), 120, np.uint8)
    for image_id, x in ((2, 20), (3, 340)):
        face, _ = render_face(0, image_id, 256)
        photo[22:278, x:x + 256] = face
    return photo


# ---------------------------------------------------------------------------------------- detection

def test_a_photo_with_two_faces_gives_two(detector, template_model):
    photo = two_sample_faces()
    faces = detector(photo)
    assert len(faces) == 2
    assert faces[0].box[0] + faces[0].box[2] < 300 < faces[1].box[0]  # one in each half
    result = predict.segment_photo(photo, predict.Model(template_model), detector)
    for index, (x0, x1) in enumerate(((20, 276), (340, 596))):
        rows, cols = np.nonzero(result.owner == index)
        assert len(cols) > 50 and x0 <= cols.min() and cols.max() < x1  # each face's parts in its own half
        assert set(np.unique(result.labels[rows, cols])) == {1, 2, 3, 4}


def test_a_photo_without_a_face_gives_none(detector):
    assert detector(faceless_photo()) == []


# --------------------------------------------------------------------------------------- end to end

@pytest.mark.parametrize("options, overlay, min_confidence", [
    (["--detector", "mtcnn", "--save", "mask,json,overlay"], True, 0.9),
    ([], False, 0.7),                        # the defaults: BlazeFace, mask and JSON only
])
def test_grace_hopper_end_to_end(tmp_path, template_model, options, overlay, min_confidence):
    out = tmp_path / "out"
    assert predict_main(["--model", str(template_model), "--input", str(grace_hopper()), "--output", str(out),
                         *options]) == 0
    summary = json.loads((out / predict.SUMMARY_FILE).read_text())
    assert summary["photos"] == 1 and summary["faces"] == 1 and summary["photos_without_face"] == []
    record = json.loads((out / "grace_hopper.json").read_text())
    face, = record["faces"]
    mask = np.asarray(Image.open(out / "grace_hopper-mask.png"))
    assert mask.shape == (600, 512) and mask.dtype == np.uint8
    assert (out / "grace_hopper-overlay.png").is_file() == overlay
    assert (record["overlay"] == "grace_hopper-overlay.png") == overlay
    if overlay:
        assert np.asarray(Image.open(out / "grace_hopper-overlay.png")).shape == (600, 512, 3)
    rows, cols = np.nonzero(mask)
    x, y, w, h = face["box"]
    assert len(rows) > 100 and set(np.unique(mask)) == {0, 1, 2, 3, 4}
    assert x <= cols.min() and cols.max() < x + w and y <= rows.min() and rows.max() < y + h
    # the template's eye discs land on the detected eyes, its lips between the mouth corners
    eye_gap = np.hypot(*np.subtract(face["landmarks"]["right_eye"], face["landmarks"]["left_eye"]))
    for k, name in ((1, "right_eye"), (2, "left_eye")):  # MTCNN's right_eye is the person's left: l_eye
        r, c = np.nonzero(mask == k)
        assert np.hypot(c.mean() + 0.5 - face["landmarks"][name][0], r.mean() + 0.5 - face["landmarks"][name][1]) \
            < 0.1 * eye_gap
    assert face["area"] == record["area"] == {n: int((mask == k).sum()) for k, n in
                                             enumerate(record["classes"]) if k > 0}
    assert min_confidence <= face["confidence"] <= 1 and len(face["photo_to_crop"]) == 2
    assert set(summary["mean_seconds"]) >= {"detect", "align_and_model", "paste", "write", "total"}
    assert summary["detector"] == (options[1] if options else "blazeface")


def test_a_folder_with_no_face_an_unreadable_file_and_a_rotated_webp(tmp_path, template_model):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("L", (160, 120), 128).save(photos / "blank.png")  # grayscale, no face
    # EXIF orientation 6: stored on its side, to be shown rotated 90 degrees clockwise
    image = Image.open(grace_hopper()).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(photos / "rotated.webp", exif=exif.tobytes(), quality=90)
    out = tmp_path / "out"
    assert predict_main(["--model", str(template_model), "--input", str(photos), "--output", str(out)]) == 1
    summary = json.loads((out / predict.SUMMARY_FILE).read_text())
    assert summary["photos"] == 2 and summary["faces"] == 1
    assert summary["photos_without_face"] == [str(photos / "blank.png")]
    assert [s["file"] for s in summary["skipped"]] == [str(photos / "broken.jpg")]
    assert "unreadable image" in summary["skipped"][0]["reason"]
    blank = np.asarray(Image.open(out / "blank-mask.png"))
    assert blank.shape == (120, 160) and not blank.any()
    rotated = np.asarray(Image.open(out / "rotated-mask.png"))
    assert rotated.shape == (600, 512) and rotated.any()  # upright again, so the face was found


def test_no_detect_segments_the_whole_image(tmp_path, template_model):
    crop = np.full((96, 96, 3), 100, np.uint8)
    Image.fromarray(crop).save(tmp_path / "crop.png")
    out = tmp_path / "out"
    assert predict_main(["--model", str(template_model), "--input", str(tmp_path / "crop.png"),
                         "--output", str(out), "--no-detect"]) == 0
    mask = np.asarray(Image.open(out / "crop-mask.png"))
    template = Image.fromarray(TemplateNetwork(SIZE).labels.astype(np.uint8))
    expected = np.asarray(template.resize((96, 96), Image.NEAREST))
    assert np.mean(mask == expected) > 0.97  # the SavedModel resizes probabilities, so borders may move
    record = json.loads((out / "crop.json").read_text())
    assert record["faces"][0]["box"] == [0, 0, 96, 96] and record["faces"][0]["confidence"] is None


def test_no_detect_with_a_crop_segments_the_box_and_pastes_it_back(tmp_path, cropped_template_model):
    model = predict.Model(cropped_template_model)
    assert model.crop == CROP
    photo = np.full((160, 160, 3), 100, np.uint8)
    result = predict.segment_photo(photo, model, None)
    assert result.labels.shape == (160, 160)
    x0, y0, side = (round(v * 160) for v in CROP)  # the box: x 32..128, y 48..144
    assert result.faces[0].box == (x0, y0, side, side)
    outside = np.ones((160, 160), bool)
    outside[y0:y0 + side, x0:x0 + side] = False
    assert not result.labels[outside].any()
    template = Image.fromarray(TemplateNetwork(SIZE, crop=CROP).labels.astype(np.uint8))
    expected = np.asarray(template.resize((side, side), Image.NEAREST))
    assert np.mean(result.labels[y0:y0 + side, x0:x0 + side] == expected) > 0.97


def test_a_cropped_model_gets_faces_aligned_to_its_box(detector, cropped_template_model):
    photo = np.asarray(Image.open(grace_hopper()).convert("RGB"))
    result = predict.segment_photo(photo, predict.Model(cropped_template_model), detector)
    face, = result.faces
    eye_gap = np.hypot(*(face.keypoints[1] - face.keypoints[0]))
    for k, (x, y) in ((1, face.keypoints[1]), (2, face.keypoints[0])):  # l_eye: the image's right
        rows, cols = np.nonzero(result.labels == k)
        assert np.hypot(cols.mean() + 0.5 - x, rows.mean() + 0.5 - y) < 0.1 * eye_gap
    # the box is smaller than the framing, so the same crop size covers less of the photo: a larger scale
    uncropped = align.face_transform(face.landmarks, SIZE, "sample")
    assert align.scale_of(result.transforms[0]) == pytest.approx(align.scale_of(uncropped) / CROP[2])


@pytest.mark.parametrize("args, message", [
    (["--model", "{tmp}/missing", "--input", "{photo}"], "{tmp}/missing: model folder not found"),
    (["--model", "{tmp}/empty", "--input", "{photo}"], "{tmp}/empty: no saved_model.pb"),
    (["--model", "{tmp}/empty", "--input", "{tmp}/nothing.jpg"], "{tmp}/nothing.jpg: not found"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    (tmp_path / "empty").mkdir()   # a model folder apart from --output
    args = [a.format(tmp=tmp_path, photo=grace_hopper()) for a in args]
    done = subprocess.run([sys.executable, "predict.py", *args, "--output", str(tmp_path / "out")], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {message.format(tmp=tmp_path)}")


def test_without_model_the_pretrained_one_is_used_or_named_when_missing(tmp_path, monkeypatch, template_model):
    from lipseg_tf.cli import predict as cli_predict
    from lipseg_tf.errors import UserError

    assert cli_predict.DEFAULT_MODEL == REPO / "lipseg_tf" / "pretrained" / "unet-small"  # in the package, not the cwd
    monkeypatch.setattr(cli_predict, "DEFAULT_MODEL", tmp_path / "pretrained" / "unet")
    with pytest.raises(UserError, match="no --model given and the pretrained model .*pretrained/unet is missing"):
        cli_predict._main(["--input", str(grace_hopper()), "--output", str(tmp_path / "out")])
    monkeypatch.setattr(cli_predict, "DEFAULT_MODEL", template_model)
    monkeypatch.chdir(tmp_path)
    assert predict_main(["--input", str(grace_hopper()), "--output", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / predict.SUMMARY_FILE).read_text())["model"] == str(template_model)


def test_save_takes_a_comma_separated_choice_and_names_the_valid_ones(tmp_path):
    from lipseg_tf.cli import predict as cli_predict
    from lipseg_tf.errors import UserError

    assert predict.parse_save("overlay, mask") == ("mask", "overlay")   # SAVE_CHOICES' order
    assert predict.parse_save("json") == ("json",)
    for bad in ("mask,png", "", ","):
        with pytest.raises(UserError, match="expected a comma-separated list of mask, json, overlay"):
            cli_predict._main(["--input", str(grace_hopper()), "--output", str(tmp_path / "out"), "--save", bad])
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_save_json_only_writes_no_image(tmp_path, template_model):
    out = tmp_path / "out"
    assert predict_main(["--model", str(template_model), "--input", str(grace_hopper()), "--output", str(out),
                         "--save", "json"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["grace_hopper.json", "summary.json"]
    record = json.loads((out / "grace_hopper.json").read_text())
    assert record["mask"] is None and record["overlay"] is None and len(record["faces"]) == 1
    assert json.loads((out / "summary.json").read_text())["save"] == ["json"]
