"""One trainer skeleton: both models train exactly --max_steps (ckpt-N is the step), validate on val/ with
test mode's dataset-level F1 (val.csv, TensorBoard scalars and images), keep the best checkpoint apart
from the latest, and test/export use the best unless --checkpoint_select latest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from helpers import COLORS, make_ab_dataset
from lipseg_tf.cli import runner
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.parts import DEFAULT_PARTS
from lipseg_tf.train import metrics, unet, validation
from lipseg_tf.train.checkpoints import select_checkpoint
from lipseg_tf.train.config import from_options, load_options

EXTRA = {"unet": ["--depth", "2"], "pix2pix": ["--ndf", "4", "--summary_freq", "1"]}


def val_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "val.csv") as handle:
        return list(csv.DictReader(handle))


def tags(log_dir: Path) -> set[str]:
    found = set()
    for path in log_dir.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            found |= {v.tag for v in tf.compat.v1.Event.FromString(record.numpy()).summary.value}
    return found


def best_step_of(rows: list[dict]) -> int:
    """The first step with the highest mean F1 (a later equal score does not replace the best)."""
    best, best_f1 = None, None
    for row in rows:
        if row["mean_f1"] != "" and (best_f1 is None or float(row["mean_f1"]) > best_f1):
            best, best_f1 = int(row["step"]), float(row["mean_f1"])
    return best


def test_evaluate_counts_the_whole_dataset_as_test_mode():
    labels = np.array([[[0, 1], [2, 2]], [[3, 4], [4, 0]]], np.int32)
    predicted = np.array([[[0, 1], [2, 0]], [[3, 3], [4, 0]]])
    scores = tf.one_hot(predicted, 5)
    dataset = tf.data.Dataset.from_tensor_slices((tf.zeros((2, 2, 2, 3)), labels)).batch(1)
    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    batches = iter(scores)
    summary, shown = validation.evaluate(dataset, lambda images: next(batches)[None], classes, keep=1)
    expected = metrics.summary(metrics.confusion_matrix(labels, predicted, 5), classes.names, 2)
    assert summary == expected
    assert summary["parts"]["r_eye"]["f1"] == pytest.approx(2 / 3)     # 1 of 2 found, none wrong: 2 / (2 + 1)
    assert len(shown) == 1
    row = validation.picture_row(*shown[0], classes.colors)
    assert row.shape == (2, 6, 3) and row.dtype == np.uint8
    np.testing.assert_array_equal(row[:, 2:4], COLORS[labels[0]])
    np.testing.assert_array_equal(row[:, 4:], COLORS[predicted[0]])


@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_exact_steps_and_validation_on_val(tiny_pairs, tmp_path, model):
    """10 pairs, batch 4: 2 steps an epoch. --max_steps 5 trains 5 steps (the U-Net used to round up to
    whole epochs), validating at steps 2, 4 and the last."""
    run_dir = tmp_path / "run"
    assert runner.main(model, ["--mode", "train", "--input_dir", str(tiny_pairs["png"]), "--output_dir", str(run_dir),
                               "--crop_size", "32", "--ngf", "4", "--batch_size", "4", "--max_steps", "5",
                               "--eval_freq", "2", "--eager"] + EXTRA[model]) == 0
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert latest.endswith("ckpt-5")
    assert int(tf.train.load_variable(latest, "step/.ATTRIBUTES/VARIABLE_VALUE")) == 5
    rows = val_rows(run_dir)
    assert [int(r["step"]) for r in rows] == [2, 4, 5]
    assert {"mean_f1", "mean_iou", "l_eye_f1", "l_lip_iou"} <= set(rows[0])
    best = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    assert best["step"] == best_step_of(rows)
    assert (run_dir / "checkpoints" / "best" / f"ckpt-{best['step']}.index").is_file()
    logged = tags(run_dir / "logs" / "val")
    assert {"val/mean_f1", "val/l_eye_f1", "val/u_lip_iou", "val/photo_target_prediction"} <= logged
    if model == "unet":
        with open(run_dir / "log.csv") as handle:
            columns = set(next(csv.DictReader(handle)))
        assert "val_mean_f1" in columns and "val_l_eye_f1" in columns and "accuracy" not in columns
    # resumed with the same steps: nothing to do, nothing written
    assert runner.main(model, ["--mode", "train", "--input_dir", str(tiny_pairs["png"]), "--output_dir",
                               str(run_dir), "--max_steps", "5", "--eager", "--continue_train"]) == 0
    assert len(val_rows(run_dir)) == 3


def exported_probabilities(export_dir: Path, images: np.ndarray) -> np.ndarray:
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    return serve(images=tf.constant(images))["probabilities"].numpy()


def test_best_checkpoint_survives_rotation_and_is_what_test_and_export_use(tmp_path):
    """A run that learns, then is wrecked by a huge learning rate: best.json names the step of the highest
    val mean F1 in val.csv, kept in checkpoints/best/ although --max_checkpoints 1 rotated it out; export
    uses it by default and the latest on request."""
    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 8, "val": 2, "test": 2}, size=32, jitter_parts=False)
    run_dir = tmp_path / "run"
    common = ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(run_dir), "--crop_size", "32",
              "--ngf", "4", "--depth", "2", "--batch_size", "4", "--eval_freq", "2", "--max_checkpoints", "1"]
    assert runner.main("unet", common + ["--max_steps", "30", "--lr", "1e-2"]) == 0
    assert runner.main("unet", common + ["--max_steps", "34", "--lr", "50"]) == 0
    rows = val_rows(run_dir)
    assert [int(r["step"]) for r in rows] == list(range(2, 35, 2))
    best = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    assert best["step"] == best_step_of(rows) and best["step"] < 34
    assert best["mean_f1"] == pytest.approx(max(float(r["mean_f1"]) for r in rows), abs=1e-6)
    assert {p.name for p in (run_dir / "checkpoints").glob("ckpt-*.index")} == {"ckpt-34.index"}
    assert select_checkpoint(run_dir, "best").endswith(f"best/ckpt-{best['step']}")
    assert select_checkpoint(run_dir, "latest").endswith("checkpoints/ckpt-34")

    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    config = from_options(load_options(run_dir))
    classes = ClassSpec.create(config.parts, config.style)
    for select, flags in (("best", []), ("latest", ["--checkpoint_select", "latest"])):
        export_dir = tmp_path / f"export-{select}"
        assert runner.main("unet", ["--mode", "export", "--checkpoint", str(run_dir), "--output_dir",
                                    str(export_dir)] + flags) == 0
        network = unet.load_model(config, classes, run_dir, select)
        expected = network(tf.constant(images, tf.float32) / 127.5 - 1.0, training=False).numpy()
        np.testing.assert_allclose(exported_probabilities(export_dir, images), expected, atol=1e-3)
    assert not np.allclose(exported_probabilities(tmp_path / "export-best", images),
                           exported_probabilities(tmp_path / "export-latest", images), atol=1e-3)
    assert runner.main("unet", ["--mode", "test", "--input_dir", str(ab_dir), "--checkpoint", str(run_dir),
                                "--output_dir", str(tmp_path / "results")]) == 0


def test_without_a_val_split_the_best_is_the_latest(tmp_path):
    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 4}, size=32)
    run_dir = tmp_path / "run"
    assert runner.main("pix2pix", ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(run_dir),
                                   "--crop_size", "32", "--ngf", "4", "--ndf", "4", "--batch_size", "2",
                                   "--max_steps", "3", "--eager"]) == 0
    assert not (run_dir / "checkpoints" / "best.json").exists() and not (run_dir / "val.csv").exists()
    assert select_checkpoint(run_dir, "best") == select_checkpoint(run_dir, "latest")
    assert select_checkpoint(run_dir, "best").endswith("ckpt-3")
    assert runner.main("pix2pix", ["--mode", "export", "--checkpoint", str(run_dir), "--output_dir",
                                   str(tmp_path / "export")]) == 0
