"""Validation while training: mean F1 on the val/ split, counted as test mode counts it.

Each evaluation segments every val pair at the network's size, adds one confusion count over all of
them (metrics.confusion_matrix, dataset level, as test mode's metrics.json) and turns it into per-part F1
and IoU (metrics.summary). The result goes to <run>/val.csv (one row per evaluation), to TensorBoard
(<run>/logs/val: val/mean_f1, val/<part>_f1, val/<part>_iou, and a few fixed val pairs as
photo | target | prediction), and to the run's Checkpoints, which keep the best step apart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.train import csv_log, metrics, pipeline
from lipseg_tf.train.checkpoints import Checkpoints

log = logging.getLogger("lipseg_tf")
VAL_CSV = "val.csv"
SHOWN_IMAGES = 3        # val pairs shown in TensorBoard at each evaluation


def evaluate(dataset: tf.data.Dataset, predict: Callable, classes: ClassSpec, keep: int = 0):
    """(metrics.summary of the whole dataset, up to `keep` (photo, labels, predicted) of its first pairs).

    dataset: batches of (image in [-1, 1], class ids) (pipeline.make_dataset, training=False); predict:
    images -> (B, S, S, C) class scores.
    """
    confusion = np.zeros((classes.num_classes,) * 2, np.int64)
    shown, count = [], 0
    for images, labels in dataset:
        predicted = np.argmax(np.asarray(predict(images)), axis=-1)
        labels = labels.numpy()
        confusion += metrics.confusion_matrix(labels, predicted, classes.num_classes)
        count += len(labels)
        for image, target, pred in zip(images.numpy(), labels, predicted):
            if len(shown) < keep:
                shown.append((image, target, pred))
    return metrics.summary(confusion, classes.names, count), shown


def flat_scores(summary: dict) -> dict[str, float | None]:
    """metrics.summary as flat columns: mean_f1, mean_iou, then <part>_f1 and <part>_iou."""
    row = {"mean_f1": summary["mean_f1"], "mean_iou": summary["mean_iou"]}
    for name, values in summary["parts"].items():
        row[f"{name}_f1"], row[f"{name}_iou"] = values["f1"], values["iou"]
    return row


def picture_row(image, target, predicted, colors: np.ndarray) -> np.ndarray:
    """photo | target | prediction as one uint8 (S, 3S, 3) image (masks in their palette colours)."""
    photo = np.clip((np.asarray(image) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.concatenate([photo, colors[target], colors[predicted]], axis=1)


class Validation:
    """Evaluates a trainer's model on the val split and records the result (see the module docstring)."""

    def __init__(self, source: pipeline.PairSource, classes: ClassSpec, config, write_dir: Path,
                 checkpoints: Checkpoints, chief: bool = True):
        self.classes, self.checkpoints, self.chief = classes, checkpoints, chief
        self.dataset = pipeline.make_dataset(source, classes.colors, classes.flip_perm, training=False,
                                             image_size=config.crop_size, scale_size=config.crop_size,
                                             batch_size=max(config.batch_size, 8), cache=config.cache)
        self.csv_path = Path(write_dir) / VAL_CSV
        self.writer = tf.summary.create_file_writer(str(Path(write_dir) / "logs" / "val")) if chief else None
        self.last: dict = {}
        self.last_step = None
        log.info("validation on %d val pairs (%s)", source.count, source.folder)

    def __call__(self, step: int, predict: Callable, epoch: float | None = None) -> dict:
        """Evaluate `predict` (images -> class scores) at `step`; returns the flat scores (flat_scores)."""
        summary, shown = evaluate(self.dataset, predict, self.classes, keep=SHOWN_IMAGES)
        self.last, self.last_step = flat_scores(summary), step
        self.checkpoints.offer(step, summary["mean_f1"])   # on every worker: saving is collective
        if self.chief:
            self._record(step, epoch, shown)
        return self.last

    def _record(self, step: int, epoch: float | None, shown: list) -> None:
        parts = ", ".join(f"{name} {v['f1']:.3f}" for name, v in self.last_parts().items() if v["f1"] is not None)
        mean = self.last["mean_f1"]
        log.info("step %d: val mean F1 %s (%s)", step, "n/a" if mean is None else f"{mean:.4f}", parts)
        row = {"step": step, "epoch": "" if epoch is None else round(epoch, 3),
               **{k: "" if v is None else v for k, v in self.last.items()}}
        csv_log.append_row(self.csv_path, row)
        with self.writer.as_default(step=step):
            for name, value in self.last.items():
                if value is not None:
                    tf.summary.scalar(f"val/{name}", value)
            if shown:
                rows = np.stack([picture_row(*pair, self.classes.colors) for pair in shown])
                tf.summary.image("val/photo_target_prediction", rows, max_outputs=len(rows))
        self.writer.flush()

    def last_parts(self) -> dict[str, dict]:
        """The last evaluation's {part: {"f1", "iou"}}."""
        return {name: {"f1": self.last.get(f"{name}_f1"), "iou": self.last.get(f"{name}_iou")}
                for name in self.classes.names[1:]}
