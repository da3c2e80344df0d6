"""What stops a training run with one line, instead of a traceback or a silently broken model.

    check_options_in_range(config)   --ngf 0, --depth -1, --lr nan/inf, --beta1 1: one line before any work
    NonFiniteLoss / check_losses     a loss that turns NaN or infinite: stop at that step, naming it, before
                                     the broken weights are saved (the last good checkpoint stays the latest)
    decode_errors(source)            a pair that fails to decode during training (corrupt past the header):
                                     TensorFlow's error names no file, so the pairs are read again to name it
    resume_point(folder)             the newest checkpoint that reads whole, saying which newer ones are broken
    remove_stale_temp(folder)        the ckpt-N_temp folders and .data files without .index a killed save left
    interrupt_after()                Ctrl-C held back while a checkpoint is saved
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import signal
import threading
from pathlib import Path
from typing import Iterator, Mapping

import keras
import tensorflow as tf

from lipseg_tf.errors import UserError
from lipseg_tf.train import checkpoint_files, pipeline

log = logging.getLogger("lipseg_tf")

# Options that size the network or the data: whole numbers >= 1 (those a config has).
POSITIVE_SIZES = ("crop_size", "scale_size", "ngf", "ndf", "depth", "batch_size")
# Options that weigh a loss or set the optimizer: finite numbers >= 0.
NON_NEGATIVE_WEIGHTS = ("l1_weight", "gan_weight", "dice_weight", "class_balance", "l1_balance")
# Options that are a fraction: numbers from 0 to below 1.
BELOW_ONE = ("beta1", "dropout")


def check_options_in_range(config) -> None:
    """UserError naming the first option out of its range: a size < 1, --lr not a finite number > 0,
    --beta1 or --dropout outside [0, 1), a loss weight negative or not finite. Options the config lacks
    are skipped."""
    for name in POSITIVE_SIZES:
        value = getattr(config, name, None)
        if value is not None and value < 1:
            raise UserError(f"--{name} must be >= 1, got {value}")
    lr = getattr(config, "lr", None)
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise UserError(f"--lr must be a finite number > 0, got {lr}")
    for name in BELOW_ONE:
        value = getattr(config, name, None)
        if value is not None and not (math.isfinite(value) and 0 <= value < 1):
            raise UserError(f"--{name} must be a number from 0 to below 1, got {value}")
    for name in NON_NEGATIVE_WEIGHTS:
        value = getattr(config, name, None)
        if value is not None and not math.isfinite(value):
            raise UserError(f"--{name} must be a finite number, got {value}")
        if value is not None and value < 0:
            raise UserError(f"--{name} must be >= 0, got {value}")


def check_losses(step: int, losses: Mapping[str, float], checkpoint: str | None = None) -> None:
    """UserError naming the step and the loss when one of losses is NaN or infinite."""
    for name, value in losses.items():
        if not math.isfinite(float(value)):
            kept = f"; the last good checkpoint is {checkpoint}" if checkpoint else "; no checkpoint was saved"
            raise UserError(f"step {step}: {name} is {float(value)} (training diverged: try a lower --lr){kept}")


class NonFiniteLoss(keras.callbacks.Callback):
    """For Keras fit: stop at the first batch whose loss is NaN or infinite, by raising check_losses's
    UserError, so no later callback (the checkpoint save at the epoch's end) keeps the broken weights.

    first_step: the run's step before this fit; latest: a callable giving the newest checkpoint saved.
    """

    def __init__(self, first_step: int = 0, latest=None):
        super().__init__()
        self.step = first_step
        self.latest = latest or (lambda: None)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if logs and "loss" in logs:
            check_losses(self.step, {"loss": logs["loss"]}, self.latest())


@contextlib.contextmanager
def decode_errors(*sources) -> Iterator[None]:
    """Turn a decode error met while training on these pair sources into one line naming the pair.

    TensorFlow reports a bad PNG or a damaged record as an InvalidArgumentError or DataLossError of the
    input pipeline, without the file; the pairs are then read again (pipeline.name_bad_pair). An error no
    pair explains is raised as it was.
    """
    try:
        yield
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError):
        for source in sources:
            if source is not None and (named := pipeline.name_bad_pair(source)):
                raise UserError(named) from None
        raise


def resume_point(folder: str | Path) -> str | None:
    """The newest checkpoint in folder that reads whole (None when there is none at all); says which newer
    ones are broken. UserError when there are checkpoints but none reads whole."""
    newest, broken = checkpoint_files.newest_intact(folder)
    for reason in broken:
        log.warning("skipping a broken checkpoint: %s", reason)
    if broken and newest is None:
        raise UserError(f"{broken[-1]} (and every newer checkpoint in {folder} is broken): expected a whole "
                        "checkpoint to resume from; move the folder away to start afresh")
    if broken:
        log.warning("resuming from %s, the newest whole checkpoint", newest)
    return newest


def check_intact(prefix: str) -> str:
    """prefix itself when the checkpoint reads whole; UserError naming the broken file otherwise."""
    reason = checkpoint_files.broken_reason(prefix)
    if reason:
        raise UserError(f"{reason}; expected a whole checkpoint (train again, or copy the run folder anew)")
    return prefix


def remove_stale_temp(folder: str | Path) -> None:
    """Delete what a killed save left in a run's checkpoint folder (ckpt-N_temp folders, a ckpt-N.data
    without its .index), saying so."""
    for temp in checkpoint_files.stale_temp_folders(folder):
        log.info("removing %s, left by a save that was interrupted", temp)
        shutil.rmtree(temp, ignore_errors=True)
    for orphan in checkpoint_files.orphan_data_files(folder):
        log.info("removing %s, left without its .index by a save that was interrupted", orphan)
        orphan.unlink(missing_ok=True)


@contextlib.contextmanager
def interrupt_after() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block ends, so a checkpoint save is never cut between its
    .data and .index files; the interruption then comes as usual. Only the main thread can do so."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
