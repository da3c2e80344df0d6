"""Which split each photo goes to: CelebA's official split when the mapping file is there, else a seeded
random train/val/test split (process.py --split, --seed)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Hashable, Iterable, Sequence

import numpy as np

from lipseg_tf.errors import UserError
from lipseg_tf.prep import celebamask

log = logging.getLogger("lipseg_tf.pairs")   # process.py's lines read the same

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def parse_fractions(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' -> (0.8, 0.1, 0.1), checked by check_fractions."""
    try:
        fractions = tuple(float(f) for f in text.split(","))
    except ValueError:
        raise UserError(f"--split: expected three numbers like 0.8,0.1,0.1, got {text!r}") from None
    return check_fractions(fractions)


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """The train/val/test fractions, or UserError unless they are three numbers >= 0 summing to 1."""
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or not all(0 <= f <= 1 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise UserError(f"--split: expected three fractions >= 0 for train,val,test summing to 1, "
                        f"got {','.join(f'{f:g}' for f in fractions)}")
    return fractions


def assign_splits(ids: Iterable[Hashable], fractions: Sequence[float] = DEFAULT_FRACTIONS,
                  seed: int = 0) -> dict:
    """A seeded random train/val/test split: {id: 'train'|'val'|'test'}.

    The ids are sorted first, so the result depends only on the set of ids, the fractions and the seed.
    """
    fractions = check_fractions(fractions)
    ids = sorted(ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    train_end, val_end = (int(round(b)) for b in np.cumsum(fractions[:2]) * len(ids))
    splits = {}
    for rank, position in enumerate(order):
        splits[ids[position]] = "train" if rank < train_end else "val" if rank < val_end else "test"
    return splits


def choose_splits(keys: list, all_keys: list, data_dir: Path | None, partition: str | None,
                   fractions: tuple[float, float, float] | None, seed: int | None) -> tuple[dict, dict]:
    """({key: split}, {key: problem}): official CelebA split of keys when possible and not overridden, else
    a seeded random one drawn over all_keys (every photo, so --limit doesn't change a photo's split)."""
    mapping_path = data_dir / celebamask.MAPPING_FILE if data_dir is not None else None
    if fractions is None and mapping_path is not None and mapping_path.is_file():
        if seed is not None:
            log.info("--seed ignored: using the official split from %s", mapping_path)
        return celebamask.split_problems(data_dir, keys, partition)
    if partition is not None:
        raise UserError(f"--partition {partition}: needs {celebamask.MAPPING_FILE} in --data-dir "
                        "and no --split")
    if fractions is None:
        where = f"no {mapping_path}" if mapping_path is not None else "plain folders"
        log.warning("official split not available (%s): using a random %s split, seed %d", where,
                    ",".join(f"{f:g}" for f in DEFAULT_FRACTIONS), seed or 0)
        return assign_splits(all_keys, DEFAULT_FRACTIONS, seed or 0), {}
    return assign_splits(all_keys, fractions, seed or 0), {}
