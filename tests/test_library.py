"""Installed like a library: a wheel built from the repository holds the pretrained model, and its
`lipseg-predict`, installed without dependencies into a folder of its own and run from another folder
with the repository not importable, finds the model through the package. Quiet by default: predict.py
writes only lipseg_tf's own lines on stderr, and --verbose lets TensorFlow's through."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import REPO

MODEL_FILES = ("MODEL.md", *(f"{folder}/{name}" for folder in ("unet", "unet-small") for name in (
               "classes.json", "saved_model.pb", "fingerprint.pb", "variables/variables.index",
               "variables/variables.data-00000-of-00001", "crop.tflite")),
               "unet-small/crop-dynamic.tflite")


def small_photo(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(path)
    return path


def grace_hopper() -> Path:
    from matplotlib import cbook
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def clean_env(**extra) -> dict:
    """This environment without PYTHONPATH and TensorFlow's log level (what a user's shell has)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    return {**env, **extra}


def own_lines(stderr: str) -> list[str]:
    """The stderr lines that are not lipseg_tf's own (`lipseg_tf: ...`)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("lipseg_tf: ")]


def test_the_wheel_holds_the_model_and_its_lipseg_predict_runs_from_anywhere(tmp_path):
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools in this environment")
    source = tmp_path / "source"  # a copy, so that the build writes nothing into the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "lipseg_tf", source / "lipseg_tf", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(pip + ["wheel", ".", "--no-deps", "--no-build-isolation", "--no-index", "-w",
                                  str(tmp_path / "dist")], cwd=source, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, = (tmp_path / "dist").glob("lipseg_tf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"lipseg_tf/pretrained/{name}" for name in MODEL_FILES} <= names
    target = tmp_path / "target"
    installed = subprocess.run(pip + ["install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The user's one-liner, `lipseg-predict --input photo.jpg`. The console command's interpreter is this
    # one (its venv's site-packages: TensorFlow and the rest); the package comes from the target folder.
    done = subprocess.run([str(target / "bin" / "lipseg-predict"), "--input", str(grace_hopper())],
                          cwd=elsewhere, env=clean_env(PYTHONPATH=str(target)), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert own_lines(done.stderr) == [], done.stderr
    summary = json.loads((elsewhere / "predict_out" / "summary.json").read_text())
    assert summary["model"] == str(target / "lipseg_tf" / "pretrained" / "unet-small") and summary["faces"] == 1
    assert summary["runtime"] == "tflite"   # the wheel's crop.tflite, quietly (no XNNPACK line above)
    mask = np.asarray(Image.open(elsewhere / "predict_out" / "grace_hopper-mask.png"))
    assert mask.shape == (600, 512) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1, 2, 3, 4}   # both eyes and both lips (test_pretrained.py: where)


def test_predict_is_quiet_unless_verbose(tmp_path):
    photo = small_photo(tmp_path / "small.png")
    runs = {}
    for verbose in (False, True):
        out = tmp_path / f"out-{verbose}"
        command = [sys.executable, "predict.py", "--input", str(photo), "--output", str(out), "--no-detect"]
        done = subprocess.run(command + ["--verbose"] * verbose, cwd=REPO, env=clean_env(), capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert (out / "small-mask.png").is_file()
        runs[verbose] = done.stderr
    assert own_lines(runs[False]) == [], runs[False]
    assert any(line.startswith("lipseg_tf: results in") for line in runs[False].splitlines())
    # TensorFlow writes its start-up lines (oneDNN, CPU features, CUDA) at import: shown with --verbose.
    assert own_lines(runs[True]), runs[True]
    assert any("small.png: 1 face(s)" in line for line in runs[True].splitlines())


def test_the_python_api_is_quiet(tmp_path):
    # A user's script: no TensorFlow start-up lines (oneDNN, CPU features, CUDA) from the Segmenter, the
    # detector or the TFLite interpreter; its own print is all that stderr and stdout show.
    photo = small_photo(tmp_path / "small.png")
    script = ("import sys, lipseg_tf\n"
              "seg = lipseg_tf.Segmenter()\n"
              f"result = seg({str(photo)!r})\n"
              "print(result.labels.shape, len(result.faces), seg.model.runtime)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=clean_env(PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", done.stderr
    assert done.stdout.split() == ["(80,", "96)", "0", "tflite"]
