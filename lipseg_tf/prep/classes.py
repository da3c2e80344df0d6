"""Which classes a run segments, and how its mask images colour them."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from lipseg_tf.prep import parts as parts_lib
from lipseg_tf.prep.pairs import read_pairs_meta

log = logging.getLogger("lipseg_tf")


@dataclasses.dataclass(frozen=True)
class ClassSpec:
    """The classes of a run: names (background first), mask colours and the flip permutation."""

    parts: tuple[str, ...]
    style: str
    names: tuple[str, ...]
    colors: np.ndarray
    flip_perm: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @classmethod
    def create(cls, parts, style: str) -> "ClassSpec":
        parts = parts_lib.parse_parts(parts)
        return cls(parts, style, parts_lib.class_names(parts, style), parts_lib.palette(parts, style),
                   parts_lib.flip_permutation(parts, style))


def classes_for_training(input_dir, parts, style) -> ClassSpec:
    """The classes an AB folder holds: from its pairs.json (written by process.py) when present."""
    meta = read_pairs_meta(input_dir)
    if meta is not None:
        parts, style = tuple(meta.get("parts", parts)), meta.get("style", style)
        log.info("classes from pairs.json: %s (%s masks)", ",".join(parts), style)
    return ClassSpec.create(parts, style)
