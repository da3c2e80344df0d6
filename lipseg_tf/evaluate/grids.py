"""Grids of test results for print.py (cli/print.py), drawn with matplotlib: photo | target | prediction |
prediction over the photo.

Reads a test-mode folder (images/<id>-inputs|targets|outputs.png, per_image.json, metrics.json). The
figure's title names the data the results come from, so a synthetic result is never taken for a real one.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from lipseg_tf.errors import UserError
from lipseg_tf.prep.folders import read_json_object
from lipseg_tf.prep.imageio import load_rgb, write_bytes
from lipseg_tf.train.metrics import METRICS_FILE, PER_IMAGE_FILE

log = logging.getLogger("lipseg_tf")


def overlay(image: np.ndarray, color_mask: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The colour mask blended over the photo where it is not background (black)."""
    foreground = color_mask.any(axis=-1, keepdims=True)
    blended = (1 - alpha) * image + alpha * color_mask
    return np.where(foreground, blended, image).astype(np.uint8)


SOFTWARE = "lipseg_tf print.py"   # the PNG's Software text: how print.py knows a grid as its own


def is_own_grid(path: Path) -> bool:
    """Whether path is a PNG print.py wrote (its Software text says so); never for a link or anything
    but a regular file (a FIFO would block the read)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get("Software") == SOFTWARE
    except Exception:   # not an image, unreadable: not ours
        return False


def _read_json(path: Path) -> dict:
    """The JSON object of a test run's file; UserError naming it when missing, not JSON or no object."""
    if not path.is_file():
        raise UserError(f"{path}: not found (expected the {path.name} that a --mode test run writes)")
    return read_json_object(path, f"the {path.name} that a --mode test run writes")


def read_results(test_dir: Path) -> tuple[dict, dict]:
    """(metrics.json, per_image.json's mean_f1 {image id: score or None}) of a test folder; UserError in one
    line naming the file when either is not what test mode writes, or the test did not finish."""
    results = _read_json(test_dir / METRICS_FILE)
    if results.get("complete") is False:
        raise UserError(f"{test_dir / METRICS_FILE}: the test run did not finish (\"complete\": false): "
                        "run --mode test again")
    mean = results.get("mean_f1")
    if mean is not None and (not isinstance(mean, (int, float)) or isinstance(mean, bool)):
        raise UserError(f"{test_dir / METRICS_FILE}: mean_f1 is {json.dumps(mean)[:40]}, expected a number")
    path = test_dir / PER_IMAGE_FILE
    per_image = _read_json(path).get("mean_f1")
    if not isinstance(per_image, dict):
        raise UserError(f"{path}: no \"mean_f1\" object of image id -> score (expected the {PER_IMAGE_FILE} "
                        "that a --mode test run writes)")
    if not per_image:
        raise UserError(f"{path}: lists no images")
    for name, score in per_image.items():
        if score is not None and (not isinstance(score, (int, float)) or isinstance(score, bool)):
            raise UserError(f"{path}: the score of {name!r} is {json.dumps(score)[:40]}, expected a number "
                            "or null")
    return results, per_image


def choose_rows(per_image: dict, rows: int, order: str) -> list[str]:
    """Image ids to show: by name, or the best / worst mean F1 first (None scores count as 0)."""
    names = sorted(per_image)
    if order != "name":
        names.sort(key=lambda n: per_image[n] if per_image[n] is not None else 0.0, reverse=order == "best")
    return names[:rows]


def make_grid(test_dir: str | Path, output: str | Path, rows: int = 6, order: str = "name",
              show: bool = False) -> Path:
    """Draw the grid of a test folder into `output` (PNG); returns the path."""
    import matplotlib
    if not show:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test_dir = Path(test_dir)
    results, per_image = read_results(test_dir)
    names = choose_rows(per_image, rows, order)
    fig, axes = plt.subplots(len(names), 4, figsize=(10, 2.6 * len(names) + 0.8), squeeze=False)
    for row, name in zip(axes, names):
        photo, target, pred = (load_rgb(test_dir / "images" / f"{name}-{kind}.png")
                               for kind in ("inputs", "targets", "outputs"))
        score = per_image[name]
        for ax, picture, title in zip(row, (photo, target, pred, overlay(photo, pred)),
                                      ("photo", "target", "prediction", "prediction over photo")):
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=9)
        row[0].set_ylabel(f"{name}\nF1 {score:.3f}" if score is not None else f"{name}\nF1 n/a", fontsize=9)
    mean = results.get("mean_f1")
    fig.suptitle(f"{results.get('data', test_dir)}\nmean F1 {mean:.3f} over {results.get('images')} images "
                 f"(dataset level)" if mean is not None else str(results.get("data", test_dir)), fontsize=9)
    fig.tight_layout()
    output = Path(output)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png", metadata={"Software": SOFTWARE})
    write_bytes(output, buffer.getvalue())   # atomic; replaces a link rather than following it
    if show:
        plt.show()
    plt.close(fig)
    log.info("grid of %d images written to %s", len(names), output)
    return output
