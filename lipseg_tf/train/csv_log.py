"""CSV logs of a run (log.csv, val.csv), one row appended at a time, never half-written.

Each append rewrites the file atomically (prep/imageio.write_text: temporary file, then rename), so a
full disk or a killed run leaves the rows written so far, no 0-byte or torn file, and the error names
the log. A log holds one row per epoch or validation: rewriting it whole costs nothing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Mapping

import keras
import numpy as np

from lipseg_tf.prep.imageio import write_text


def append_row(path: str | Path, row: Mapping) -> None:
    """Append one row to a CSV file; a new (or empty) file gets the row's keys as its header, an existing
    one keeps its own columns (a key it lacks is dropped, a column the row lacks left empty)."""
    path = Path(path)
    old = path.read_text() if path.is_file() else ""
    header = next(csv.reader(io.StringIO(old)), None) if old.strip() else None
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header or list(row), extrasaction="ignore", restval="")
    if header is None:
        old = ""
        writer.writeheader()
    writer.writerow(row)
    write_text(path, (old if old.endswith("\n") or not old else old + "\n") + buffer.getvalue())


def _cell(value):
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


class CsvLogger(keras.callbacks.Callback):
    """keras.callbacks.CSVLogger(path, append=True)'s rows (epoch, then the logs' keys sorted), each
    appended by append_row: the file exists only once it holds a row."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        append_row(self.path, {"epoch": epoch, **{key: _cell(logs[key]) for key in sorted(logs)}})
