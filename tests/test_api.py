"""The Python API (serve/api.py, lipseg_tf.Segmenter): what a photo, a PIL image and an array give, the
aligned-face path against predict.py --no-detect, the result's fields, and bad inputs as one UserError line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import REPO
from lipseg_tf.cli.predict import main as predict_main
from lipseg_tf.errors import UserError
from lipseg_tf.prep.sample import render_face


def grace_hopper():
    from matplotlib import cbook
    return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture(scope="module")
def segmenter(template_model):
    import lipseg_tf
    return lipseg_tf.Segmenter(template_model)


def test_importing_the_package_is_cheap_and_segmenter_comes_on_first_use():
    script = ("import sys, lipseg_tf\n"
              "before = 'lipseg_tf.serve.api' in sys.modules\n"
              "lipseg_tf.Segmenter\n"
              "print(before, 'lipseg_tf.serve.api' in sys.modules, 'tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.split() == ["False", "True", "False"]  # the model (and TensorFlow) load on Segmenter()
    import lipseg_tf
    with pytest.raises(AttributeError, match="no attribute 'Segmentr'"):
        lipseg_tf.Segmentr


def test_a_path_a_pil_image_and_an_array_give_the_same_result(segmenter):
    path = grace_hopper()
    from_path = segmenter(path)
    from_pil = segmenter(Image.open(path))
    from_array = segmenter(np.asarray(Image.open(path).convert("RGB")))
    assert from_path.labels.shape == (600, 512) and from_path.labels.dtype == np.uint8
    assert set(np.unique(from_path.labels)) == {0, 1, 2, 3, 4}
    np.testing.assert_array_equal(from_path.labels, from_pil.labels)
    np.testing.assert_array_equal(from_path.labels, from_array.labels)
    assert len(from_path.faces) == len(from_array.faces) == 1
    np.testing.assert_allclose(from_path.faces[0].keypoints, from_array.faces[0].keypoints)


def test_result_fields_have_the_documented_shapes(segmenter):
    result = segmenter(grace_hopper())
    assert result.classes == ("background", "l_eye", "r_eye", "u_lip", "l_lip") == segmenter.classes
    assert result.image.shape == (600, 512, 3) and result.image.dtype == np.uint8
    assert result.colors.shape == (5, 3) and result.colors.dtype == np.uint8
    face, = result.faces
    assert len(face.box) == 4 and face.keypoints.shape == (6, 2) and face.landmarks.shape == (3, 2)
    assert 0.7 <= face.confidence <= 1  # BlazeFace (the default detector) keeps faces from 0.7
    x, y, w, h = face.box
    assert x <= face.keypoints[:, 0].min() and face.keypoints[:, 0].max() <= x + w
    assert result.transforms[0].shape == (2, 3)
    assert result.owner.shape == (600, 512) and result.owner.dtype == np.int16
    assert set(np.unique(result.owner)) == {-1, 0}
    np.testing.assert_array_equal(result.owner >= 0, result.labels > 0)
    assert result.crop_labels.shape == (1, 64, 64) and result.crop_labels.dtype == np.uint8
    np.testing.assert_array_equal(result.mask("u_lip"), result.labels == 3)
    with pytest.raises(ValueError, match="unknown part 'nose', valid: background, l_eye"):
        result.mask("nose")
    overlay = result.overlay()
    assert overlay.shape == (600, 512, 3) and overlay.dtype == np.uint8
    lips = result.labels == 3
    # the parts take their colour (red for u_lip) over the photo; elsewhere (off the drawn box) the photo
    assert (overlay[lips][:, 0].astype(int) - result.image[lips][:, 0]).mean() > 20
    assert np.array_equal(overlay[:20, :20], result.image[:20, :20])


def test_a_photo_without_a_face_gives_background_and_no_faces(segmenter):
    result = segmenter(np.full((120, 160, 3), 90, np.uint8))
    assert result.faces == [] and result.labels.shape == (120, 160) and not result.labels.any()
    assert result.crop_labels is None and result.overlay().shape == (120, 160, 3)


def test_aligned_equals_predict_no_detect(tmp_path):
    """A model that reads the image (the shipped one) on a synthetic face: aligned() gives predict.py
    --no-detect's mask, and a Segmenter built with detector=None gives the same."""
    import lipseg_tf
    face, _ = render_face(0, 2, 160)
    Image.fromarray(face).save(tmp_path / "face.png")
    out = tmp_path / "out"
    assert predict_main(["--input", str(tmp_path / "face.png"), "--output", str(out), "--no-detect"]) == 0
    expected = np.asarray(Image.open(out / "face-mask.png"))
    seg = lipseg_tf.Segmenter()
    result = seg.aligned(face)
    assert expected.any() and result.labels.shape == (160, 160)
    np.testing.assert_array_equal(result.labels, expected)
    assert result.faces[0].keypoints is None and result.faces[0].confidence is None
    record = json.loads((out / "face.json").read_text())
    assert record["faces"][0]["box"] == [round(v, 1) for v in result.faces[0].box]
    assert seg._detector is None  # aligned faces never load the detector
    np.testing.assert_array_equal(lipseg_tf.Segmenter(detector=None)(tmp_path / "face.png").labels, expected)


@pytest.mark.parametrize("image, message", [
    ("{tmp}/missing.jpg", "{tmp}/missing.jpg: file not found"),
    ("{tmp}/broken.jpg", "{tmp}/broken.jpg: unreadable image"),
    (np.zeros((20, 30), np.uint8), r"image: expected a uint8 array of shape \(H, W, 3\) \(RGB\), got uint8 of "
                                   r"shape \(20, 30\)"),
    (np.zeros((20, 30, 3), np.float32), "image: expected a uint8 array .* got float32 of shape"),
    (np.zeros((20, 30, 4), np.uint8), r"got uint8 of shape \(20, 30, 4\)"),
    ([[1, 2, 3]], "image: expected a file path, a PIL image or a uint8 \\(H, W, 3\\) array, got list"),
])
def test_bad_input_is_one_user_error_line(segmenter, tmp_path, image, message):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    if isinstance(image, str):
        image = image.format(tmp=tmp_path)
    for call in (segmenter, segmenter.aligned):
        with pytest.raises(UserError, match=message.format(tmp=tmp_path)) as caught:
            call(image)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "{tmp}/nowhere"}, "{tmp}/nowhere: model folder not found"),
    ({"model": "smal"}, r"smal: neither a shipped model \(fast, accurate, small\) nor a model folder"),
    ({"model": 3}, r"model: expected a shipped model's name \(fast, accurate, small\) or an export folder, got int"),
    ({"min_face": 0}, "min_face: expected a positive number of pixels, got 0"),
    ({"min_confidence": 1.5}, "min_confidence: expected a value from 0 to 1, got 1.5"),
    ({"detector": "retina"}, "detector 'retina' unknown, valid: blazeface, mtcnn"),
    ({"tta": "rotate"}, "--tta 'rotate' unknown, valid: none, flip"),
    ({"framing": "ffhq"}, "--framing 'ffhq' unknown, valid: sample, celebahq"),
])
def test_bad_options_are_one_user_error_line(template_model, tmp_path, kwargs, message):
    import lipseg_tf
    kwargs = {k: v.format(tmp=tmp_path) if isinstance(v, str) and k == "model" else v for k, v in kwargs.items()}
    kwargs.setdefault("model", template_model)
    with pytest.raises(UserError, match=message.format(tmp=tmp_path)):
        lipseg_tf.Segmenter(**kwargs)


def test_shipped_models_by_name_and_a_folder_of_that_name_wins(tmp_path, monkeypatch):
    from lipseg_tf.serve.api import DEFAULT_MODEL, PRETRAINED_DIR, model_folder

    assert model_folder(None) == model_folder("small") == DEFAULT_MODEL == PRETRAINED_DIR / "unet-small"
    assert model_folder("fast") == PRETRAINED_DIR / "unet"
    assert model_folder(Path("accurate")) == PRETRAINED_DIR / "unet-accurate"  # a name that came as a Path
    sizes = {name: json.loads((model_folder(name) / "classes.json").read_text())["image_size"]
             for name in ("fast", "accurate")}
    assert sizes["accurate"] > sizes["fast"]          # the accurate one sees the parts at a higher resolution
    (tmp_path / "accurate").mkdir()
    monkeypatch.chdir(tmp_path)
    assert str(model_folder("accurate")) == "accurate"   # the user's own folder, not the shipped model
    monkeypatch.setattr("lipseg_tf.serve.api.PRETRAINED_DIR", tmp_path / "nowhere")
    (tmp_path / "accurate").rmdir()
    with pytest.raises(UserError, match="the pretrained model .*nowhere/unet-accurate is missing"):
        model_folder("accurate")


def test_one_segmenter_shared_by_threads_gives_each_the_serial_answer():
    """A web server's threads share one Segmenter: its TensorFlow Lite interpreters (the U-Net's, BlazeFace's)
    each run one call at a time. Before, concurrent calls raised RuntimeError ("There is at least 1 reference
    to internal data in the interpreter") or returned another photo's labels."""
    import threading

    from PIL import Image

    import lipseg_tf

    seg = lipseg_tf.Segmenter("small")
    photo = np.asarray(Image.open(grace_hopper()).convert("RGB"))
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    clip = [np.ascontiguousarray(np.roll(photo, shift, axis=1)) for shift in range(0, 24, 4)]
    expected = {"photo": seg(photo).labels, "mirrored": seg(mirrored).labels,
                "clip": [frame.labels for frame in seg.video(clip)]}
    assert expected["photo"].any() and not np.array_equal(expected["photo"], expected["mirrored"])
    found, errors = {"photo": [], "mirrored": [], "clip": []}, []

    def work(name):
        try:
            for _ in range(4):
                if name == "clip":
                    found[name].append([frame.labels for frame in seg.video(clip)])
                else:
                    found[name].append(seg(photo if name == "photo" else mirrored).labels)
        except Exception as err:  # noqa: BLE001 - any failure is the test's finding
            errors.append(repr(err))

    threads = [threading.Thread(target=work, args=(name,)) for name in ("photo", "mirrored", "clip", "photo")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(found["photo"]) == 8 and all(np.array_equal(got, expected["photo"]) for got in found["photo"])
    assert all(np.array_equal(got, expected["mirrored"]) for got in found["mirrored"])
    for run in found["clip"]:
        assert len(run) == len(clip) and all(np.array_equal(a, b) for a, b in zip(run, expected["clip"]))
