"""Run-folder conventions shared by both trainers.

    <run>/options.json        the run's options (config.RunConfig)
    <run>/checkpoints/ckpt-N  tf.train.CheckpointManager checkpoints, N = step (pix2pix) or epoch (U-Net)
    <run>/logs/               TensorBoard event files
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from lipseg_tf.errors import UserError
from lipseg_tf.train.config import CHECKPOINT_DIR


def latest_checkpoint(run_dir: str | Path) -> str:
    """Prefix of the newest checkpoint in <run_dir>/checkpoints; UserError when there is none."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    latest = tf.train.latest_checkpoint(str(folder))
    if not latest:
        raise UserError(f"{folder}: no checkpoint found (expected the run folder a train run wrote, "
                        "holding checkpoints/ckpt-N)")
    return latest


def resume_checkpoint(checkpoint: str | Path | None, run_dir: str | Path) -> str | None:
    """The checkpoint a train run starts from: the newest in --checkpoint's run folder when given
    (UserError when it has none), else the newest in its own run folder, else None (a fresh start)."""
    if checkpoint:
        return latest_checkpoint(checkpoint)
    return tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR))
