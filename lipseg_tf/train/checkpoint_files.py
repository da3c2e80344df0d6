"""Checkpoint files on disk: which are whole, and what a killed save left behind.

A checkpoint `ckpt-N` is two files, `ckpt-N.index` and `ckpt-N.data-00000-of-00001`. A copy cut short, a
full disk or a flipped bit leaves one of them unreadable, and TensorFlow then fails deep inside restore
with a message that names neither the file nor what to do. broken_reason reads a checkpoint through once
(every tensor, so the checksums are verified) and says what is wrong in one line; newest_intact walks back
from the newest to the newest whole one, so a run resumes from there. A save killed midway leaves a
`ckpt-N_temp` folder (TensorFlow's own name for the files it is writing): stale_temp_folders finds them;
one cut short between its two files leaves a `ckpt-N.data-*` without its `.index`: orphan_data_files.
"""

from __future__ import annotations

import re
from pathlib import Path

import tensorflow as tf

_CKPT_RE = re.compile(r"^ckpt-(\d+)\.index$")
_TEMP_RE = re.compile(r"^ckpt-\d+_temp$")
_DATA_RE = re.compile(r"^(ckpt-\d+)\.data-\d+-of-\d+$")


def broken_reason(prefix: str | Path) -> str | None:
    """None when checkpoint `prefix` (ckpt-N) reads whole; else one line naming the file and the fault."""
    prefix = str(prefix)
    data = sorted(Path(prefix).parent.glob(Path(prefix).name + ".data-*"))
    if not Path(prefix + ".index").is_file():
        return f"{prefix}.index: missing"
    if not data:
        return f"{prefix}.data-00000-of-00001: missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as err:
        return f"{prefix}.index: unreadable ({_first_line(err)})"
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError) as err:  # IndexError: "Read less bytes than requested"
        return f"{data[0]}: unreadable ({_first_line(err)})"
    return None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def checkpoint_prefixes(folder: str | Path) -> list[str]:
    """The checkpoints (`ckpt-N` prefixes, by their .index files) in folder, newest (largest N) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m[1]), str(folder / f"ckpt-{m[1]}")) for p in folder.iterdir() if (m := _CKPT_RE.match(p.name))]
    return [prefix for _, prefix in sorted(found, reverse=True)]


def newest_intact(folder: str | Path) -> tuple[str | None, list[str]]:
    """(the newest checkpoint in folder that reads whole, or None; one line for each newer broken one)."""
    broken = []
    for prefix in checkpoint_prefixes(folder):
        reason = broken_reason(prefix)
        if reason is None:
            return prefix, broken
        broken.append(reason)
    return None, broken


def stale_temp_folders(folder: str | Path) -> list[Path]:
    """The `ckpt-N_temp` folders a killed save left in a checkpoint folder (TensorFlow's naming, inside
    the run's own checkpoints/ folder: safe to delete)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and _TEMP_RE.match(p.name))


def orphan_data_files(folder: str | Path) -> list[Path]:
    """The `ckpt-N.data-*` files without their `ckpt-N.index` in a checkpoint folder (a save cut short;
    TensorFlow's naming, inside the run's own checkpoints/ folder: safe to delete)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and (m := _DATA_RE.match(p.name))
                  and not (folder / f"{m[1]}.index").exists())
