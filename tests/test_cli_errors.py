"""Bad inputs to unet.py / pix2pix.py: exit status 1, one `error:` line naming the culprit, no traceback,
nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, make_ab_dataset
from lipseg_tf.cli import runner
from lipseg_tf.cli.common import run
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.parts import CELEBAMASK_PARTS, DEFAULT_PARTS


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, script, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


def run_inprocess(capsys, model: str, *args: str) -> tuple[int, str]:
    code = run(lambda argv: runner.main(model, argv), list(args))
    return code, capsys.readouterr().err


def error_line(stderr: str) -> str:
    """The one `error:` line; it is the last line and nothing looks like a traceback."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert lines[-1] == errors[0], stderr
    return errors[0]


# ------------------------------------------------------------------------- through the scripts (subprocess)

def test_unet_script_test_mode_with_a_folder_that_is_not_a_run(tmp_path):
    ab_dir = make_ab_dataset(tmp_path / "ab", {"test": 1}, size=32)
    not_a_run = tmp_path / "not_a_run"
    not_a_run.mkdir()
    done = run_script("unet.py", "--mode", "test", "--checkpoint", str(not_a_run), "--input_dir", str(ab_dir),
                      "--output_dir", str(tmp_path / "out"))
    assert done.returncode == 1
    line = error_line(done.stderr)
    assert str(not_a_run / "options.json") in line and "not found" in line
    assert not (tmp_path / "out").exists()
    assert done.stdout == ""


def test_pix2pix_script_train_with_a_missing_input_folder(tmp_path):
    missing = tmp_path / "no_such_pairs"
    done = run_script("pix2pix.py", "--mode", "train", "--input_dir", str(missing),
                      "--output_dir", str(tmp_path / "run"), "--crop_size", "32", "--ngf", "4", "--ndf", "4")
    assert done.returncode == 1
    line = error_line(done.stderr)
    assert str(missing) in line and "folder not found" in line
    assert not (tmp_path / "run").exists()


def test_unet_script_unknown_part_lists_the_valid_ones(tmp_path):
    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 2}, size=32)
    done = run_script("unet.py", "--mode", "train", "--input_dir", str(ab_dir), "--output_dir",
                      str(tmp_path / "run"), "--parts", "l_eye,lips")
    assert done.returncode == 1
    line = error_line(done.stderr)
    assert "'lips'" in line and ",".join(CELEBAMASK_PARTS) in line
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------- in-process, same entry point

@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_train_on_an_empty_input_folder(tmp_path, capsys, model):
    (tmp_path / "ab" / "train").mkdir(parents=True)
    code, err = run_inprocess(capsys, model, "--mode", "train", "--input_dir", str(tmp_path / "ab"),
                              "--output_dir", str(tmp_path / "run"), "--crop_size", "32")
    assert code == 1
    line = error_line(err)
    assert str(tmp_path / "ab" / "train") in line and "no AB pair images" in line
    assert not (tmp_path / "run").exists()


def test_train_on_an_ab_file_of_the_wrong_shape(tmp_path, capsys):
    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 2}, size=32)
    bad = ab_dir / "train" / "005.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(bad)
    code, err = run_inprocess(capsys, "unet", "--mode", "train", "--input_dir", str(ab_dir),
                              "--output_dir", str(tmp_path / "run"), "--crop_size", "32")
    assert code == 1
    line = error_line(err)
    assert str(bad) in line and "twice as wide" in line and "64x64" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("mode", ["test", "export"])
def test_test_and_export_need_a_checkpoint(tmp_path, capsys, mode):
    code, err = run_inprocess(capsys, "unet", "--mode", mode, "--input_dir", str(tmp_path),
                              "--output_dir", str(tmp_path / "out"))
    assert code == 1
    assert f"--mode {mode} needs --checkpoint" in error_line(err)
    assert not (tmp_path / "out").exists()


def test_bad_crop_size_fails_before_writing(tmp_path, capsys):
    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 2}, size=32)
    code, err = run_inprocess(capsys, "pix2pix", "--mode", "train", "--input_dir", str(ab_dir),
                              "--output_dir", str(tmp_path / "run"), "--crop_size", "48", "--ngf", "4")
    assert code == 1
    assert "48 must be a power of two" in error_line(err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--decay_epochs", "--l1_balance"])
def test_negative_pix2pix_option_fails_before_writing(tmp_path, capsys, flag):
    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 2}, size=32)
    code, err = run_inprocess(capsys, "pix2pix", "--mode", "train", "--input_dir", str(ab_dir),
                              "--output_dir", str(tmp_path / "run"), "--crop_size", "32", "--ngf", "4", flag, "-1")
    assert code == 1
    assert f"{flag} must be >= 0, got -1" in error_line(err)
    assert not (tmp_path / "run").exists()


def write_run(folder: Path, options_text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "options.json").write_text(options_text)
    return folder


@pytest.mark.parametrize("options_text", ['{"model": "unet", "image_size": 32,', "\x00\x01 not json"])
def test_corrupt_options_json(tmp_path, capsys, options_text):
    run_dir = write_run(tmp_path / "run", options_text)
    code, err = run_inprocess(capsys, "unet", "--mode", "export", "--checkpoint", str(run_dir),
                              "--output_dir", str(tmp_path / "out"))
    assert code == 1
    line = error_line(err)
    assert str(run_dir / "options.json") in line and "not valid JSON" in line
    assert not (tmp_path / "out").exists()


def test_options_json_that_is_not_an_object(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", "[1, 2, 3]\n")
    code, err = run_inprocess(capsys, "unet", "--mode", "export", "--checkpoint", str(run_dir),
                              "--output_dir", str(tmp_path / "out"))
    assert code == 1
    assert str(run_dir / "options.json") in error_line(err)


def test_run_folder_without_checkpoints(tmp_path, capsys):
    ab_dir = make_ab_dataset(tmp_path / "ab", {"test": 1}, size=32)
    run_dir = write_run(tmp_path / "run", json.dumps({"model": "unet", "image_size": 32, "ngf": 4, "depth": 2,
                                                      "parts": list(DEFAULT_PARTS), "style": "color"}))
    code, err = run_inprocess(capsys, "unet", "--mode", "test", "--checkpoint", str(run_dir),
                              "--input_dir", str(ab_dir), "--output_dir", str(tmp_path / "out"))
    assert code == 1
    line = error_line(err)
    assert str(run_dir / "checkpoints") in line and "no checkpoint found" in line
    assert not (tmp_path / "out").exists()


def test_run_of_the_other_model(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", json.dumps({"model": "pix2pix", "image_size": 32}))
    code, err = run_inprocess(capsys, "unet", "--mode", "export", "--checkpoint", str(run_dir),
                              "--output_dir", str(tmp_path / "out"))
    assert code == 1
    assert "holds a pix2pix run, not a unet run" in error_line(err)
    assert str(run_dir) in error_line(err)
    assert not (tmp_path / "out").exists()


def test_parts_list_with_spaces_is_accepted():
    args = runner.build_parser("unet").parse_args(["--mode", "train", "--parts", "l_eye, r_eye"])
    config = runner.config_from_args("unet", args)
    assert ClassSpec.create(config.parts, config.style).parts == ("l_eye", "r_eye")
