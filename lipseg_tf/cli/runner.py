"""Command line of pix2pix.py and unet.py: --mode train|test|export over one run folder.

    train:  --input_dir AB folder (its train/ and val/ subfolders when present) -> --output_dir run folder
    test:   --checkpoint run folder, --input_dir AB folder (its test/ subfolder) -> --output_dir results
    export: --checkpoint run folder -> --output_dir SavedModel
Test and export take the model's shape and classes from the run's options.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path
from typing import Sequence

from lipseg_tf.cli.common import setup_logging
from lipseg_tf.errors import UserError
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.folders import check_apart, check_output_dir, claim_folder
from lipseg_tf.prep.pairs import pairs_meta_file, read_pairs_meta
from lipseg_tf.prep.parts import parse_parts
from lipseg_tf.train.config import GROUPS, OPTIONS_FILE, RunConfig, config_class, load_options, with_model_options
from lipseg_tf.train.run import check_run_options, check_same_classes, require, train

log = logging.getLogger("lipseg_tf")

def _spellings(name: str) -> list[str]:
    """--max_steps and --max-steps: the original underscore spelling and the dash one."""
    return [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])


def _add_option(group, spec: dataclasses.Field) -> None:
    """One dataclass field as a flag; a boolean that defaults to True also gets its --no_ flag (--flip /
    --no_flip). Every flag defaults to None, so config_from_args knows what the user gave; --help shows
    the dataclass's default."""
    meta, default = spec.metadata, spec.default
    if isinstance(default, bool):
        group.add_argument(*_spellings(spec.name), dest=spec.name, action="store_true", default=None,
                           help=meta["help"] + (" (default)" if default else ""))
        if default:
            group.add_argument(*_spellings(f"no_{spec.name}"), dest=spec.name, action="store_false",
                               default=None, help=f"the opposite of --{spec.name}")
        return
    shown = ",".join(default) if isinstance(default, tuple) else default
    help_text = meta["help"] + ("" if default is None or meta.get("required") else f" (default {shown})")
    group.add_argument(*_spellings(spec.name), dest=spec.name, type=meta.get("type", type(default)),
                       choices=meta.get("choices"), required=meta.get("required", False), default=None,
                       help=help_text)


def build_parser(model: str) -> argparse.ArgumentParser:
    """The command line of `model`, generated from its options dataclass (config.UnetConfig,
    config.Pix2PixConfig) in the groups data, model, training, performance, output."""
    title = {"pix2pix": "pix2pix (conditional GAN: photo -> colour mask image)",
             "unet": "U-Net segmenter (photo -> per-pixel classes)"}[model]
    parser = argparse.ArgumentParser(
        prog=f"{model}.py", description=f"Train, test or export the {title}.",
        epilog="Examples: %(prog)s --mode train --input_dir pairs --output_dir runs/x --max_epochs 200; "
               "%(prog)s --mode test --input_dir pairs --checkpoint runs/x --output_dir runs/x-test; "
               "%(prog)s --mode export --checkpoint runs/x --output_dir runs/x-export")
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for spec in dataclasses.fields(config_class(model)):
        if spec.metadata.get("flag", True):
            _add_option(groups[spec.metadata["group"]], spec)
    groups["output"].add_argument(
        "--format", choices=["savedmodel", "tflite"], default="savedmodel",
        help="export: a SavedModel (any photo size), or float32 and dynamic-range quantised TFLite models "
             "(crops at --crop_size; lipseg_tf/serve/tflite.py) (default savedmodel)")
    groups["output"].add_argument(
        "--tta", choices=["none", "flip"], default="none",
        help="test and export: flip averages each image's class probabilities with those of its mirror image "
             "(left/right classes swapped); export puts it inside the model (default none)")
    groups["output"].add_argument(
        "--background_scale", default="1", metavar="auto|S",
        help="test and export (U-Net): multiply the background's probability by S before the decision, "
             "inside the network (train/calibrate.py); auto chooses S on the val split of --input_dir "
             "(test) or of the run's training pairs (export), by mean F1. The class-balanced loss makes "
             "the network mark too much; auto undoes it (default 1: as trained)")
    groups["output"].add_argument(
        "--weights", choices=["float32", "float16"], default="float32",
        help="export (U-Net SavedModel): how the weights are stored; float16 halves the model's size, the "
             "arithmetic stays float32 and the probabilities move by about 1e-3 (default float32)")
    groups["output"].add_argument("--verbose", action="store_true", help="debug logging, TensorFlow messages")
    return parser


def config_from_args(model: str, args: argparse.Namespace) -> RunConfig:
    """The options the user gave over the model's defaults."""
    names = {f.name for f in dataclasses.fields(config_class(model)) if f.metadata.get("flag", True)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if "parts" in values:
        values["parts"] = parse_parts(values["parts"])
    return config_class(model)(**values)


def main(model: str, argv: Sequence[str] | None = None) -> int:
    args = build_parser(model).parse_args(argv)
    setup_logging(args.verbose, tensorflow=True)
    config = config_from_args(model, args)
    if config.mode == "train":
        return train(config)
    run_dir = Path(require(config.checkpoint, "--checkpoint (the run folder of a train run)", config.mode))
    if args.parts or args.style:
        log.warning("--parts/--style ignored: the classes of %s come from its options.json", run_dir)
    config = with_model_options(config, load_options(run_dir))
    tta = None if args.tta == "none" else args.tta
    from lipseg_tf.train.calibrate import parse_scale
    scale = parse_scale(args.background_scale)
    if scale != 1.0 and config.model != "unet":
        raise UserError(f"--background_scale {args.background_scale}: U-Net only (pix2pix paints colours, "
                        "it has no probabilities to rescale)")
    if config.mode == "test":
        return test(config, run_dir, tta, scale)
    return export(config, run_dir, args.format, tta, args.weights, scale)


def _run_classes(config: RunConfig, run_dir: Path) -> ClassSpec:
    """The classes of a run, from its options.json; UserError naming the file when it lists an unknown part
    or style, or options the networks cannot be built with (crop_size 0, or 33 for pix2pix)."""
    options_file = run_dir / OPTIONS_FILE
    classes = ClassSpec.create(config.parts, config.style, options_file)
    check_run_options(config, classes, options_file)
    return classes


def _load_segmenter(config: RunConfig, classes: ClassSpec, run_dir: Path, tta: str | None = None, crop=None,
                    weights: str = "float32", background_scale: float | str = 1.0, calibration_dir=None):
    """The run's network in a savedmodel.Segmenter; a U-Net with its background scale folded in (auto:
    chosen on the val split of calibration_dir) and its weights stored as `weights`."""
    from lipseg_tf.serve.savedmodel import Segmenter, fold_background_scale
    if config.model == "pix2pix":
        if config.which_direction != "AtoB":
            raise UserError(f"{run_dir}: this pix2pix run translates masks to photos (BtoA); "
                            "test and export need a photo -> mask (AtoB) run")
        from lipseg_tf.train import pix2pix
        generator = pix2pix.load_generator(config, run_dir, config.checkpoint_select, classes)
        return Segmenter(generator, config.crop_size, classes, output="image", tta=tta, crop=crop)
    from lipseg_tf.train import unet
    from lipseg_tf.train.networks import stored_in
    network = unet.load_model(config, classes, run_dir, config.checkpoint_select)
    background_scale = fold_background_scale(network, background_scale, config.crop_size, classes, tta,
                                             calibration_dir)
    return Segmenter(stored_in(network, weights), config.crop_size, classes, output="probabilities", tta=tta,
                     crop=crop, background_scale=background_scale)


def _data_source(input_dir: Path) -> str:
    """What the test data is, for metrics.json and figures: the folder, and 'synthetic' when it is."""
    meta = read_pairs_meta(input_dir) or {}
    kind = "synthetic sample faces (lipseg_tf.prep.sample), not real photos" if meta.get("synthetic") else None
    return f"{input_dir}" + (f": {kind}" if kind else "")


def _claim_test_dir(output_dir: Path, files, model: str) -> None:
    """UserError unless test mode may write its results into output_dir (creates nothing): the files it
    would replace are its own (the folder holds its metrics.json), or none of them is there."""
    from lipseg_tf.train import pipeline
    from lipseg_tf.train.metrics import METRICS_FILE, PER_IMAGE_FILE
    check_output_dir(output_dir, "--output_dir")
    ours = [output_dir / METRICS_FILE, output_dir / PER_IMAGE_FILE]
    for name in pipeline.pair_names(files):
        ours += [output_dir / "images" / f"{name}-{kind}.png" for kind in ("inputs", "outputs", "targets")]
        ours.append(output_dir / "labels" / f"{name}.png")
    claim_folder(output_dir, METRICS_FILE, ours, f"{model}.py --mode test", keys=("data", "images"))
    for path in (output_dir / "images", output_dir / "labels", *ours):
        if path.is_symlink():
            raise UserError(f"{path}: a symbolic link (to {os.readlink(path)}); test mode never writes through "
                            "a link: expected its own file or none")


def test(config: RunConfig, run_dir: Path, tta: str | None = None, background_scale: float | str = 1.0) -> int:
    from lipseg_tf.evaluate.test import run_test
    from lipseg_tf.train import metrics, pipeline

    input_dir = Path(require(config.input_dir, "--input_dir (AB pairs to test on)", "test"))
    output_dir = Path(require(config.output_dir, "--output_dir (where to write results)", "test"))
    classes = _run_classes(config, run_dir)
    meta_file = pairs_meta_file(input_dir)
    if meta_file is not None:
        meta = read_pairs_meta(input_dir)
        data = ClassSpec.create(meta.get("parts", classes.parts), meta.get("style", classes.style), meta_file)
        check_same_classes(run_dir, classes, input_dir, data, "test pairs of the run's classes")
    files = pipeline.find_pairs(input_dir, "test")
    check_apart(("--output_dir", output_dir), {"--input_dir": input_dir, "--checkpoint": run_dir})
    _claim_test_dir(output_dir, files, config.model)
    segmenter = _load_segmenter(config, classes, run_dir, tta, background_scale=background_scale,
                                calibration_dir=input_dir)
    result = run_test(files, classes, segmenter.probabilities_at_model_size, output_dir, config.crop_size,
                      batch_size=max(config.batch_size, 8), data_source=_data_source(input_dir))
    print(f"{config.model} on {result['data']}\n" + metrics.format_table(result))
    log.info("results in %s (images/, labels/, metrics.json)", output_dir)
    return 0


def _framing(run_dir: Path) -> tuple[str, list[float] | None]:
    """How the run's training faces were framed, for predict.py: the synthetic sample's or CelebA-HQ's,
    and the box of it the pairs were cut to (pairs.json "crop" [x0, y0, side], None: the whole photo)."""
    input_dir = load_options(run_dir).get("input_dir")
    meta = (read_pairs_meta(input_dir) if input_dir and Path(input_dir).is_dir() else None) or {}
    return ("sample" if meta.get("synthetic") else "celebahq"), meta.get("crop")


# What an export writes: the SavedModel's files (saved_model.pb, fingerprint.pb, variables/, assets/) or
# the TFLite models (serve/tflite.py), and classes.json, the export's own settings file.
EXPORT_FILES = ("saved_model.pb", "fingerprint.pb", "variables", "assets", "classes.json")
EXPORT_META_KEYS = ("classes", "colors", "image_size")


def _claim_export_dir(output_dir: Path, fmt: str, model: str) -> None:
    """UserError unless export may write into output_dir (creates nothing): no link, not the shipped
    model, and the files it would replace are an earlier export's (the folder holds its classes.json) or
    none of them is there."""
    check_output_dir(output_dir, "--output_dir")
    ours = [output_dir / name for name in EXPORT_FILES]
    if fmt == "tflite":
        from lipseg_tf.serve import tflite
        ours = [tflite.model_file(output_dir, model, v) for v in tflite.VARIANTS] + [output_dir / "classes.json"]
    claim_folder(output_dir, "classes.json", ours, f"{model}.py --mode export", keys=EXPORT_META_KEYS)
    for path in ours:
        if path.is_symlink():
            raise UserError(f"{path}: a symbolic link (to {os.readlink(path)}); export never writes through a "
                            "link: expected its own file or none")


def export(config: RunConfig, run_dir: Path, fmt: str = "savedmodel", tta: str | None = None,
           weights: str = "float32", background_scale: float | str = 1.0) -> int:
    from lipseg_tf.serve import savedmodel

    output_dir = Path(require(config.output_dir, "--output_dir (the SavedModel folder to write)", "export"))
    if weights != "float32" and (config.model != "unet" or fmt != "savedmodel"):
        raise UserError(f"--weights {weights}: only U-Net SavedModels store their weights in it (expected "
                        "unet.py --format savedmodel, or --weights float32)")
    classes = _run_classes(config, run_dir)
    check_apart(("--output_dir", output_dir), {"--checkpoint": run_dir})
    _claim_export_dir(output_dir, fmt, config.model)
    framing, crop = _framing(run_dir)
    training_pairs = load_options(run_dir).get("input_dir")
    segmenter = _load_segmenter(config, classes, run_dir, tta, crop, weights, background_scale,
                                training_pairs or run_dir)
    if fmt == "tflite":
        from lipseg_tf.serve import tflite
        tflite.export_tflite(segmenter, classes, output_dir, config.model, framing, crop)
    else:
        savedmodel.export(segmenter, classes, output_dir, framing)
    return 0
