"""TFLite export: float32 and dynamic-range quantised models whose masks agree with the SavedModel's on
the synthetic sample's faces (mean IoU >= 0.98), written by `--mode export --format tflite`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import PHOTO_RGB, make_ab_dataset
from lipseg_tf.cli import runner
from lipseg_tf.prep.sample import render_face
from lipseg_tf.serve import tflite

SIZE = 32


def mean_iou(expected: np.ndarray, labels: np.ndarray, num_classes: int = 5) -> float:
    """Mean over the classes present in either mask of their intersection over union."""
    ious = [np.sum((expected == k) & (labels == k)) / np.sum((expected == k) | (labels == k))
            for k in range(num_classes) if np.any(expected == k) or np.any(labels == k)]
    return float(np.mean(ious))


def test_mean_iou_by_hand():
    expected = np.array([[0, 0, 1, 1]])
    assert mean_iou(expected, expected) == 1.0
    assert mean_iou(expected, np.array([[0, 1, 1, 1]])) == pytest.approx((1 / 2 + 2 / 3) / 2)


def box_photos(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy photos whose eye and lip boxes have their own colours, and their labels; SIZE px."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((count, SIZE, SIZE), np.uint8)
    for i in range(count):
        dy, dx = rng.integers(-3, 4, 2)
        for k, (y, x, h, w) in {1: (7, 5, 5, 8), 2: (7, 19, 5, 8), 3: (19, 10, 4, 12), 4: (23, 10, 4, 12)}.items():
            labels[i, y + dy:y + dy + h, x + dx:x + dx + w] = k
    photos = np.clip(PHOTO_RGB[labels] + rng.normal(0, 12, labels.shape + (3,)), 0, 255).astype(np.uint8)
    return photos, labels


def trained_unet(patch: int = 1, epochs: int = 8, head: int = 0):
    """A tiny U-Net fitted to box photos: its classes are decided by clear margins, as a trained model's
    are (an untrained one's near-ties would make any rounding look like disagreement)."""
    import keras

    from lipseg_tf.train import networks

    keras.utils.set_random_seed(0)
    photos, labels = box_photos(64)
    network = networks.build_unet(5, 8, 2, SIZE, patch=patch, head=head)
    network.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy())
    network.fit(photos.astype(np.float32) / 127.5 - 1, labels, batch_size=4, epochs=epochs, verbose=0)
    return network


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{model: (SavedModel folder, TFLite folder)}: a fitted U-Net exported by the library, and a pix2pix
    trained a few steps and exported by pix2pix.py's code path (--format tflite); and "unet-crop": the
    U-Net's SavedModel with crop.tflite beside it (predict.py's TFLite runtime)."""
    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.prep.parts import DEFAULT_PARTS
    from lipseg_tf.serve.savedmodel import Segmenter, export

    root = tmp_path_factory.mktemp("tflite")
    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    unet = Segmenter(trained_unet(), SIZE, classes, output="probabilities")
    export(unet, classes, root / "unet-savedmodel", framing="sample")
    tflite.export_tflite(unet, classes, root / "unet-tflite", "unet", framing="sample")
    export(unet, classes, root / "unet-crop", framing="sample")
    tflite.write_crop_tflite(unet, root / "unet-crop")

    ab_dir = make_ab_dataset(root / "ab", {"train": 8}, jitter_parts=False)
    (ab_dir / "pairs.json").write_text(json.dumps({"parts": list(DEFAULT_PARTS), "style": "color",
                                                   "synthetic": True}))
    run_dir = root / "pix2pix-run"
    assert runner.main("pix2pix", ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(run_dir),
                                   "--crop_size", str(SIZE), "--ngf", "4", "--ndf", "4", "--batch_size", "4",
                                   "--max_steps", "3", "--eager"]) == 0
    for fmt in ("savedmodel", "tflite"):
        assert runner.main("pix2pix", ["--mode", "export", "--checkpoint", str(run_dir), "--format", fmt,
                                       "--output_dir", str(root / f"pix2pix-{fmt}")]) == 0
    return {**{model: (root / f"{model}-savedmodel", root / f"{model}-tflite") for model in ("unet", "pix2pix")},
            "unet-crop": root / "unet-crop"}


def sample_photos(count: int = 6) -> np.ndarray:
    """Synthetic sample faces at the models' size."""
    return np.stack([np.asarray(Image.fromarray(render_face(5, i, 64)[0]).resize((SIZE, SIZE), Image.LANCZOS))
                     for i in range(count)])


@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_tflite_models_agree_with_the_saved_model(exports, model):
    saved_dir, tflite_dir = exports[model]
    assert sorted(p.name for p in tflite_dir.iterdir()) == sorted(
        ["classes.json", f"{model}_float32.tflite", f"{model}_dynamic_range.tflite"])
    meta = json.loads((tflite_dir / "classes.json").read_text())
    assert meta["image_size"] == SIZE and meta["framing"] == "sample" and len(meta["classes"]) == 5
    float_size = tflite.model_file(tflite_dir, model, "float32").stat().st_size
    assert tflite.model_file(tflite_dir, model, "dynamic_range").stat().st_size < float_size

    serve = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    # IoU where the model is decided: the fitted U-Net on box photos like those it was fitted to, pix2pix
    # (whose nearest-colour decoding is decided even half-trained) on the synthetic faces. On the other
    # images every pixel's class must still agree, bar a few near-ties.
    faces, boxes = sample_photos(), box_photos(6, seed=1)[0]
    decided, other = (boxes, faces) if model == "unet" else (faces, boxes)
    expected = {name: serve(images=tf.constant(images)) for name, images in (("decided", decided), ("other", other))}
    assert len(np.unique(expected["decided"]["labels"].numpy())) >= 3  # not a one-class comparison
    for variant in tflite.VARIANTS:
        segmenter = tflite.TFLiteSegmenter(tflite.model_file(tflite_dir, model, variant))
        out = segmenter(decided)
        assert out["labels"].dtype == np.uint8 and out["labels"].shape == (len(decided), SIZE, SIZE)
        assert out["probabilities"].shape == (len(decided), SIZE, SIZE, 5)
        assert mean_iou(expected["decided"]["labels"].numpy(), out["labels"]) >= 0.98, variant
        assert np.mean(segmenter(other)["labels"] == expected["other"]["labels"].numpy()) >= 0.99, variant
        if variant == "float32":
            np.testing.assert_allclose(out["probabilities"], expected["decided"]["probabilities"].numpy(), atol=1e-4)


@pytest.mark.parametrize("patch, head", [(2, 0), (4, 8)])
def test_a_unet_with_patches_is_exported_again_with_its_tflite_copy_from_the_saved_model_alone(tmp_path, patch, head):
    """--patch 2, or 4 with a head: reexport reads the network from the weights' shapes
    (tools/reexport.network_shape), the TFLite copy (SPACE_TO_DEPTH and DEPTH_TO_SPACE ops) segments as the
    SavedModel does, and unet.py --init_from widens it."""
    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.prep.parts import DEFAULT_PARTS
    from lipseg_tf.serve.predict import Model
    from lipseg_tf.serve.savedmodel import Segmenter, export
    from lipseg_tf.tools import reexport
    from lipseg_tf.train import networks, unet
    from lipseg_tf.train.networks import UnetShape

    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    network = trained_unet(patch=patch, epochs=24, head=head)
    export(Segmenter(network, SIZE, classes, output="probabilities"), classes, tmp_path / "src", framing="sample")
    shape = reexport.network_shape(str(tmp_path / "src" / "variables" / "variables"), 5, tmp_path)
    assert shape == UnetShape(8, 2, patch, head)
    assert reexport.main([str(tmp_path / "src"), str(tmp_path / "dst"), "--tflite"]) == 0
    lite, saved = Model(tmp_path / "dst"), Model(tmp_path / "src")
    assert (lite.runtime, saved.runtime) == ("tflite", "savedmodel")
    boxes, labels = box_photos(4, seed=2)
    lite_labels, saved_labels = lite(boxes).argmax(-1), saved(boxes).argmax(-1)
    assert mean_iou(saved_labels, lite_labels) >= 0.95
    assert mean_iou(labels, saved_labels) >= 0.8  # it learned the boxes, to the pixel inside each 2 x 2 patch
    wide = networks.build_unet(5, 10, 2, SIZE, patch=patch, head=head)
    unet.init_weights(wide, tmp_path / "src", classes)
    assert unet.first_filters(wide) == 10 and unet.unet_head(wide) == head and unet.unet_patch(wide) == patch
    photos = boxes.astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(wide(photos, training=False), network(photos, training=False), atol=1e-5)


def test_benchmark_reports_size_and_latency(exports):
    rows = tflite.benchmark([exports["unet"][0], exports["unet"][1]], runs=2)
    assert [r["kind"] for r in rows] == ["SavedModel", "TFLite", "TFLite"]
    assert all(r["bytes"] > 0 and r["ms_median"] > 0 and r["image_size"] == SIZE for r in rows)


# ------------------------------------------------------------------ predict.py's TFLite runtime (crop.tflite)

@pytest.fixture(scope="module")
def with_crop_tflite(exports):
    return exports["unet-crop"]


@pytest.mark.parametrize("tta", [None, "flip"])
def test_the_tflite_runtime_segments_as_the_saved_model(with_crop_tflite, tta):
    from lipseg_tf.serve.predict import Model

    assert (with_crop_tflite / tflite.CROP_TFLITE).is_file()
    lite, saved = Model(with_crop_tflite, tta=tta), Model(with_crop_tflite, tta=tta, runtime="savedmodel")
    assert (lite.runtime, saved.runtime) == ("tflite", "savedmodel")  # auto: the TFLite copy when it is there
    boxes, labels = box_photos(4, seed=2)
    lite_probs, saved_probs = lite(boxes), saved(boxes)
    assert lite_probs.shape == saved_probs.shape == (4, SIZE, SIZE, 5)
    np.testing.assert_allclose(lite_probs.sum(-1), 1.0, atol=1e-4)
    assert mean_iou(saved_probs.argmax(-1), lite_probs.argmax(-1)) >= 0.95  # int8 weights: near-ties may turn
    assert mean_iou(labels, lite_probs.argmax(-1)) >= mean_iou(labels, saved_probs.argmax(-1)) - 0.02  # as good
    if tta == "flip":  # the mirror image's left and right swapped back: not the plain network's answer
        assert np.abs(lite_probs - Model(with_crop_tflite).__call__(boxes)).max() > 1e-3
        # The mirror crops on their own thread and interpreter (video): the same numbers, in two calls.
        for _ in range(2):
            np.testing.assert_array_equal(lite(boxes, mirror_thread=True), lite_probs)


def test_the_tflite_runtime_names_what_is_wrong(exports, with_crop_tflite, tmp_path):
    import shutil

    from lipseg_tf.errors import UserError
    from lipseg_tf.serve.predict import Model

    assert Model(exports["unet"][0]).runtime == "savedmodel"    # auto without crop.tflite
    with pytest.raises(UserError, match=r"crop\.tflite: not found \(--runtime tflite needs"):
        Model(exports["unet"][0], runtime="tflite")
    with pytest.raises(UserError, match="--runtime 'gpu' unknown, valid: auto, tflite, savedmodel"):
        Model(with_crop_tflite, runtime="gpu")
    broken = tmp_path / "broken"
    shutil.copytree(with_crop_tflite, broken)
    (broken / tflite.CROP_TFLITE).write_bytes(b"not a flatbuffer")
    with pytest.raises(UserError, match=r"crop\.tflite: not a readable TFLite crop model"):
        Model(broken)


def test_tta_off_skips_the_flip_of_the_shipped_model_through_its_tflite_copy(tmp_path):
    import shutil

    from helpers import REPO
    from lipseg_tf.errors import UserError
    from lipseg_tf.serve.predict import Model

    shipped = REPO / "lipseg_tf" / "pretrained" / "unet"
    flipped, plain = Model(shipped), Model(shipped, tta="off")
    assert (flipped.tta, plain.tta) == ("flip", None) and plain.runtime == "tflite"
    crops = sample_photos(2)
    crops = np.stack([np.asarray(Image.fromarray(c).resize((128, 128), Image.BICUBIC)) for c in crops])
    mirrored_back = plain(np.ascontiguousarray(crops[:, :, ::-1]))[:, :, ::-1][..., flipped._mirror]
    np.testing.assert_allclose(flipped(crops), 0.5 * (plain(crops) + mirrored_back), atol=1e-6)
    without_copy = tmp_path / "unet"
    shutil.copytree(shipped, without_copy, ignore=shutil.ignore_patterns(tflite.CROP_TFLITE))
    with pytest.raises(UserError, match="--tta off: .*graph averages each face with its mirror image itself"):
        Model(without_copy, tta="off")


def test_one_run_of_the_flip_average_comes_with_the_networks_own_labels():
    """Model.side_with_labels (the tracker's flip by turns): the probabilities of __call__'s side, and as
    labels the TFLite copy's own argmax, a mirror image's flipped back and its left and right swapped:
    numpy's argmax of those probabilities, pixel for pixel."""
    from helpers import REPO
    from lipseg_tf.serve import align
    from lipseg_tf.serve.predict import Model

    model = Model(REPO / "lipseg_tf" / "pretrained" / "unet-small")
    faces = [render_face(5, i, 256)[0] for i in range(3)]   # aligned sample faces, cut to the model's box
    crops = np.stack([align.warp_face(face, align.box_transform(face.shape[:2], 128, model.crop), 128)
                      for face in faces])
    for side in ("image", "mirror"):
        probabilities, labels = model.side_with_labels(crops, side)
        np.testing.assert_array_equal(probabilities, model(crops, side=side))
        assert labels.dtype == np.uint8 and labels.shape == crops.shape[:3]
        np.testing.assert_array_equal(labels, probabilities.argmax(-1))
    assert set(np.unique(model.side_with_labels(crops, "mirror")[1])) == {0, 1, 2, 3, 4}   # both eyes among them
    with pytest.raises(ValueError, match="side 'both'"):
        model.side_with_labels(crops, "both")


def test_the_shipped_small_model_runs_the_faster_of_its_two_copies():
    from helpers import REPO
    from lipseg_tf.serve import predict
    from lipseg_tf.serve.predict import Model

    shipped = REPO / "lipseg_tf" / "pretrained" / "unet-small"
    model = Model(shipped)
    assert set(model.lite_seconds) == set(tflite.CROP_TFLITES) and all(v > 0 for v in model.lite_seconds.values())
    int8, dynamic = (model.lite_seconds[name] for name in tflite.CROP_TFLITES)
    # the int8 copy unless the other is faster by more than the margin
    assert model.lite_path.name == tflite.CROP_TFLITES[dynamic < (1 - predict.LITE_MARGIN) * int8]
    crops = np.stack([np.asarray(Image.fromarray(c).resize((128, 128), Image.BICUBIC)) for c in sample_photos(3)])
    int8, dynamic = (Model(shipped, lite_file=name) for name in tflite.CROP_TFLITES)
    assert (int8.lite_path.name, dynamic.lite_path.name) == tflite.CROP_TFLITES
    assert np.mean(int8(crops).argmax(-1) == dynamic(crops).argmax(-1)) > 0.99  # the same network, rounded apart
    with pytest.raises(ValueError, match="lite_file 'crop.onnx': expected one of crop.tflite, crop-dynamic.tflite"):
        Model(shipped, lite_file="crop.onnx")
