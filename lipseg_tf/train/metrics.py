"""Segmentation metrics from one confusion count: per-part F1 and IoU, and their means.

Counting over a whole test set before dividing (dataset level) is the protocol of published
face-parsing results; it weighs every pixel equally instead of every image.
"""

from __future__ import annotations

import numpy as np

METRICS_FILE = "metrics.json"      # written by test mode
PER_IMAGE_FILE = "per_image.json"  # each image's mean F1, for print.py


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; rows are the true class, columns the predicted one."""
    labels = np.asarray(labels, np.int64).ravel()
    pred = np.asarray(pred, np.int64).ravel()
    if labels.shape != pred.shape:
        raise ValueError(f"labels and pred differ in size: {labels.size} vs {pred.size}")
    return np.bincount(labels * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class f1 and iou (NaN where a class is neither present nor predicted)."""
    confusion = np.asarray(confusion, np.float64)
    tp = np.diag(confusion)
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
    return {"f1": f1, "iou": iou}


def _number(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


def summary(confusion: np.ndarray, class_names, images: int) -> dict:
    """metrics.json: per part f1 and iou (background excluded), their means, and the image count."""
    result = scores(confusion)
    parts = {name: {"f1": _number(result["f1"][i]), "iou": _number(result["iou"][i])}
             for i, name in enumerate(class_names) if i > 0}
    f1 = result["f1"][1:]
    iou = result["iou"][1:]
    return {
        "parts": parts,
        "mean_f1": _number(np.nanmean(f1)) if np.any(~np.isnan(f1)) else None,
        "mean_iou": _number(np.nanmean(iou)) if np.any(~np.isnan(iou)) else None,
        "images": int(images),
    }


def mean_f1(labels: np.ndarray, pred: np.ndarray, num_classes: int) -> float | None:
    """Mean F1 over the foreground classes present in labels or pred (one image's score)."""
    f1 = scores(confusion_matrix(labels, pred, num_classes))["f1"][1:]
    return None if np.all(np.isnan(f1)) else float(np.nanmean(f1))


def format_table(metrics: dict) -> str:
    """metrics.json as a text table: one row per part, then the mean."""
    def cell(v):
        return "   n/a" if v is None else f"{v:6.3f}"

    rows = [f"{'part':<24}{'F1':>8}{'IoU':>8}"]
    for name, values in metrics["parts"].items():
        rows.append(f"{name:<24}  {cell(values['f1'])}  {cell(values['iou'])}")
    rows.append(f"{'mean':<24}  {cell(metrics['mean_f1'])}  {cell(metrics['mean_iou'])}")
    rows.append(f"({metrics['images']} images)")
    return "\n".join(rows)
