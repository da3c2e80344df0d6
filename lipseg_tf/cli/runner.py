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
from pathlib import Path
from typing import Sequence

from lipseg_tf.cli.common import setup_logging
from lipseg_tf.errors import UserError
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.pairs import read_pairs_meta
from lipseg_tf.prep.parts import CELEBAMASK_PARTS, DEFAULT_PARTS, MASK_STYLES, parse_parts
from lipseg_tf.train.config import PRECISIONS, STRATEGIES, RunConfig, load_options, with_model_options
from lipseg_tf.train.run import require, train

log = logging.getLogger("lipseg_tf")

# Defaults that differ between the two models (the rest are RunConfig's).
MODEL_DEFAULTS = {
    "pix2pix": {"batch_size": 1, "ngf": 64, "lr": 2e-4, "beta1": 0.5},
    "unet": {"batch_size": 8, "ngf": 32, "lr": 1e-3, "beta1": 0.9},
}


# --l1_balance and --class_balance: the power of ENet's class weights (balance.balancing_weights).
ENET_WEIGHTS = "(1 / ln(1.02 + its class's pixel share)) ** this (ENet's weights at 1)"


def _flag(parser, name: str, **kwargs):
    """An option under its original underscore spelling and its dash spelling (--max_steps, --max-steps)."""
    spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*spellings, dest=name, **kwargs)


def build_parser(model: str) -> argparse.ArgumentParser:
    defaults = dataclasses.replace(RunConfig(model=model), **MODEL_DEFAULTS[model])
    title = {"pix2pix": "pix2pix (conditional GAN: photo -> colour mask image)",
             "unet": "U-Net segmenter (photo -> per-pixel classes)"}[model]
    parser = argparse.ArgumentParser(
        prog=f"{model}.py", description=f"Train, test or export the {title}.",
        epilog="Examples: %(prog)s --mode train --input_dir pairs --output_dir runs/x --max_epochs 200; "
               "%(prog)s --mode test --input_dir pairs --checkpoint runs/x --output_dir runs/x-test; "
               "%(prog)s --mode export --checkpoint runs/x --output_dir runs/x-export",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--mode", required=True, choices=["train", "test", "export"],
                        help="train a model, test one on AB pairs, or export one as a SavedModel")
    _flag(parser, "input_dir", help="folder of AB pair images made by process.py (or its train/val/test parent)")
    _flag(parser, "output_dir", help="where to write: the run folder (train), results (test), SavedModel (export)")
    _flag(parser, "checkpoint", help="run folder of a previous train run: to resume (train) or to use "
                                     "(test, export); its options.json fixes the model's shape")
    _flag(parser, "max_epochs", type=int, help="passes over the training pairs (default 1 when no --max_steps)")
    _flag(parser, "max_steps", type=int, help="training steps (batches); overrides --max_epochs")
    _flag(parser, "batch_size", type=int, default=defaults.batch_size, help="pairs per batch")
    _flag(parser, "crop_size", type=int, default=defaults.image_size,
          help="size of the square crop the network sees (a power of two for pix2pix)")
    _flag(parser, "scale_size", type=int, default=None,
          help="resize pairs to this size before the random crop (default crop_size * 286 / 256)")
    parser.add_argument("--flip", dest="flip", action="store_true", default=True,
                        help="random horizontal flips, swapping left/right classes")
    parser.add_argument("--no_flip", "--no-flip", dest="flip", action="store_false", help="no random flips")
    _flag(parser, "ngf", type=int, default=defaults.ngf,
          help="filters in the first generator layer" if model == "pix2pix" else "filters in the first U-Net stage")
    _flag(parser, "lr", type=float, default=defaults.lr, help="Adam learning rate")
    _flag(parser, "beta1", type=float, default=defaults.beta1, help="Adam beta_1")
    _flag(parser, "seed", type=int, default=defaults.seed, help="seed of shuffling and augmentation")
    _flag(parser, "parts", default=None,
          help="comma-separated parts when the AB folder has no pairs.json (default "
               f"{','.join(DEFAULT_PARTS)}; valid: {','.join(CELEBAMASK_PARTS)})")
    _flag(parser, "style", choices=MASK_STYLES, default=None,
          help="how the masks colour the parts when the AB folder has no pairs.json (default color)")
    if model == "pix2pix":
        _flag(parser, "ndf", type=int, default=defaults.ndf, help="filters in the first discriminator layer")
        _flag(parser, "l1_weight", type=float, default=defaults.l1_weight, help="weight of the L1 term (lambda)")
        _flag(parser, "gan_weight", type=float, default=defaults.gan_weight, help="weight of the adversarial term")
        _flag(parser, "decay_epochs", type=int, default=defaults.decay_epochs,
              help="keep --lr, then decay it linearly to 0 over the last N epochs (of --max_epochs, or the "
                   "equivalent steps of --max_steps); 0: constant, as the paper")
        _flag(parser, "l1_balance", type=float, default=defaults.l1_balance,
              help=f"weigh each pixel's L1 error by {ENET_WEIGHTS}, scaled to average 1; 0 is the paper's "
                   "plain L1. Sparse masks need it: docs/how-models-learn.md")
        _flag(parser, "which_direction", choices=["AtoB", "BtoA"], default="AtoB",
              help="AtoB: photo -> mask (segmentation); BtoA: mask -> photo")
        _flag(parser, "summary_freq", type=int, default=defaults.summary_freq,
              help="update TensorBoard scalars and the progress bar every N steps")
        _flag(parser, "save_freq", type=int, default=defaults.save_freq, help="save a checkpoint every N steps")
    else:
        _flag(parser, "depth", type=int, default=defaults.depth, help="U-Net poolings (input divisible by 2**depth)")
        _flag(parser, "dice_weight", type=float, default=defaults.dice_weight, help="weight of the Dice loss term")
        _flag(parser, "class_balance", type=float, default=defaults.class_balance,
              help=f"weigh each class's pixels in the cross-entropy by {ENET_WEIGHTS}; 0 for plain cross-entropy")
    _flag(parser, "max_checkpoints", type=int, default=defaults.max_checkpoints,
          help="checkpoints to keep in the run folder (the oldest are deleted)")
    parser.add_argument("--eager", action="store_true", help="run the training step eagerly (for debugging)")
    parser.add_argument("--jit", action="store_true",
                        help="compile the training step with XLA (faster or slower depending on model and device)")
    _flag(parser, "precision", choices=PRECISIONS, default="float32",
          help="training precision: mixed_* compute in 16 bits with float32 weights, final activations and "
               "losses (mixed_float16 with loss scaling); for GPUs (float16) and TPUs/newer CPUs (bfloat16)")
    _flag(parser, "strategy", choices=STRATEGIES, default="default",
          help="tf.distribute strategy. default: one device; mirrored: every GPU of this machine; multiworker: every "
               "machine in TF_CONFIG. --batch_size is per replica (global batch = batch_size x replicas)")
    parser.add_argument("--deterministic", action="store_true",
                        help="reproducible runs: deterministic ops (TensorFlow's op determinism) and input "
                             "order; slower")
    _flag(parser, "no_cache", action="store_true", help="do not cache decoded pairs in memory")
    parser.add_argument("--format", choices=["savedmodel", "tflite"], default="savedmodel",
                        help="export: a SavedModel (any photo size), or float32 and dynamic-range quantised "
                             "TFLite models (crops at --crop_size; lipseg_tf/serve/tflite.py)")
    parser.add_argument("--tta", choices=["none", "flip"], default="none",
                        help="test and export: flip averages each image's class probabilities with those of its "
                             "mirror image (left/right classes swapped); export puts it inside the model")
    parser.add_argument("--verbose", action="store_true", help="debug logging, TensorFlow messages")
    return parser


def config_from_args(model: str, args: argparse.Namespace) -> RunConfig:
    values = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(RunConfig)}}
    values["image_size"] = args.crop_size
    values["scale_size"] = args.scale_size or round(args.crop_size * 286 / 256)
    values["cache"] = not args.no_cache
    values["parts"] = parse_parts(args.parts) if args.parts else DEFAULT_PARTS
    values["style"] = args.style or "color"
    return dataclasses.replace(RunConfig(model=model), **{k: v for k, v in values.items() if v is not None})


def main(model: str, argv: Sequence[str] | None = None) -> int:
    args = build_parser(model).parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(model, args)
    if config.mode == "train":
        return train(config)
    run_dir = Path(require(config.checkpoint, "--checkpoint (the run folder of a train run)", config.mode))
    if args.parts or args.style:
        log.warning("--parts/--style ignored: the classes of %s come from its options.json", run_dir)
    config = with_model_options(config, load_options(run_dir))
    tta = None if args.tta == "none" else args.tta
    return test(config, run_dir, tta) if config.mode == "test" else export(config, run_dir, args.format, tta)


def _load_segmenter(config: RunConfig, classes: ClassSpec, run_dir: Path, tta: str | None = None):
    from lipseg_tf.serve.savedmodel import Segmenter
    if config.model == "pix2pix":
        if config.which_direction != "AtoB":
            raise UserError(f"{run_dir}: this pix2pix run translates masks to photos (BtoA); "
                            "test and export need a photo -> mask (AtoB) run")
        from lipseg_tf.train import pix2pix
        return Segmenter(pix2pix.load_generator(config, run_dir), config.image_size, classes, output="image",
                         tta=tta)
    from lipseg_tf.train import unet
    return Segmenter(unet.load_model(config, classes, run_dir), config.image_size, classes,
                     output="probabilities", tta=tta)


def _data_source(input_dir: Path) -> str:
    """What the test data is, for metrics.json and figures: the folder, and 'synthetic' when it is."""
    meta = read_pairs_meta(input_dir) or {}
    kind = "synthetic sample faces (lipseg_tf.prep.sample), not real photos" if meta.get("synthetic") else None
    return f"{input_dir}" + (f": {kind}" if kind else "")


def test(config: RunConfig, run_dir: Path, tta: str | None = None) -> int:
    from lipseg_tf.train import metrics
    from lipseg_tf.evaluate.test import run_test
    from lipseg_tf.train import pipeline

    input_dir = Path(require(config.input_dir, "--input_dir (AB pairs to test on)", "test"))
    output_dir = Path(require(config.output_dir, "--output_dir (where to write results)", "test"))
    classes = ClassSpec.create(config.parts, config.style)
    files = pipeline.find_pairs(input_dir, "test")
    segmenter = _load_segmenter(config, classes, run_dir, tta)
    result = run_test(files, classes, segmenter.probabilities_at_model_size, output_dir, config.image_size,
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


def export(config: RunConfig, run_dir: Path, fmt: str = "savedmodel", tta: str | None = None) -> int:
    from lipseg_tf.serve import savedmodel

    output_dir = Path(require(config.output_dir, "--output_dir (the SavedModel folder to write)", "export"))
    classes = ClassSpec.create(config.parts, config.style)
    framing, crop = _framing(run_dir)
    segmenter = _load_segmenter(config, classes, run_dir, tta)
    if fmt == "tflite":
        from lipseg_tf.serve import tflite
        tflite.export_tflite(segmenter, classes, output_dir, config.model, framing, crop)
    else:
        savedmodel.export(segmenter, classes, output_dir, framing, crop)
    return 0
