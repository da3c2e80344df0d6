"""Training: one pix2pix step updates both networks; a short U-Net run learns the tiny data; runs resume
from their checkpoints; test mode writes the pictures, labels and metrics it promises."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import COLORS, make_ab_dataset
from lipseg_tf.cli import runner
from lipseg_tf.evaluate.test import run_test, to_uint8
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.parts import DEFAULT_PARTS
from lipseg_tf.train import metrics, pipeline, pix2pix, unet
from lipseg_tf.train.config import Pix2PixConfig, UnetConfig


@pytest.fixture(scope="module")
def ab_dir(tmp_path_factory) -> Path:
    return make_ab_dataset(tmp_path_factory.mktemp("ab"), {"train": 16, "test": 4})


# ---------------------------------------------------------------------------------------------- pix2pix

def test_generator_and_discriminator_losses_by_hand():
    logits = tf.zeros((1, 2, 2, 1))                          # sigmoid 0.5: BCE log 2 either way
    target = tf.constant([[[[0.5, -0.5, 1.0]]]])
    output = tf.constant([[[[0.0, 0.0, 0.0]]]])              # L1 = (0.5 + 0.5 + 1) / 3
    total, gan_part, l1 = pix2pix.generator_loss(logits, output, target, gan_weight=2.0, l1_weight=10.0)
    assert float(gan_part) == pytest.approx(math.log(2), rel=1e-5)
    assert float(l1) == pytest.approx(2 / 3, rel=1e-5)
    assert float(total) == pytest.approx(2 * math.log(2) + 10 * 2 / 3, rel=1e-5)
    assert float(pix2pix.discriminator_loss(logits, logits)) == pytest.approx(2 * math.log(2), rel=1e-5)
    # a confident, correct discriminator has a small loss
    assert float(pix2pix.discriminator_loss(tf.fill((1, 2, 2, 1), 8.0), tf.fill((1, 2, 2, 1), -8.0))) < 1e-3


@pytest.mark.parametrize("eager", [True, False])
def test_one_pix2pix_step_updates_both_networks(eager):
    config = Pix2PixConfig(crop_size=32, ngf=4, ndf=4, eager=eager, gan_weight=2.0, l1_weight=10.0, lr=1e-3)
    model = pix2pix.Pix2Pix(config)
    image = tf.random.uniform((2, 32, 32, 3), -1.0, 1.0, seed=1)
    target = tf.random.uniform((2, 32, 32, 3), -1.0, 1.0, seed=2)
    before = {name: [v.numpy().copy() for v in net.trainable_variables]
              for name, net in (("generator", model.generator), ("discriminator", model.discriminator))}
    assert int(model.step) == 0
    losses = model.train_step(image, target)
    assert set(losses) == {"gen_total", "gen_gan", "gen_l1", "disc"}
    values = {k: float(v) for k, v in losses.items()}
    assert all(math.isfinite(v) for v in values.values())
    assert values["gen_total"] == pytest.approx(2.0 * values["gen_gan"] + 10.0 * values["gen_l1"], rel=1e-5)
    assert 0.3 < values["gen_l1"] < 1.5            # random output vs random target in [-1, 1]
    assert values["disc"] > 0
    assert int(model.step) == 1
    for name, net in (("generator", model.generator), ("discriminator", model.discriminator)):
        changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before[name], net.trainable_variables)]
        assert all(changed), f"{name}: {changed.count(False)} of {len(changed)} variables not updated"
    model.train_step(image, target)
    assert int(model.step) == 2
    assert int(model.gen_optimizer.iterations) == 2 and int(model.disc_optimizer.iterations) == 2


# ---------------------------------------------------------------------------------------------- U-Net learns

UNET_OPTIONS = ["--crop_size", "32", "--ngf", "8", "--depth", "2", "--batch_size", "4", "--lr", "0.005",
                "--no_flip", "--seed", "1"]


def test_short_unet_run_learns_the_tiny_data(ab_dir, tmp_path):
    run_dir, result_dir = tmp_path / "run", tmp_path / "results"
    assert runner.main("unet", ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(run_dir),
                                "--max_steps", "100"] + UNET_OPTIONS) == 0
    assert runner.main("unet", ["--mode", "test", "--input_dir", str(ab_dir), "--checkpoint", str(run_dir),
                                "--output_dir", str(result_dir)]) == 0
    trained = json.loads((result_dir / "metrics.json").read_text())

    # The same network untrained, scored by the same evaluation.
    config = UnetConfig(crop_size=32, ngf=8, depth=2)
    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    untrained_model = unet.build(config, classes)
    untrained = run_test(pipeline.find_pair_files(ab_dir, "test"), classes,
                         lambda x: untrained_model(x, training=False), tmp_path / "untrained", 32)
    untrained_f1 = untrained["mean_f1"] or 0.0
    assert trained["mean_f1"] >= 0.6, trained
    assert trained["mean_f1"] >= untrained_f1 + 0.3, (trained["mean_f1"], untrained_f1)
    assert all(v["f1"] is not None and v["f1"] > 0.3 for v in trained["parts"].values()), trained["parts"]


# ---------------------------------------------------------------------------------------------- resume + test

def checkpoint_value(run_dir: Path, name: str) -> int:
    return int(tf.train.load_variable(tf.train.latest_checkpoint(str(run_dir / "checkpoints")),
                                      f"{name}/.ATTRIBUTES/VARIABLE_VALUE"))


def checkpoint_files(run_dir: Path) -> set[str]:
    return {p.name for p in (run_dir / "checkpoints").glob("ckpt-*.index")}


def logged_steps(log_dir: Path, tag: str) -> list[list[int]]:
    """Steps of `tag` in each TensorBoard event file of log_dir, file by file in the order written."""
    result = []
    for path in sorted(log_dir.glob("events.out.tfevents.*"), key=lambda p: p.name.split(".")[3]):
        steps = []
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            if any(v.tag == tag for v in event.summary.value):
                steps.append(int(event.step))
        result.append(steps)
    return result


def check_test_outputs(result_dir: Path, ab_dir: Path, size: int):
    """Every promised file is there, and metrics.json agrees with the labels written and the true masks."""
    files = pipeline.find_pair_files(ab_dir, "test")
    truth = pipeline.make_dataset(files, COLORS, [0, 2, 1, 3, 4], training=False, image_size=size, scale_size=size,
                                  batch_size=len(files))
    images, true_labels = (t.numpy() for t in next(iter(truth)))
    confusion = np.zeros((5, 5), np.int64)
    for path, image, target in zip(files, images, true_labels):
        name = path.stem
        inputs = np.asarray(Image.open(result_dir / "images" / f"{name}-inputs.png"))
        outputs = np.asarray(Image.open(result_dir / "images" / f"{name}-outputs.png"))
        targets = np.asarray(Image.open(result_dir / "images" / f"{name}-targets.png"))
        labels = np.asarray(Image.open(result_dir / "labels" / f"{name}.png"))
        assert inputs.shape == outputs.shape == targets.shape == (size, size, 3)
        assert np.abs(inputs.astype(int) - to_uint8(image).astype(int)).max() <= 1
        np.testing.assert_array_equal(targets, COLORS[target])
        assert labels.dtype == np.uint8 and labels.shape == (size, size)
        assert set(np.unique(labels)) <= set(range(5))
        np.testing.assert_array_equal(outputs, COLORS[labels])
        confusion += metrics.confusion_matrix(target, labels, 5)
    result = json.loads((result_dir / "metrics.json").read_text())
    assert {"parts", "mean_f1", "mean_iou", "images"} <= set(result)
    assert result["images"] == len(files)
    assert list(result["parts"]) == list(DEFAULT_PARTS)
    expected = metrics.summary(confusion, ("background",) + DEFAULT_PARTS, len(files))
    for key in ("mean_f1", "mean_iou"):
        assert (result[key] is None) == (expected[key] is None)
        if expected[key] is not None:
            assert result[key] == pytest.approx(expected[key], abs=1e-6)
    return result


def test_pix2pix_resumes_from_its_checkpoint_and_tests(ab_dir, tmp_path):
    run_dir, result_dir = tmp_path / "run", tmp_path / "results"
    train = ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(run_dir), "--crop_size", "32",
             "--ngf", "4", "--ndf", "4", "--batch_size", "2", "--summary_freq", "1", "--eager"]
    assert runner.main("pix2pix", train + ["--max_steps", "2"]) == 0
    assert checkpoint_files(run_dir) == {"ckpt-2.index"}
    assert checkpoint_value(run_dir, "step") == 2
    options = json.loads((run_dir / "options.json").read_text())
    assert options["model"] == "pix2pix" and options["crop_size"] == 32 and options["ngf"] == 4
    assert options["ndf"] == 4 and options["parts"] == list(DEFAULT_PARTS) and options["max_steps"] == 2

    assert runner.main("pix2pix", train + ["--max_steps", "2"]) == 0     # already done: nothing trained
    assert checkpoint_files(run_dir) == {"ckpt-2.index"}

    assert runner.main("pix2pix", train + ["--max_steps", "4"]) == 0
    assert checkpoint_files(run_dir) == {"ckpt-2.index", "ckpt-4.index"}
    assert checkpoint_value(run_dir, "step") == 4
    assert checkpoint_value(run_dir, "gen_optimizer/_iterations") == 4   # optimizer state came back too
    # the second run logged steps 3 and 4 only: it went on from step 2, it did not start over
    runs = [steps for steps in logged_steps(run_dir / "logs" / "train", "loss/gen_total") if steps]
    assert runs == [[1, 2], [3, 4]]
    assert json.loads((run_dir / "options.json").read_text())["max_steps"] == 4

    assert runner.main("pix2pix", ["--mode", "test", "--input_dir", str(ab_dir), "--checkpoint", str(run_dir),
                                   "--output_dir", str(result_dir)]) == 0
    check_test_outputs(result_dir, ab_dir, 32)


def test_unet_resumes_from_its_checkpoint_and_tests(ab_dir, tmp_path):
    run_dir, result_dir = tmp_path / "run", tmp_path / "results"
    train = ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(run_dir), "--crop_size", "32",
             "--ngf", "4", "--depth", "2", "--batch_size", "8", "--eager"]
    assert runner.main("unet", train + ["--max_steps", "2"]) == 0            # 16 pairs / 8 = 2 steps = 1 epoch
    assert checkpoint_files(run_dir) == {"ckpt-2.index"}                    # ckpt-N: the step
    assert checkpoint_value(run_dir, "step") == 2
    options = json.loads((run_dir / "options.json").read_text())
    assert options["model"] == "unet" and options["crop_size"] == 32 and options["depth"] == 2
    assert options["ngf"] == 4 and options["parts"] == list(DEFAULT_PARTS)

    assert runner.main("unet", train + ["--max_steps", "6"]) == 0            # 3 epochs in all
    assert checkpoint_files(run_dir) == {"ckpt-2.index", "ckpt-4.index", "ckpt-6.index"}
    assert checkpoint_value(run_dir, "step") == 6
    assert checkpoint_value(run_dir, "optimizer/_iterations") == 6
    with open(run_dir / "log.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1, 2]   # went on from epoch 1

    assert runner.main("unet", ["--mode", "test", "--input_dir", str(ab_dir), "--checkpoint", str(run_dir),
                                "--output_dir", str(result_dir)]) == 0
    check_test_outputs(result_dir, ab_dir, 32)
