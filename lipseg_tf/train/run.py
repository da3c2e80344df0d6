"""A training run of either model: the run folder, options.json, the strategy, resume, then the trainer.

    train(config) checks the options, takes the classes from the AB folder's pairs.json, writes
    <output_dir>/options.json and hands over to pix2pix.train (custom step) or unet.train (Keras fit).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from lipseg_tf.errors import UserError
from lipseg_tf.prep.classes import ClassSpec, classes_for_training
from lipseg_tf.train.config import CHECKPOINT_DIR, RunConfig, load_options, with_model_options

log = logging.getLogger("lipseg_tf")


def require(value, flag: str, mode: str):
    """value, or UserError saying that --mode `mode` needs `flag`."""
    if not value:
        raise UserError(f"--mode {mode} needs {flag}")
    return value


def _check_sizes(config: RunConfig):
    if config.scale_size < config.image_size:
        raise UserError(f"--scale_size {config.scale_size} is smaller than --crop_size {config.image_size}")
    if config.batch_size < 1:
        raise UserError(f"--batch_size must be >= 1, got {config.batch_size}")
    for flag in ("decay_epochs", "l1_balance", "class_balance"):
        if getattr(config, flag) < 0:
            raise UserError(f"--{flag} must be >= 0, got {getattr(config, flag)}")


def train(config: RunConfig, strategy=None) -> int:
    """Train config.model; strategy: a tf.distribute strategy to reuse (default: made from --strategy)."""
    from lipseg_tf.train import distribute, pipeline

    input_dir = Path(require(config.input_dir, "--input_dir (AB pairs made by process.py)", "train"))
    output_dir = Path(require(config.output_dir, "--output_dir (the run folder to write)", "train"))
    # First: MultiWorkerMirroredStrategy must be created before TensorFlow runs anything else.
    strategy = strategy or distribute.make_strategy(config.strategy)
    if config.jit and strategy.num_replicas_in_sync > 1:
        # XLA cannot compile a step holding tf.distribute's synchronisation points (the gradient
        # all-reduce, synchronised BatchNorm): TensorFlow refuses it with a merge_call error.
        raise UserError(f"--jit: not available with --strategy {config.strategy} over "
                        f"{strategy.num_replicas_in_sync} replicas (XLA cannot compile the replicas' "
                        "synchronisation); leave out --jit")
    if config.deterministic:
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
    resume_dir = Path(config.checkpoint) if config.checkpoint else output_dir
    if (resume_dir / CHECKPOINT_DIR).is_dir():
        # Resuming: the network must keep the shape it was trained with.
        saved = load_options(resume_dir)
        changed = [k for k in RunConfig.MODEL_OPTIONS if k in saved and saved[k] != getattr(config, k)
                   and k not in ("parts", "style")]
        if changed:
            log.warning("resuming %s: keeping its %s from options.json", resume_dir,
                        ", ".join(f"{k}={saved[k]}" for k in changed))
        config = with_model_options(config, saved)
    _check_sizes(config)
    classes = classes_for_training(input_dir, config.parts, config.style)
    config = dataclasses.replace(config, parts=classes.parts, style=classes.style)
    train_source = pipeline.find_pairs(input_dir, "train")
    val_source = pipeline.find_pairs(input_dir, "val") if pipeline.has_split(input_dir, "val") else None
    _build(config, classes)  # a bad size or width fails here, before anything is written
    output_dir.mkdir(parents=True, exist_ok=True)
    if distribute.is_chief(strategy):   # the other workers of a multi-worker run write nothing here
        config.save(output_dir)
    replicas = strategy.num_replicas_in_sync
    log.info("%s: training on %d pairs (%s) from %s; batch %d x %d replicas, %s%s; run folder %s",
             config.model, train_source.count, train_source.format, train_source.folder, config.batch_size,
             replicas, config.precision, ", XLA" if config.jit else "", output_dir)
    start = time.perf_counter()
    with distribute.write_dir(output_dir, strategy) as write_dir:
        if config.model == "pix2pix":
            from lipseg_tf.train import pix2pix
            pix2pix.train(config, classes, train_source, strategy, write_dir)
        else:
            from lipseg_tf.train import unet
            unet.train(config, classes, train_source, val_source, strategy, write_dir)
    log.info("%s: trained in %.0f s", config.model, time.perf_counter() - start)
    return 0


def _build(config: RunConfig, classes: ClassSpec):
    """Build the network once to validate the options (cheap at any size)."""
    from lipseg_tf.train import networks
    if config.model == "pix2pix":
        networks.build_generator(config.image_size, config.ngf)
        networks.build_discriminator(config.image_size, config.ndf)
    else:
        networks.build_unet(classes.num_classes, config.ngf, config.depth, config.image_size)
