"""benchmarks/speed.py's own code, without MediaPipe: scenes built from the synthetic sample (the mask
moved with the face), FaceMesh contours drawn at a photo's size, the scoring, and the table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import speed
from lipseg_tf.prep import imageio
from lipseg_tf.serve import align

CLASSES = ("background", "l_eye", "r_eye", "u_lip", "l_lip")


def test_scene_transform_scales_the_eye_distance_to_half_the_face_width_and_centres_it():
    matrix = speed.scene_transform(1000, 30.0, 200.0, (400.0, 300.0))
    np.testing.assert_allclose(align.apply(matrix, [(500.0, 500.0)]), [(400, 300)])
    assert align.scale_of(matrix) == pytest.approx(100 / (speed.EYE_DISTANCE * 1000))
    # counter-clockwise as seen (y down): a point right of the centre moves up
    right = align.apply(matrix, [(600.0, 500.0)])[0]
    assert right[0] > 400 and right[1] < 300


def test_a_scene_moves_the_mask_with_the_face():
    rng = np.random.default_rng(3)
    photo = np.zeros((512, 512, 3), np.uint8)
    labels = np.zeros((256, 256), np.uint8)          # the mask at half the photo's size, as CelebAMask-HQ's
    labels[100:110, 80:100] = 1                      # a part left of the centre ...
    photo[200:220, 160:200] = 255                    # ... and the same place in the photo, white
    backdrop = np.full((768, 1024, 3), 60, np.uint8)
    scene, scene_labels, params = speed.make_scene(photo, labels, backdrop, rng)
    assert scene.shape == (768, 1024, 3) and scene_labels.shape == (768, 1024)
    assert set(np.unique(scene_labels)) == {0, 1}
    white = np.argwhere(scene[..., 0] > 200).mean(0)
    part = np.argwhere(scene_labels == 1).mean(0)
    assert np.hypot(*(white - part)) < 1.5           # the label sits on the white patch
    assert 100 <= params["face_width"] <= 320 and abs(params["angle"]) <= 30


def test_build_scenes_writes_photos_masks_and_reuses_them(tiny_pairs, tmp_path):
    out = tmp_path / "scenes"
    scenes = speed.build_scenes(tiny_pairs["sample"], tiny_pairs["masks"], out, count=1, split="test")
    name = scenes[0]["name"]
    photo = imageio.load_rgb(out / "photos" / f"{name}.jpg")
    truth = imageio.load_gray(out / "masks" / f"{name}.png")
    assert photo.shape == (768, 1024, 3) and truth.shape == (768, 1024) and truth.max() > 0
    info = json.loads((out / speed.SCENES_FILE).read_text())
    assert info["classes"] == list(CLASSES) and info["scenes"] == scenes
    mtime = (out / "photos" / f"{name}.jpg").stat().st_mtime_ns
    assert speed.build_scenes(tiny_pairs["sample"], tiny_pairs["masks"], out, count=1, split="test") == scenes
    assert (out / "photos" / f"{name}.jpg").stat().st_mtime_ns == mtime  # built once
    # the truth scored against itself, its face found by a box around it
    rows, cols = np.nonzero(truth)
    box = [cols.min() - 5, rows.min() - 5, cols.max() - cols.min() + 10, rows.max() - rows.min() + 10]
    result = speed.score(out, scenes, {name: out / "masks" / f"{name}.png"}, {name: [box]}, CLASSES)
    assert result["missed"] == [] and result["mean_f1"] == pytest.approx(1.0)
    assert speed.score(out, scenes, {name: out / "masks" / f"{name}.png"}, {}, CLASSES)["missed"] == [name]


def test_facemesh_contours_land_on_the_hand_counted_pixels_of_a_wide_photo():
    # Four parts, each a rectangle of four landmarks (ids 4k..4k+3), in a 40 x 16 photo: landmarks are
    # fractions of its width and height, as FaceMesh gives them.
    rectangles = {"l_eye": (20, 5, 23, 7), "r_eye": (16, 5, 19, 7), "u_lip": (17, 9, 22, 10), "l_lip": (17, 10, 22, 12)}
    polygons, landmarks = {}, []
    for k, (part, (x0, y0, x1, y1)) in enumerate(rectangles.items()):
        polygons[part] = [4 * k + i for i in range(4)]
        landmarks += [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    landmarks = np.array(landmarks, np.float64) / (40, 16)
    class_ids = {"l_eye": 1, "r_eye": 2, "u_lip": 3, "l_lip": 4}
    labels = speed.facemesh_mask(landmarks, polygons, class_ids, (16, 40))
    expected = np.zeros((16, 40), np.uint8)
    for part, (x0, y0, x1, y1) in rectangles.items():
        expected[y0:y1, x0:x1] = class_ids[part]
    np.testing.assert_array_equal(labels, expected)
    assert not speed.facemesh_mask(None, polygons, class_ids, (16, 40)).any()


def test_found_face_and_part_centre():
    labels = np.zeros((10, 10), np.uint8)
    labels[2:4, 6:8] = 3
    assert speed.part_centre(labels) == (7.0, 3.0)
    assert speed.found_face([(5, 2, 3, 2)], (7.0, 3.0)) and not speed.found_face([(0, 0, 3, 3)], (7.0, 3.0))
    assert speed.part_centre(np.zeros((4, 4), np.uint8)) is None and speed.found_face([], None)


def test_the_table_gives_both_systems_and_their_ratio():
    def result(system, seconds, f1, missed):
        return {"system": system, "seconds_per_photo": seconds, "cpu_seconds_per_photo": 1.5 * seconds,
                "missed": missed, "mean_f1": f1, "parts": {p: {"f1": f1} for p in CLASSES[1:]}}
    table = speed.format_report([result("ours", 0.03, 0.86, []), result("peer", 0.04, 0.83, ["7"])],
                                CLASSES, 10, "10 scenes")
    assert "| time per photo (s) | 0.0300 | 0.0400 |" in table
    assert "| CPU time per photo (s), all threads | 0.0450 | 0.0600 |" in table
    assert "| faces missed | 0 of 10 | 1 of 10 |" in table
    assert "| mean F1 | 0.860 | 0.830 |" in table
    assert "time ratio ours / peer: 0.75; mean F1 difference +0.030" in table
    alone = speed.format_report([result("ours", 0.03, 0.86, [])], CLASSES, 10, "10 scenes")
    assert "| mean F1 | 0.860 |" in alone and "ratio" not in alone    # --no-mediapipe: nothing to compare


def test_model_takes_a_shipped_model_name_as_predict_does():
    from lipseg_tf.serve.api import PRETRAINED_DIR, model_folder

    args = speed.build_parser().parse_args(["--model", "accurate", "--no-mediapipe"])
    assert model_folder(args.model) == PRETRAINED_DIR / "unet-accurate"
    assert speed.build_parser().parse_args([]).model is None   # predict.py's default


def test_the_mediapipe_subprocess_fails_in_one_line(tmp_path):
    """A missing environment names its python and the script that makes it; a module that fails there
    gives its exit status and the last line it printed on stderr."""
    import sys
    from pathlib import Path

    from lipseg_tf.errors import UserError
    with pytest.raises(UserError, match=r"nothing/python: not found \(benchmarks/speed.sh makes .venv-mediapipe"):
        speed.run_in_mediapipe_env(tmp_path / "nothing" / "python", ["benchmarks.speed"], "benchmarks/speed.sh")
    with pytest.raises(UserError, match=r"no_such_module in .* failed \(exit 1\): .*No module named no_such_module"):
        speed.run_in_mediapipe_env(Path(sys.executable), ["no_such_module"], "benchmarks/speed.sh")
