"""Which classes a run segments, and how its mask images colour them."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from lipseg_tf.prep import parts as parts_lib
from lipseg_tf.prep.pairs import pairs_meta_file, read_pairs_meta

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
    def create(cls, parts, style: str, source: str | Path | None = None) -> "ClassSpec":
        """The classes of these parts in masks of this style; UserError naming source (the file they come
        from: pairs.json, options.json; None: the --parts and --style flags) when one is unknown."""
        parts = parts_lib.parse_parts(parts, f"{source}: parts" if source else "--parts")
        parts_lib.check_style(style, f"{source}: style" if source else "--style")
        return cls(parts, style, parts_lib.class_names(parts, style), parts_lib.palette(parts, style),
                   parts_lib.flip_permutation(parts, style))


def classes_for_training(input_dir, parts, style, source: str | Path | None = None) -> ClassSpec:
    """The classes an AB folder holds: from its pairs.json (written by process.py) when present, else
    these parts and style (from source: a resumed run's options.json; None: the command line)."""
    meta_file = pairs_meta_file(input_dir)
    if meta_file is not None:
        meta = read_pairs_meta(input_dir)
        parts, style = meta.get("parts", parts), meta.get("style", style)
        spec = ClassSpec.create(parts, style, meta_file)
        log.info("classes from pairs.json: %s (%s masks)", ",".join(spec.parts), spec.style)
        return spec
    return ClassSpec.create(parts, style, source)
