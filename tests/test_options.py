"""Options declared once: one dataclass field per option, the parser generated from the fields (both
spellings, argument groups, help), flag name == options.json key, each model's options.json without the
other's options, run folders written before the redesign still load, and out-of-range steps are one line."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from helpers import make_ab_dataset
from lipseg_tf.cli import runner
from lipseg_tf.cli.common import run
from lipseg_tf.prep.parts import DEFAULT_PARTS
from lipseg_tf.train.config import (
    GROUPS,
    Pix2PixConfig,
    RunConfig,
    UnetConfig,
    from_options,
    load_options,
    with_model_options,
)

FIXTURES = Path(__file__).parent / "fixtures"
PIX2PIX_ONLY = {"ndf", "which_direction", "l1_weight", "gan_weight", "decay_epochs", "l1_balance", "summary_freq",
                "save_freq", "generator"}
UNET_ONLY = {"dice_weight", "class_balance"}


def flags(parser) -> dict[str, list[str]]:
    """dest -> option strings of every flag of parser."""
    result: dict[str, list[str]] = {}
    for action in parser._actions:
        result.setdefault(action.dest, []).extend(action.option_strings)
    return result


@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_parser_is_generated_from_the_fields_in_groups_with_both_spellings(model):
    parser = runner.build_parser(model)
    cls = {"unet": UnetConfig, "pix2pix": Pix2PixConfig}[model]
    fields = [f for f in dataclasses.fields(cls) if f.metadata.get("flag", True)]
    by_dest = flags(parser)
    for spec in fields:
        assert f"--{spec.name}" in by_dest[spec.name]                      # flag == field == options.json key
        if "_" in spec.name:
            assert f"--{spec.name.replace('_', '-')}" in by_dest[spec.name]
        assert spec.metadata["help"] and spec.metadata["group"] in GROUPS
    titles = {group.title: [a.dest for a in group._group_actions] for group in parser._action_groups}
    assert set(GROUPS) <= set(titles)
    assert "crop_size" in titles["data"] and "max_steps" in titles["training"] and "ngf" in titles["model"]
    assert "precision" in titles["performance"] and "eval_freq" in titles["output"]
    assert all(action.help for action in parser._actions)
    # the other model's options are not flags here
    other = PIX2PIX_ONLY if model == "unet" else UNET_ONLY
    assert not other & set(by_dest)


def test_both_spellings_and_the_boolean_pairs_give_the_same_config():
    underscore = runner.build_parser("unet").parse_args(
        ["--mode", "train", "--max_epochs", "3", "--crop_size", "64", "--no_cache", "--no_flip"])
    dash = runner.build_parser("unet").parse_args(
        ["--mode", "train", "--max-epochs", "3", "--crop-size", "64", "--no-cache", "--no-flip"])
    assert runner.config_from_args("unet", underscore) == runner.config_from_args("unet", dash)
    config = runner.config_from_args("unet", underscore)
    assert (config.max_epochs, config.crop_size, config.cache, config.flip) == (3, 64, False, False)
    assert config.scale_size == 72                                          # 64 * 286 / 256
    defaults = runner.config_from_args("unet", runner.build_parser("unet").parse_args(["--mode", "train"]))
    assert defaults == UnetConfig()
    assert (defaults.batch_size, defaults.ngf, defaults.lr, defaults.cache) == (8, 32, 1e-3, True)
    pix2pix = runner.config_from_args("pix2pix", runner.build_parser("pix2pix").parse_args(["--mode", "train"]))
    assert pix2pix == Pix2PixConfig() and (pix2pix.batch_size, pix2pix.ngf, pix2pix.lr) == (1, 64, 2e-4)


@pytest.mark.parametrize("cls, absent", [(UnetConfig, PIX2PIX_ONLY), (Pix2PixConfig, UNET_ONLY)])
def test_options_json_keys_are_the_flags_of_that_model_only(cls, absent):
    saved = json.loads(cls(crop_size=32).to_json())
    assert not absent & set(saved)
    assert "crop_size" in saved and "image_size" not in saved and "cache" in saved
    parser_dests = {dest for dest, strings in flags(runner.build_parser(cls().model)).items() if strings}
    test_export_only = {"help", "format", "tta", "background_scale", "weights", "verbose"}
    assert set(saved) - {"model"} == parser_dests - test_export_only


@pytest.mark.parametrize("folder, cls", [("unet_run_v1", UnetConfig), ("pix2pix_run_v1", Pix2PixConfig)])
def test_options_json_written_before_the_redesign_loads(folder, cls):
    """options.json files written by the code before options were declared once (image_size, every model's
    options in each file) load as today's config of their model."""
    saved = load_options(FIXTURES / folder)
    assert "image_size" in json.loads((FIXTURES / folder / "options.json").read_text())
    config = from_options(saved)
    assert type(config) is cls and config.crop_size == 32 and config.ngf == 4 and config.parts == DEFAULT_PARTS
    assert config.scale_size == 36
    if cls is UnetConfig:
        assert config.depth == 2 and not hasattr(config, "ndf")
    else:
        # older runs are all of the paper's generator (their "depth" was the U-Net's, unused by it)
        assert config.ndf == 4 and config.which_direction == "AtoB" and config.generator == "paper"
    # what test and export do: today's defaults, with the model's shape from the old file
    fresh = cls(mode="test", checkpoint=str(FIXTURES / folder))
    loaded = with_model_options(fresh, saved)
    assert loaded.crop_size == 32 and loaded.ngf == 4 and loaded.scale_size == 36


def test_run_folder_written_before_the_redesign_tests_and_resumes(tiny_pairs, tmp_path):
    """A U-Net run folder of the old code (ckpt-N counted epochs, no best checkpoint) tests with its latest
    checkpoint, and resumes from the steps its optimizer counted: ckpt-2 held 4 steps."""
    run_dir = tmp_path / "old_run"
    shutil.copytree(FIXTURES / "unet_run_v1", run_dir)
    assert runner.main("unet", ["--mode", "test", "--input_dir", str(tiny_pairs["png"]), "--checkpoint",
                                str(run_dir), "--output_dir", str(tmp_path / "results")]) == 0
    assert json.loads((tmp_path / "results" / "metrics.json").read_text())["images"] == 1
    assert runner.main("unet", ["--mode", "train", "--input_dir", str(tiny_pairs["png"]), "--output_dir",
                                str(run_dir), "--max_steps", "6", "--batch_size", "4", "--continue_train",
                                "--eager"]) == 0
    assert (run_dir / "checkpoints" / "ckpt-6.index").is_file()
    saved = load_options(run_dir)
    assert saved["crop_size"] == 32 and saved["depth"] == 2 and "image_size" not in saved and "ndf" not in saved


@pytest.mark.parametrize("model, flag, value", [("unet", "--max_steps", "0"), ("unet", "--max_steps", "-5"),
                                                ("pix2pix", "--max_steps", "0"), ("unet", "--max_epochs", "0"),
                                                ("pix2pix", "--max-epochs", "-1"), ("unet", "--eval_freq", "0")])
def test_steps_out_of_range_are_one_line(tmp_path, capsys, model, flag, value):
    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 2}, size=32)
    code = run(lambda argv: runner.main(model, argv),
               ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(tmp_path / "run"),
                "--crop_size", "32", flag, value])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()] == [
        f"error: --{flag[2:].replace('-', '_')} must be >= 1, got {value}"]
    assert not (tmp_path / "run").exists()


def test_continue_train_without_a_checkpoint_is_one_line(tmp_path, capsys):
    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 2}, size=32)
    code = run(lambda argv: runner.main("unet", argv),
               ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(tmp_path / "run"),
                "--crop_size", "32", "--continue_train"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "--continue_train" in err and "no checkpoint" in err
    assert not (tmp_path / "run").exists()


def test_shared_options_live_in_the_base_once():
    base = {f.name for f in dataclasses.fields(RunConfig)}
    assert not (PIX2PIX_ONLY | UNET_ONLY) & base
    for cls in (UnetConfig, Pix2PixConfig):
        for spec in dataclasses.fields(cls):
            if spec.name in base and spec.name != "model":
                # a model may change a shared option's default, never declare its help a second time
                base_spec = next(f for f in dataclasses.fields(RunConfig) if f.name == spec.name)
                assert spec.metadata["group"] == base_spec.metadata["group"]
