"""Run-folder checkpoints, shared by both trainers.

    <run>/options.json                 the run's options (config.py)
    <run>/checkpoints/ckpt-N           the latest --max_checkpoints checkpoints, N = the step
    <run>/checkpoints/best/ckpt-N      the checkpoint with the best validation mean F1 (kept apart, so
                                       the rotation of the latest never deletes it)
    <run>/checkpoints/best.json        {"step", "mean_f1", "checkpoint"}: which one that is, and its score
    <run>/val.csv                      every validation's per-part F1/IoU and mean F1 (validation.py)
    <run>/logs/                        TensorBoard event files (train/, val/; the U-Net's validation/)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import tensorflow as tf

from lipseg_tf.errors import UserError
from lipseg_tf.prep.imageio import write_text
from lipseg_tf.train.config import CHECKPOINT_DIR
from lipseg_tf.train.guards import check_intact, interrupt_after, remove_stale_temp, resume_point

log = logging.getLogger("lipseg_tf")
BEST_DIR = "best"
BEST_FILE = "best.json"


def latest_checkpoint(run_dir: str | Path) -> str:
    """Prefix of the newest checkpoint in <run_dir>/checkpoints; UserError when there is none."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    latest = tf.train.latest_checkpoint(str(folder))
    if not latest:
        raise UserError(f"{folder}: no checkpoint found (expected the run folder a train run wrote, "
                        "holding checkpoints/ckpt-N)")
    return latest


def read_best(run_dir: str | Path) -> dict | None:
    """best.json of a run folder ({"step", "mean_f1", "checkpoint"}), or None when it has none."""
    path = Path(run_dir) / CHECKPOINT_DIR / BEST_FILE
    if not path.is_file():
        return None
    try:
        best = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(best, dict) or not isinstance(best.get("mean_f1"), (int, float)):
        raise UserError(f"{path}: expected a JSON object with a numeric mean_f1, got {best!r}")
    return best


def select_checkpoint(run_dir: str | Path, select: str = "best") -> str:
    """The checkpoint test and export use: the best by validation mean F1, or the latest (`select`). A run
    with no best (no val/ split, or written before best checkpoints existed) gives its latest."""
    if select not in ("best", "latest"):
        raise ValueError(f"select {select!r}: expected best or latest")
    if select == "best":
        best = tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR / BEST_DIR))
        if best:
            log.info("using the best checkpoint by validation mean F1: %s", best)
            return check_intact(best)
        log.info("%s: no best checkpoint (no validation during training): using the latest", run_dir)
    return check_intact(latest_checkpoint(run_dir))


def resume_checkpoint(checkpoint: str | Path | None, run_dir: str | Path) -> str | None:
    """The checkpoint a train run starts from: the newest in --checkpoint's run folder when given
    (UserError when it has none), else the newest in its own run folder, else None (a fresh start)."""
    if checkpoint:
        latest_checkpoint(checkpoint)   # UserError when it holds none
        return resume_point(Path(checkpoint) / CHECKPOINT_DIR)
    return resume_point(Path(run_dir) / CHECKPOINT_DIR)


def restore_networks(root: tf.train.Checkpoint, prefix: str, options_file: Path, shape: str) -> None:
    """Restore checkpoint `prefix` into root (a tf.train.Checkpoint of networks built from options_file,
    whose options are `shape`, e.g. "ngf 4, depth 2, 5 classes"); UserError in one line when they do not
    fit it: a weight of another shape (ngf or the classes changed) or weights it holds no value for (depth
    changed). TensorFlow's own errors name a variable but not the options behind it."""
    try:
        status = root.restore(prefix)
        status.assert_existing_objects_matched()
    except (ValueError, AssertionError) as err:
        text = str(err).strip()
        reason = text.splitlines()[0].split(", likely")[0].rstrip(".") if text else type(err).__name__
        raise UserError(f"{prefix} does not fit {options_file} ({shape}): {reason}; expected the options "
                        "the run was trained with (was options.json edited?)") from None
    status.expect_partial()


class Checkpoints:
    """The latest checkpoints and the best one of a run; `checkpoint` is the tf.train.Checkpoint to save.

    write_dir: where this process writes (distribute.write_dir); every worker of a multi-worker run saves
    (saving is collective), only the chief's files are kept.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, write_dir: Path, max_to_keep: int):
        folder = Path(write_dir) / CHECKPOINT_DIR
        remove_stale_temp(folder)   # a save killed midway left it
        self.latest = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep)
        self.best = tf.train.CheckpointManager(checkpoint, str(folder / BEST_DIR), 1)
        self.best_file = folder / BEST_FILE
        self.best_f1 = None

    def restore(self, checkpoint: tf.train.Checkpoint, resume_from: str | None, run_dir: Path) -> bool:
        """Restore resume_from when given (and the best score so far); True when it did."""
        if not resume_from:
            return False
        checkpoint.restore(resume_from).expect_partial()
        best = read_best(run_dir)
        self.best_f1 = best["mean_f1"] if best else None
        return True

    def save(self, step: int) -> str:
        with interrupt_after():   # Ctrl-C waits for the save: no .data without its .index
            return self.latest.save(checkpoint_number=step)

    def offer(self, step: int, mean_f1: float | None) -> bool:
        """Keep this step as the best when its validation mean F1 beats the best so far; True when it did."""
        if mean_f1 is None or (self.best_f1 is not None and mean_f1 <= self.best_f1):
            return False
        with interrupt_after():
            path = self.best.save(checkpoint_number=step)
        self.best_f1 = float(mean_f1)
        write_text(self.best_file, json.dumps({"step": int(step), "mean_f1": round(float(mean_f1), 6),
                                               "checkpoint": f"{BEST_DIR}/{Path(path).name}"}, indent=2) + "\n")
        log.info("step %d: best validation mean F1 so far (%.4f), kept in %s", step, mean_f1, path)
        return True
