"""Every script end to end, as a user runs them, on a tiny synthetic sample in a temporary folder."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import REPO


def run(*args):
    """Run one script from the repository root; fail with its output when it exits non-zero."""
    result = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """sample -> g_mask.py -> process.py -> unet.py / pix2pix.py train, test, export -> print.py."""
    root = tmp_path_factory.mktemp("pipeline")
    data, masks, pairs, runs = root / "sample", root / "masks", root / "pairs", root / "runs"
    run("-m", "lipseg_tf.tools.sample", "--out", data, "--count", 20, "--seed", 3, "--size", 64, "--workers", 2)
    run("g_mask.py", "--data-dir", data, "--out-dir", masks, "--workers", 2)
    run("process.py", "--data-dir", data, "--masks", masks, "--out-dir", pairs, "--size", 32, "--workers", 2)
    tiny = ["--input_dir", pairs, "--crop_size", 32, "--ngf", 4, "--max_steps", 3]
    run("unet.py", "--mode", "train", "--output_dir", runs / "unet", "--depth", 2, "--batch_size", 4, *tiny)
    run("pix2pix.py", "--mode", "train", "--output_dir", runs / "pix2pix", "--ndf", 4, "--batch_size", 2,
        "--eager", *tiny)
    for model in ("unet", "pix2pix"):
        run(f"{model}.py", "--mode", "test", "--checkpoint", runs / model, "--input_dir", pairs,
            "--output_dir", runs / f"{model}-test")
        run(f"{model}.py", "--mode", "export", "--checkpoint", runs / model, "--output_dir", root / f"{model}-export")
        run("print.py", "--input_dir", runs / f"{model}-test", "--output", root / f"{model}-grid.png", "--rows", 2,
            "--no-show")
    return root


def test_dataset_masks_and_pairs_follow_the_layout(pipeline):
    ids = sorted(int(p.stem) for p in (pipeline / "sample" / "CelebA-HQ-img").glob("*.jpg"))
    assert ids == list(range(20))
    mask = np.asarray(Image.open(pipeline / "masks" / "0.png"))
    assert mask.shape == (512, 512, 3)
    meta = json.loads((pipeline / "pairs" / "pairs.json").read_text())
    assert meta["parts"] == ["l_eye", "r_eye", "u_lip", "l_lip"] and meta["synthetic"] is True
    split_files = {s: sorted((pipeline / "pairs" / s).glob("*.png")) for s in ("train", "val", "test")}
    assert sum(len(f) for f in split_files.values()) == 20 and all(split_files.values())
    assert meta["splits"] == {s: len(f) for s, f in split_files.items()}
    ab = np.asarray(Image.open(split_files["train"][0]))
    assert ab.shape == (32, 64, 3)
    palette = {tuple(c) for c in meta["palette"]}
    assert {tuple(c) for c in ab[:, 32:].reshape(-1, 3)} <= palette   # nearest neighbour: no new colours


@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_train_test_and_print_outputs(pipeline, model):
    run_dir = pipeline / "runs" / model
    options = json.loads((run_dir / "options.json").read_text())
    assert options["model"] == model and options["crop_size"] == 32 and options["ngf"] == 4
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    test_dir = pipeline / "runs" / f"{model}-test"
    metrics = json.loads((test_dir / "metrics.json").read_text())
    test_ids = sorted(p.stem for p in (pipeline / "pairs" / "test").glob("*.png"))
    assert metrics["images"] == len(test_ids)
    assert set(metrics["parts"]) == {"l_eye", "r_eye", "u_lip", "l_lip"}
    assert "synthetic" in metrics["data"]
    for name in test_ids:
        for kind in ("inputs", "outputs", "targets"):
            assert np.asarray(Image.open(test_dir / "images" / f"{name}-{kind}.png")).shape == (32, 32, 3)
        labels = np.asarray(Image.open(test_dir / "labels" / f"{name}.png"))
        assert labels.shape == (32, 32) and labels.dtype == np.uint8 and labels.max() <= 4
    grid = Image.open(pipeline / f"{model}-grid.png")
    assert grid.size[0] > 300 and grid.size[1] > 300


@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_exported_model_segments_a_full_size_photo(pipeline, model):
    segmenter = tf.saved_model.load(str(pipeline / f"{model}-export"))
    photo = np.asarray(Image.open(pipeline / "sample" / "CelebA-HQ-img" / "0.jpg"))
    out = segmenter.signatures["serving_default"](images=tf.constant(photo[None]))
    assert out["labels"].shape == (1, 64, 64) and out["labels"].dtype == tf.uint8
    assert out["probabilities"].shape == (1, 64, 64, 5)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-4)
