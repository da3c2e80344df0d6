"""The SavedModel is right on its own: a model trained on a crop box of the framing (process.py --crop)
takes whole aligned faces in `serving_default`, cuts the box inside its graph and answers for the whole
image, background outside the box, as predict.py --no-detect does; `serve_crop` takes the bare box, and
predict.py uses it (or an old export's `serving_default`, which took the box)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import COLORS
from lipseg_tf.cli import runner
from lipseg_tf.cli.predict import main as predict_main
from lipseg_tf.prep import pairs
from lipseg_tf.serve import align
from lipseg_tf.serve.savedmodel import SIGNATURES

CROP = (0.2, 0.36, 0.6)  # as the shipped model's: x0 12.8 px of a 64 px face, so the box is cut between pixels
SIZE = 32

# Runs without lipseg_tf importable: every face through serving_default, labels saved as .npy; checks the
# probabilities (background 1 outside the box the labels leave empty).
ALONE = """
import sys
sys.modules["lipseg_tf"] = None   # an import of it now fails
from pathlib import Path
import numpy as np, tensorflow as tf
from PIL import Image
model_dir, out = sys.argv[1], Path(sys.argv[2])
serve = tf.saved_model.load(model_dir).signatures["serving_default"]
for path in sys.argv[3:]:
    photo = np.asarray(Image.open(path).convert("RGB"))
    result = serve(images=tf.constant(photo[None]))
    labels, probabilities = result["labels"].numpy()[0], result["probabilities"].numpy()[0]
    assert labels.shape == photo.shape[:2] and probabilities.shape == photo.shape[:2] + (5,)
    np.save(out / (Path(path).stem + ".npy"), labels)
    np.save(out / (Path(path).stem + "-probabilities.npy"), probabilities)
try:
    import lipseg_tf
except ImportError:
    print("lipseg_tf not importable")
"""


@pytest.fixture(scope="module")
def crop_model(tiny_pairs, tmp_path_factory) -> dict[str, Path]:
    """A U-Net trained a few steps on 32 px pairs cut to CROP of the 64 px synthetic faces, exported. It
    learns the lips first (val F1 about 0.6 on them after 120 steps, 0 on the eyes)."""
    root = tmp_path_factory.mktemp("crop-model")
    pairs.run_process(root / "pairs", tiny_pairs["masks"], data_dir=tiny_pairs["sample"], size=SIZE, workers=1,
                      crop=CROP)
    assert runner.main("unet", ["--mode", "train", "--input_dir", str(root / "pairs"), "--output_dir",
                                str(root / "run"), "--crop_size", str(SIZE), "--ngf", "4", "--depth", "2",
                                "--batch_size", "4", "--max_steps", "120", "--lr", "1e-2", "--no_flip"]) == 0
    assert runner.main("unet", ["--mode", "export", "--checkpoint", str(root / "run"), "--output_dir",
                                str(root / "export")]) == 0
    return {"export": root / "export", "faces": tiny_pairs["sample"] / "CelebA-HQ-img",
            "masks": tiny_pairs["masks"], "pairs": root / "pairs"}


def class_ids(mask_rgb: np.ndarray) -> np.ndarray:
    """Class ids of a colour mask (g_mask.py's palette)."""
    ids = np.zeros(mask_rgb.shape[:2], np.uint8)
    for k, colour in enumerate(COLORS):
        ids[(mask_rgb == colour).all(-1)] = k
    return ids


def mean_f1(predicted: list[np.ndarray], truth: list[np.ndarray], classes: int = 5) -> float:
    """Mean over the parts of each part's F1, from one confusion count over all faces."""
    p, t = np.concatenate([a.ravel() for a in predicted]), np.concatenate([a.ravel() for a in truth])
    scores = []
    for k in range(1, classes):
        tp, fp, fn = np.sum((p == k) & (t == k)), np.sum((p == k) & (t != k)), np.sum((p != k) & (t == k))
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(scores))


def test_export_records_its_signatures_and_crop(crop_model):
    meta = json.loads((crop_model["export"] / "classes.json").read_text())
    assert meta["crop"] == list(CROP) and meta["framing"] == "sample" and meta["image_size"] == SIZE
    assert meta["signatures"] == SIGNATURES == {"serving_default": "framing", "serve_crop": "crop"}
    assert set(tf.saved_model.load(str(crop_model["export"])).signatures) == {"serving_default", "serve_crop"}


def test_serving_default_alone_gives_predict_no_detect_labels_on_whole_faces(crop_model, tmp_path):
    faces = sorted(crop_model["faces"].glob("*.jpg"))
    assert len(faces) == 12
    out = tmp_path / "predict"
    assert predict_main(["--model", str(crop_model["export"]), "--input", str(crop_model["faces"]),
                         "--output", str(out), "--no-detect"]) == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run([sys.executable, "-c", ALONE, str(crop_model["export"]), str(alone), *map(str, faces)],
                          cwd="/tmp", env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["lipseg_tf not importable"]

    # The masks are at the annotation size (512 px): nearest-neighbour to the 64 px faces.
    truth = [class_ids(np.asarray(Image.open(crop_model["masks"] / f"{f.stem}.png").convert("RGB")
                                  .resize((64, 64), Image.NEAREST))) for f in faces]
    by_predict = [np.asarray(Image.open(out / f"{f.stem}-mask.png")) for f in faces]
    by_graph = [np.load(alone / f"{f.stem}.npy") for f in faces]
    agree = np.mean(np.concatenate([(a == b).ravel() for a, b in zip(by_predict, by_graph)]))
    f1_predict, f1_graph = mean_f1(by_predict, truth), mean_f1(by_graph, truth)
    print(f"labels agree {agree:.5f}, mean F1 predict.py {f1_predict:.4f}, SavedModel {f1_graph:.4f}")
    assert agree > 0.999, agree
    # The same F1 up to the few pixels where near-ties tip the other way (the agreement above): the tiny
    # model's parts are small, so 2 pixels of the 49,152 moved mean F1 by 0.0036 on an AVX2-only machine
    # (2026-12-02; agreement 0.99996).
    assert abs(f1_predict - f1_graph) <= 5e-3, (f1_predict, f1_graph)
    assert f1_graph > 0.15, f1_graph                 # a model that learned parts, not an empty answer

    # Outside the box (x 12.8..51.2, y 23.04..61.44 px of 64): background, with probability 1.
    rows, cols = np.indices((64, 64)) + 0.5
    inside = (cols >= 12.8) & (cols < 51.2) & (rows >= 23.04) & (rows < 61.44)
    for face in faces:
        labels, probabilities = np.load(alone / f"{face.stem}.npy"), np.load(alone / f"{face.stem}-probabilities.npy")
        assert not labels[~inside].any()
        assert (probabilities[~inside] == np.eye(5)[0]).all()
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-4)
    assert any(labels[inside].any() for labels in by_graph)


@pytest.fixture(scope="module")
def old_export(crop_model, tmp_path_factory) -> Path:
    """crop_model's network exported as before serve_crop: serving_default took the crop box."""
    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.prep.parts import DEFAULT_PARTS
    from lipseg_tf.serve.savedmodel import Segmenter
    from lipseg_tf.train.networks import build_unet

    old = tmp_path_factory.mktemp("old-export")
    network = build_unet(5, 4, 2, SIZE)
    tf.train.Checkpoint(network=network).restore(str(crop_model["export"] / "variables" / "variables")).expect_partial()
    segmenter = Segmenter(network, SIZE, ClassSpec.create(DEFAULT_PARTS, "color"), output="probabilities", crop=CROP)
    tf.saved_model.save(segmenter, str(old), signatures={"serving_default": segmenter.serve_crop})
    meta = json.loads((crop_model["export"] / "classes.json").read_text())
    del meta["signatures"]
    (old / "classes.json").write_text(json.dumps(meta))
    return old


def test_serve_crop_takes_the_box_and_predict_uses_it_or_an_old_export(crop_model, old_export):
    """serve_crop on the box predict.py cuts gives predict.py's crop labels; an export with only the old
    crop-taking serving_default gives Model the same probabilities."""
    from lipseg_tf.serve.predict import Model, segment_photo

    model = Model(crop_model["export"])
    photo = np.asarray(Image.open(crop_model["faces"] / "0.jpg").convert("RGB"))
    result = segment_photo(photo, model, None)
    crop = align.warp_face(photo, result.transforms[0], SIZE)
    serve_crop = tf.saved_model.load(str(crop_model["export"])).signatures["serve_crop"]
    labels = serve_crop(images=tf.constant(crop[None]))["labels"].numpy()[0]
    np.testing.assert_array_equal(labels, result.crop_labels[0])
    assert set(tf.saved_model.load(str(old_export)).signatures) == {"serving_default"}
    np.testing.assert_allclose(Model(old_export)(crop[None]), model(crop[None]), atol=1e-6)


def test_reexport_turns_an_old_export_into_one_right_on_its_own(crop_model, old_export, tmp_path):
    """tools/reexport.py: from the SavedModel alone (no run folder), the export this lipseg_tf writes."""
    from lipseg_tf.tools import reexport

    shape = reexport.network_shape(str(old_export / "variables" / "variables"), 5, old_export)
    assert dataclasses.astuple(shape) == (4, 2, 1, 0)
    target = tmp_path / "again"
    assert reexport.main([str(old_export), str(target)]) == 0
    assert (json.loads((target / "classes.json").read_text())
            == json.loads((crop_model["export"] / "classes.json").read_text()))
    photos = np.stack([np.asarray(Image.open(crop_model["faces"] / f"{i}.jpg").convert("RGB")) for i in range(3)])
    again = tf.saved_model.load(str(target)).signatures["serving_default"](images=tf.constant(photos))
    exported = tf.saved_model.load(str(crop_model["export"])).signatures["serving_default"](images=tf.constant(photos))
    np.testing.assert_allclose(again["probabilities"].numpy(), exported["probabilities"].numpy(), atol=1e-5)
    assert reexport.main([str(old_export), str(target)]) == 1   # not over an export: a new or empty folder


def test_reexport_with_tflite_writes_the_copy_predict_runs(crop_model, old_export, tmp_path):
    """reexport --tflite: crop.tflite beside the SavedModel, which predict's Model then runs (auto), with
    the crops' labels of the SavedModel's serve_crop (int8 weights: nearly all pixels)."""
    from lipseg_tf.serve.predict import Model
    from lipseg_tf.serve.tflite import CROP_TFLITE
    from lipseg_tf.tools import reexport

    target = tmp_path / "with-tflite"
    assert reexport.main([str(old_export), str(target), "--tflite"]) == 0
    assert (target / CROP_TFLITE).is_file()
    assert not (target / "crop-dynamic.tflite").exists()   # weights int8 alone: one copy, crop.tflite itself
    lite, saved = Model(target), Model(target, runtime="savedmodel")
    assert lite.runtime == "tflite" and lite.tta == saved.tta
    assert lite.lite_path == target / CROP_TFLITE and lite.lite_seconds == {}   # nothing to choose from
    photos = [np.asarray(Image.open(crop_model["faces"] / f"{i}.jpg").convert("RGB")) for i in range(3)]
    size = lite.image_size
    crops = np.stack([np.asarray(Image.fromarray(p).resize((size, size), Image.BILINEAR)) for p in photos])
    assert np.mean(lite(crops).argmax(-1) == saved(crops).argmax(-1)) >= 0.97


def test_reexport_tflite_int8_quantises_activations_on_the_pairs_faces(crop_model, tmp_path, capfd):
    """--tflite int8 --pairs: every convolution of crop.tflite takes and gives int8 (ranges from the train
    split's faces), crop-dynamic.tflite beside it keeps them float, and the labels of each are the
    SavedModel's on nearly every pixel of those faces; predict's Model times both and runs the faster;
    without --pairs it is a one-line error; nothing of the converter's reaches stderr."""
    from lipseg_tf.serve import tflite
    from lipseg_tf.serve.predict import Model
    from lipseg_tf.tools import reexport

    target = tmp_path / "int8"
    assert reexport.main([str(crop_model["export"]), str(target), "--tflite", "int8"]) == 1
    assert capfd.readouterr().err.strip().splitlines() == [
        "error: --tflite int8: needs --pairs (AB pairs of the model's crop box, whose train split's faces set the "
        "int8 ranges)"]
    assert reexport.main([str(crop_model["export"]), str(target), "--tflite", "int8",
                          "--pairs", str(crop_model["pairs"])]) == 0
    err = capfd.readouterr().err
    assert all(line.startswith("lipseg_tf: ") for line in err.strip().splitlines()), err
    interpreter = tflite._interpreter(target / tflite.CROP_TFLITE, 1)
    ops = interpreter._get_ops_details()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convolutions = [op for op in ops if op["op_name"] == "CONV_2D"]
    assert convolutions and all(tensors[op["inputs"][0]]["dtype"] == np.int8 and tensors[op["outputs"][0]]["dtype"]
                                == np.int8 for op in convolutions)
    dynamic = tflite._interpreter(target / tflite.CROP_TFLITE_DYNAMIC, 1)
    tensors = {t["index"]: t for t in dynamic.get_tensor_details()}
    convolutions = [op for op in dynamic._get_ops_details() if op["op_name"] == "CONV_2D"]
    assert convolutions and all(tensors[op["inputs"][0]]["dtype"] == np.float32 for op in convolutions)
    faces = reexport.pair_photos(crop_model["pairs"], "train", reexport.load_segmenter(target)[1], SIZE, 16)
    assert faces.shape == (min(16, len(list((crop_model["pairs"] / "train").glob("*.png")))), SIZE, SIZE, 3)
    lite, saved = Model(target), Model(target, runtime="savedmodel")
    assert lite.runtime == "tflite" and set(lite.lite_seconds) == set(tflite.CROP_TFLITES)
    assert lite.lite_path.name == min(lite.lite_seconds, key=lite.lite_seconds.get)   # the faster one
    expected = saved(faces).argmax(-1)
    for name in tflite.CROP_TFLITES:
        pinned = Model(target, lite_file=name)
        assert pinned.lite_path.name == name
        assert np.mean(pinned(faces).argmax(-1) == expected) >= 0.98, name
