"""The shipped model, lipseg_tf/pretrained/unet: on matplotlib's grace_hopper.jpg, predict.py's one-liner (no --model)
finds both eyes and both lips inside the detected face box, each where a face has it.

CelebAMask-HQ's convention: l_eye is the subject's left eye, so it lies on the IMAGE's right.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from helpers import REPO
from lipseg_tf.cli.predict import main as predict_main

MODEL = REPO / "lipseg_tf" / "pretrained" / "unet-small"   # the default


def grace_hopper() -> Path:
    from matplotlib import cbook
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def check_parts(mask: np.ndarray, face: dict, classes: list[str]) -> dict[str, tuple[float, float, int]]:
    """Assert that every part is found inside the face box, in a face's order; returns {part: (x, y, area)}."""
    x, y, w, h = face["box"]
    parts = {}
    for k, name in enumerate(classes):
        if k == 0:
            continue
        rows, cols = np.nonzero(mask == k)
        assert len(rows) >= 20, f"{name}: {len(rows)} pixels, expected a part"
        inside = (cols >= x) & (cols < x + w) & (rows >= y) & (rows < y + h)
        assert inside.mean() > 0.98, f"{name}: {inside.mean():.2f} of its pixels in the face box"
        assert len(rows) < 0.05 * w * h, f"{name}: {len(rows)} pixels, more than 5 % of the face box"
        parts[name] = (cols.mean() + 0.5, rows.mean() + 0.5, len(rows))
    (lx, ly, l_area), (rx, ry, r_area) = parts["l_eye"], parts["r_eye"]
    (ux, uy, _), (bx, by, _) = parts["u_lip"], parts["l_lip"]
    eye_gap = lx - rx
    assert eye_gap > 0.2 * w, f"l_eye at x {lx:.0f} should be right of r_eye at x {rx:.0f} (CelebAMask-HQ's left)"
    assert abs(ly - ry) < 0.25 * eye_gap and 0.4 < l_area / r_area < 2.5  # a pair of eyes, not eye and brow
    assert max(ly, ry) < uy < by, f"eyes at y {ly:.0f}, {ry:.0f}, lips at {uy:.0f}, {by:.0f}: not in order"
    assert by - max(ly, ry) > 0.6 * eye_gap  # the mouth is a mouth's distance below the eyes
    for name, lip_x in (("u_lip", ux), ("l_lip", bx)):
        assert abs(lip_x - (lx + rx) / 2) < 0.3 * eye_gap, f"{name} at x {lip_x:.0f}, not between the eyes"
    # the eyes lie on the detector's eye landmarks (MTCNN's left_eye is on the image's left)
    for name, landmark in (("l_eye", "right_eye"), ("r_eye", "left_eye")):
        px, py = face["landmarks"][landmark]
        assert np.hypot(parts[name][0] - px, parts[name][1] - py) < 0.3 * eye_gap, f"{name} off its landmark"
    return parts


def test_the_pretrained_model_finds_eyes_and_lips_on_grace_hopper(tmp_path, monkeypatch):
    assert (MODEL / "saved_model.pb").is_file(), f"{MODEL}: the shipped model is missing"
    monkeypatch.chdir(tmp_path)
    assert predict_main(["--input", str(grace_hopper())]) == 0   # no --model, no --output: the defaults
    out = tmp_path / "predict_out"
    record = json.loads((out / "grace_hopper.json").read_text())
    assert record["model"] == str(MODEL)
    face, = record["faces"]
    mask = np.asarray(Image.open(out / record["mask"]))
    assert mask.shape == (600, 512)
    check_parts(mask, face, record["classes"])


def test_the_other_models_find_them_too_and_agree_with_the_fast_one(tmp_path):
    """--model accurate (lipseg_tf/pretrained/unet-accurate, 256 px) and --model small (unet-small, patch 2,
    the default): the same checks, and their parts overlap the fast model's (each part's IoU between the
    two masks well above chance)."""
    masks = {}
    folders = {"fast": "unet", "accurate": "unet-accurate", "small": "unet-small"}
    for name, folder in folders.items():
        assert predict_main(["--input", str(grace_hopper()), "--model", name, "--output", str(tmp_path / name)]) == 0
        record = json.loads((tmp_path / name / "grace_hopper.json").read_text())
        assert record["model"] == str(REPO / "lipseg_tf" / "pretrained" / folder)
        masks[name] = np.asarray(Image.open(tmp_path / name / record["mask"]))
        face, = record["faces"]
        check_parts(masks[name], face, record["classes"])
    for other in ("accurate", "small"):
        for k in range(1, 5):
            fast, theirs = masks["fast"] == k, masks[other] == k
            assert (fast & theirs).sum() / (fast | theirs).sum() > 0.6, f"class {k}: {other} disagrees with fast"
