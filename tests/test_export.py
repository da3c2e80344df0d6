"""Export: a SavedModel that takes uint8 photos of any size and returns labels and probabilities, agrees
with the Keras model it came from, runs in inference mode, and loads without this package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import COLORS, FLIP, PHOTO_RGB, make_ab_dataset
from lipseg_tf.cli import runner
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.train import pipeline, pix2pix, unet
from lipseg_tf.train.config import from_options, load_options

NAMES = ["background", "l_eye", "r_eye", "u_lip", "l_lip"]
SIZE = 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{model: (run_dir, export_dir)} for a U-Net and a pix2pix trained a few steps."""
    root = tmp_path_factory.mktemp("export")
    ab_dir = make_ab_dataset(root / "ab", {"train": 8}, jitter_parts=False)
    # The U-Net starts at the class frequencies (all background), so it needs some steps to draw parts.
    extra = {"unet": ["--depth", "2", "--max_steps", "40", "--lr", "1e-2"],
             "pix2pix": ["--ndf", "4", "--max_steps", "3"]}
    result = {}
    for model in ("unet", "pix2pix"):
        run_dir, export_dir = root / f"{model}-run", root / f"{model}-export"
        assert runner.main(model, ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(run_dir),
                                   "--crop_size", str(SIZE), "--ngf", "4", "--batch_size", "4", "--eager"]
                                  + extra[model]) == 0
        assert runner.main(model, ["--mode", "export", "--checkpoint", str(run_dir),
                                   "--output_dir", str(export_dir)]) == 0
        assert (export_dir / "saved_model.pb").is_file() and (export_dir / "classes.json").is_file()
        result[model] = (run_dir, export_dir)
    return result


def photos(n, height, width, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = np.zeros((n, height, width, 3), np.uint8)
    for i in range(n):
        labels = np.zeros((64, 64), np.uint8)
        labels[14:24, 10:26], labels[14:24, 38:54], labels[38:45, 20:44], labels[45:52, 20:44] = 1, 2, 3, 4
        photo = np.clip(PHOTO_RGB[labels] + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)
        images[i] = np.asarray(Image.fromarray(photo).resize((width, height), Image.BILINEAR))
    return images


def keras_probabilities(model: str, run_dir: Path, images01: tf.Tensor) -> np.ndarray:
    """The class probabilities of the run's Keras network, outside the SavedModel."""
    options = load_options(run_dir)
    config = from_options(options)
    classes = ClassSpec.create(options["parts"], options["style"])
    if model == "unet":
        return unet.load_model(config, classes, run_dir)(images01, training=False).numpy()
    output = pix2pix.load_generator(config, run_dir)(images01, training=False)
    return pipeline.image_to_class_scores(output, classes.colors).numpy()


@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_serving_signature_at_any_size(exported, model):
    _, export_dir = exported[model]
    loaded = tf.saved_model.load(str(export_dir))
    serve = loaded.signatures["serving_default"]
    out = serve(images=tf.constant(photos(2, 40, 56)))
    labels, probs = out["labels"].numpy(), out["probabilities"].numpy()
    assert labels.dtype == np.uint8 and labels.shape == (2, 40, 56)
    assert probs.dtype == np.float32 and probs.shape == (2, 40, 56, 5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(labels, probs.argmax(-1))
    # inference mode: dropout off, BatchNorm frozen -> the same answer twice
    again = serve(images=tf.constant(photos(2, 40, 56)))
    np.testing.assert_array_equal(again["probabilities"].numpy(), probs)
    assert [n.decode() for n in loaded.classes().numpy()] == NAMES
    np.testing.assert_array_equal(loaded.colors().numpy(), COLORS)


@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_export_agrees_with_the_keras_model_at_its_size(exported, model):
    run_dir, export_dir = exported[model]
    images = photos(2, SIZE, SIZE, seed=3)
    out = tf.saved_model.load(str(export_dir)).signatures["serving_default"](images=tf.constant(images))
    expected = keras_probabilities(model, run_dir, tf.constant(images, tf.float32) / 127.5 - 1.0)
    expected_labels = expected.argmax(-1)
    assert len(np.unique(expected_labels)) >= 2                  # not a trivial all-one-class comparison
    assert np.mean(out["labels"].numpy() == expected_labels) >= 0.995
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-3)


def test_saved_model_loads_without_the_package(exported):
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        "for path in sys.argv[1:]:\n"
        "    m = tf.saved_model.load(path)\n"
        "    out = m.signatures['serving_default'](images=tf.zeros([1, 24, 20, 3], tf.uint8))\n"
        "    print(out['labels'].dtype.name, out['labels'].shape, out['probabilities'].shape,\n"
        "          ','.join(n.decode() for n in m.classes().numpy()))\n"
        "assert not any(name.startswith('lipseg_tf') for name in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run([sys.executable, "-c", script] + [str(exported[m][1]) for m in ("unet", "pix2pix")],
                          cwd="/tmp", env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = "uint8 (1, 24, 20) (1, 24, 20, 5) " + ",".join(NAMES)
    assert done.stdout.splitlines() == [expected, expected]


# ------------------------------------------------------------------------------- test-time flip (tta)

def mirrored(probabilities: np.ndarray) -> np.ndarray:
    """The probabilities of a mirrored image as they should be: flipped, left/right classes swapped."""
    return probabilities[:, :, ::-1][..., FLIP]


def test_flip_tta_answers_a_mirrored_face_with_the_mirrored_answer(tmp_path):
    """An untrained (so lopsided) network: with tta flip, mirror in -> mirror out with l/r swapped, in the
    Segmenter (test mode), in the exported SavedModel, and in predict.py's --tta on a plain export."""
    from lipseg_tf.prep.parts import DEFAULT_PARTS
    from lipseg_tf.serve.predict import Model
    from lipseg_tf.serve.savedmodel import Segmenter, export
    from lipseg_tf.train.networks import build_unet

    tf.keras.utils.set_random_seed(3)
    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    network = build_unet(classes.num_classes, base_filters=4, depth=2)
    images = photos(2, SIZE, SIZE, seed=5)
    x = tf.constant(images, tf.float32) / 127.5 - 1.0
    x_mirror = tf.reverse(x, axis=[2])
    plain = Segmenter(network, SIZE, classes, output="probabilities")
    flip = Segmenter(network, SIZE, classes, output="probabilities", tta="flip")
    p, p_mirror = plain.probabilities_at_model_size(x).numpy(), plain.probabilities_at_model_size(x_mirror).numpy()
    assert np.abs(p_mirror - mirrored(p)).max() > 0.01  # the network alone is not symmetric
    p, p_mirror = flip.probabilities_at_model_size(x).numpy(), flip.probabilities_at_model_size(x_mirror).numpy()
    np.testing.assert_allclose(p_mirror, mirrored(p), atol=1e-5)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)

    export(flip, classes, tmp_path / "flip")
    assert json.loads((tmp_path / "flip" / "classes.json").read_text())["tta"] == "flip"
    serve = tf.saved_model.load(str(tmp_path / "flip")).signatures["serving_default"]
    big = photos(1, 48, 40, seed=6)  # resized inside the graph: the mirror of a resize is the resize of the mirror
    out = serve(images=tf.constant(big))["probabilities"].numpy()
    out_mirror = serve(images=tf.constant(big[:, :, ::-1]))["probabilities"].numpy()
    np.testing.assert_allclose(out_mirror, mirrored(out), atol=1e-5)

    export(plain, classes, tmp_path / "plain")
    assert "tta" not in json.loads((tmp_path / "plain" / "classes.json").read_text())
    model = Model(tmp_path / "plain", tta="flip")
    assert model.tta == "flip"
    np.testing.assert_allclose(model(images[:, :, ::-1]), mirrored(model(images)), atol=1e-5)
    np.testing.assert_allclose(model(images), Model(tmp_path / "flip")(images), atol=1e-5)  # the same average


def test_tta_flag_in_test_and_export_and_crop_from_pairs_json(exported, tmp_path):
    """unet.py --tta flip: test mode scores the flip average, export records it; a run whose pairs.json
    has a crop exports it into classes.json."""
    run_dir, _ = exported["unet"]
    ab_dir = make_ab_dataset(tmp_path / "ab", {"test": 2}, seed=4)
    assert runner.main("unet", ["--mode", "export", "--checkpoint", str(run_dir), "--output_dir",
                                str(tmp_path / "export"), "--tta", "flip"]) == 0
    assert json.loads((tmp_path / "export" / "classes.json").read_text())["tta"] == "flip"
    assert runner.main("unet", ["--mode", "test", "--checkpoint", str(run_dir), "--input_dir", str(ab_dir),
                                "--output_dir", str(tmp_path / "test"), "--tta", "flip"]) == 0
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    for name in ("test000", "test001"):
        seen = np.asarray(Image.open(tmp_path / "test" / "images" / f"{name}-inputs.png"))
        expected = serve(images=tf.constant(seen[None]))["labels"].numpy()[0]
        labels = np.asarray(Image.open(tmp_path / "test" / "labels" / f"{name}.png"))
        assert np.mean(labels == expected) > 0.99

    crop_run = tmp_path / "crop-run"
    shutil.copytree(run_dir, crop_run)
    options = json.loads((crop_run / "options.json").read_text())
    options["input_dir"] = str(ab_dir)
    (crop_run / "options.json").write_text(json.dumps(options))
    (ab_dir / "pairs.json").write_text(json.dumps({"parts": list(NAMES[1:]), "style": "color",
                                                   "crop": [0.2, 0.36, 0.6]}))
    assert runner.main("unet", ["--mode", "export", "--checkpoint", str(crop_run), "--output_dir",
                                str(tmp_path / "crop-export")]) == 0
    meta = json.loads((tmp_path / "crop-export" / "classes.json").read_text())
    assert meta["crop"] == [0.2, 0.36, 0.6] and meta["framing"] == "celebahq" and "tta" not in meta


@pytest.mark.parametrize("source", ["export", "run"])
def test_init_from_takes_the_weights_of_an_export_or_a_run_at_another_size(exported, source):
    """unet.py --init_from: a fresh network at 64 px with the weights of the 32 px run (to fine-tune)."""
    run_dir, export_dir = exported["unet"]
    config = from_options(load_options(run_dir), crop_size=64)
    classes = ClassSpec.create(config.parts, config.style)
    images = tf.constant(photos(2, 64, 64) / 127.5 - 1.0, tf.float32)
    model = unet.build(config, classes)
    unet.init_weights(model, export_dir if source == "export" else run_dir, classes)
    trained = unet.load_model(config, classes, run_dir, select="best")
    np.testing.assert_allclose(model(images, training=False).numpy(), trained(images, training=False).numpy(),
                               atol=1e-5)


def test_init_from_a_wider_network_is_one_line(exported):
    from lipseg_tf.errors import UserError
    run_dir, export_dir = exported["unet"]
    config = from_options(load_options(run_dir), ngf=max(1, load_options(run_dir)["ngf"] // 2))
    classes = ClassSpec.create(config.parts, config.style)
    with pytest.raises(UserError, match="--init_from .*does not fit.*a wider one cannot be"):
        unet.init_weights(unet.build(config, classes), export_dir, classes)
    other = ClassSpec.create(("l_eye", "r_eye", "u_lip"), config.style)
    with pytest.raises(UserError, match="names the classes"):
        unet.init_weights(unet.build(config, other), export_dir, other)


@pytest.mark.parametrize("source", ["export", "run"])
def test_init_from_a_narrower_network_widens_it_to_the_same_probabilities(exported, source):
    """unet.py --init_from with a larger --ngf: train/widen.py pads the trained weights into the wider
    network, which then computes the narrow one's probabilities (and has more channels to train)."""
    run_dir, export_dir = exported["unet"]
    narrow_config = from_options(load_options(run_dir))
    config = from_options(load_options(run_dir), ngf=narrow_config.ngf + 2)
    classes = ClassSpec.create(config.parts, config.style)
    images = tf.constant(photos(2, config.crop_size, config.crop_size) / 127.5 - 1.0, tf.float32)
    model = unet.build(config, classes)
    unet.init_weights(model, export_dir if source == "export" else run_dir, classes)
    assert unet.first_filters(model) == narrow_config.ngf + 2
    trained = unet.load_model(narrow_config, classes, run_dir, select="best")
    expected = trained(images, training=False).numpy()
    np.testing.assert_allclose(model(images, training=False).numpy(), expected, atol=1e-5)
    # The new channels are live: the weights from them into the old ones get gradients.
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(images, training=True)[..., 1])
    kernel = model.get_layer("encoder_stage1_conv2").kernel
    gradient = tape.gradient(loss, kernel).numpy()
    assert np.abs(gradient[:, :, narrow_config.ngf:, :narrow_config.ngf]).max() > 0


def test_segmenter_generator_starts_as_the_unet_it_is_initialised_from(exported):
    """pix2pix --generator segmenter --init_from: the generator paints the U-Net's probabilities in the
    palette, so at the start its decoded mask is the U-Net's, class for class."""
    from lipseg_tf.train.config import Pix2PixConfig
    run_dir, export_dir = exported["unet"]
    unet_config = from_options(load_options(run_dir))
    classes = ClassSpec.create(unet_config.parts, unet_config.style)
    config = Pix2PixConfig(crop_size=SIZE, ngf=unet_config.ngf, depth=unet_config.depth, generator="segmenter")
    generator = pix2pix.build_generator(config, classes)
    assert [w.name for w in generator.non_trainable_weights if "paint" in w.path] == ["kernel"]
    pix2pix.init_generator(generator, export_dir, classes)
    images = tf.constant(photos(2, SIZE, SIZE) / 127.5 - 1.0, tf.float32)
    probabilities = unet.load_model(unet_config, classes, run_dir, select="best")(images, training=False).numpy()
    palette = pipeline.colors_to_model_range(classes.colors).numpy()
    painted = generator(images, training=False).numpy()
    np.testing.assert_allclose(painted, probabilities @ palette, atol=1e-5)
    # Decoded by the nearest colour, as any pix2pix mask: the U-Net's class wherever it is sure.
    decoded = pipeline.image_to_class_scores(painted, classes.colors).numpy().argmax(-1)
    sure = probabilities.max(-1) > 0.9
    assert (sure & (probabilities.argmax(-1) > 0)).sum() > 20
    np.testing.assert_array_equal(decoded[sure], probabilities.argmax(-1)[sure])


def test_pix2pix_trains_exports_and_serves_a_segmenter_generator(exported, tmp_path):
    """The whole path of --generator segmenter: train from a U-Net, resume-safe options, export, load the
    SavedModel; --init_from with the paper's generator is one line."""
    run_dir, _ = exported["unet"]
    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 4}, jitter_parts=False)
    common = ["--mode", "train", "--input_dir", str(ab_dir), "--crop_size", str(SIZE), "--ngf", "4",
              "--ndf", "4", "--batch_size", "2", "--max_steps", "2", "--init_from", str(run_dir)]
    from lipseg_tf.errors import UserError
    with pytest.raises(UserError, match="--init_from .*only with --generator segmenter"):
        runner.main("pix2pix", common + ["--output_dir", str(tmp_path / "paper")])
    assert not (tmp_path / "paper").exists()
    with pytest.raises(UserError, match="--generator segmenter paints masks: it needs --which_direction AtoB"):
        runner.main("pix2pix", common[:-2] + ["--output_dir", str(tmp_path / "btoa"), "--generator", "segmenter",
                                              "--which_direction", "BtoA"])
    run = tmp_path / "segmenter"
    assert runner.main("pix2pix", common + ["--output_dir", str(run), "--generator", "segmenter",
                                            "--depth", "2"]) == 0
    assert load_options(run)["generator"] == "segmenter"
    assert runner.main("pix2pix", ["--mode", "export", "--checkpoint", str(run),
                                   "--output_dir", str(tmp_path / "export")]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    out = loaded.signatures["serving_default"](images=tf.constant(photos(1, 48, 40)))
    assert out["labels"].shape == (1, 48, 40) and out["labels"].dtype == tf.uint8


def _variables_bytes(export_dir: Path) -> int:
    return sum(p.stat().st_size for p in (export_dir / "variables").glob("variables.data-*"))


def test_float16_weights_halve_the_export_and_keep_its_answers(exported, tmp_path):
    """--weights float16: the SavedModel stores float16 weights (about half the bytes) and computes in
    float32; its probabilities stay within rounding of the float32 export's, and --init_from and
    tools/reexport read it back."""
    from lipseg_tf.tools import reexport

    run_dir, export_dir = exported["unet"]
    half_dir = tmp_path / "half"
    assert runner.main("unet", ["--mode", "export", "--checkpoint", str(run_dir), "--output_dir", str(half_dir),
                                "--weights", "float16"]) == 0
    reader = tf.train.load_checkpoint(str(half_dir / "variables" / "variables"))
    weights = [n for n in reader.get_variable_to_dtype_map() if n.startswith("network/")]
    assert {reader.get_variable_to_dtype_map()[n] for n in weights} == {tf.float16}
    count = sum(int(np.prod(reader.get_variable_to_shape_map()[n])) for n in weights)
    # Two bytes fewer per weight (the rest of the file is the object graph, the same in both).
    assert _variables_bytes(export_dir) - _variables_bytes(half_dir) >= 1.9 * count
    images = tf.constant(photos(2, 48, 48))
    full = tf.saved_model.load(str(export_dir)).signatures["serving_default"](images=images)
    half = tf.saved_model.load(str(half_dir)).signatures["serving_default"](images=images)
    assert half["probabilities"].dtype == tf.float32
    difference = np.abs(full["probabilities"].numpy() - half["probabilities"].numpy())
    assert 0 < difference.max() < 1e-2
    assert (full["labels"].numpy() == half["labels"].numpy()).mean() > 0.99

    config = from_options(load_options(run_dir))
    classes = ClassSpec.create(config.parts, config.style)
    model = unet.build(config, classes)
    unet.init_weights(model, half_dir, classes)
    crops = tf.constant(photos(2, SIZE, SIZE) / 127.5 - 1.0, tf.float32)
    trained = unet.load_model(config, classes, run_dir, select="best")
    np.testing.assert_allclose(model(crops, training=False).numpy(), trained(crops, training=False).numpy(),
                               atol=1e-2)
    assert reexport.main([str(export_dir), str(tmp_path / "re-half"), "--weights", "float16"]) == 0
    assert reexport.main([str(half_dir), str(tmp_path / "re-again")]) == 0    # stays float16, as SRC
    again = tf.train.load_checkpoint(str(tmp_path / "re-again" / "variables" / "variables"))
    assert tf.float16 in again.get_variable_to_dtype_map().values()


def test_float16_weights_are_for_unet_savedmodels_only(exported, tmp_path):
    from lipseg_tf.errors import UserError
    run_dir, _ = exported["pix2pix"]
    with pytest.raises(UserError, match="--weights float16: only U-Net SavedModels"):
        runner.main("pix2pix", ["--mode", "export", "--checkpoint", str(run_dir), "--output_dir",
                                str(tmp_path / "p"), "--weights", "float16"])
    assert not (tmp_path / "p").exists()


def test_background_scale_is_folded_into_the_export_and_chosen_on_val(exported, tmp_path, capfd):
    """--background_scale S: the export's probabilities are the plain export's with the background's
    multiplied by S and renormalised, classes.json says S and a reexport keeps it; auto chooses S on a
    val split (test mode: of --input_dir) and refuses pairs without one."""
    from lipseg_tf.errors import UserError
    from lipseg_tf.tools import reexport

    run_dir, export_dir = exported["unet"]
    scaled_dir = tmp_path / "scaled"
    assert runner.main("unet", ["--mode", "export", "--checkpoint", str(run_dir), "--output_dir", str(scaled_dir),
                                "--background_scale", "2"]) == 0
    assert json.loads((scaled_dir / "classes.json").read_text())["background_scale"] == 2.0
    images = tf.constant(photos(2, SIZE, SIZE))   # at the network's size: no resampling after it
    plain = tf.saved_model.load(str(export_dir)).signatures["serve_crop"](images=images)["probabilities"].numpy()
    scaled = tf.saved_model.load(str(scaled_dir)).signatures["serve_crop"](images=images)["probabilities"].numpy()
    expected = plain * np.array([2.0, 1, 1, 1, 1], np.float32)
    np.testing.assert_allclose(scaled, expected / expected.sum(-1, keepdims=True), atol=1e-4)
    assert reexport.main([str(scaled_dir), str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "classes.json").read_text())["background_scale"] == 2.0

    with pytest.raises(UserError, match="--background_scale auto chooses on a val split"):
        runner.main("unet", ["--mode", "export", "--checkpoint", str(run_dir), "--output_dir", str(tmp_path / "x"),
                             "--background_scale", "auto"])
    pairs = make_ab_dataset(tmp_path / "pairs", {"val": 4, "test": 4}, jitter_parts=False)
    capfd.readouterr()
    assert runner.main("unet", ["--mode", "test", "--checkpoint", str(run_dir), "--input_dir", str(pairs),
                                "--output_dir", str(tmp_path / "test"), "--background_scale", "auto"]) == 0
    err = capfd.readouterr().err
    assert "--background_scale auto:" in err and "on the 4 val pairs" in err
    assert json.loads((tmp_path / "test" / "metrics.json").read_text())["images"] == 4
    with pytest.raises(UserError, match="--background_scale 2: U-Net only"):
        runner.main("pix2pix", ["--mode", "export", "--checkpoint", str(exported["pix2pix"][0]), "--output_dir",
                                str(tmp_path / "p"), "--background_scale", "2"])
