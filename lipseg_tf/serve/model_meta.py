"""classes.json, the file an export writes beside saved_model.pb: read, checked field by field and
against the graph it describes.

Every field is checked alone first (read_classes_json): `classes` a list of distinct names, background
and at least one part; `colors` one [r, g, b] of 0-255 integers per class; `image_size` a whole number
of pixels from 1 to MAX_IMAGE_SIZE; `framing` one of serve/align.py's; `crop` a box [x0, y0, side]
inside the framing; `tta` "flip" or none. A field of another name is warned about and ignored.

Then against the graph (check_against_graph), which costs no forward pass: the number of classes
against the signature's output, the names against the graph's classes(), image_size against the size
the graph resizes its input to (the constant of its first antialiased resize). A graph exported by this
version also holds the classes.json it was exported with (its function classes_json()): then classes,
image_size, framing, crop and tta must all be what the graph was exported with, so a removed or edited
crop is refused too; so does a copy of a graph listed in SHIPPED_GRAPHS (pretrained/unet, exported
before that), known by its fingerprint. Colours may be edited (they only paint the overlay).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path

import numpy as np

from lipseg_tf.errors import UserError
from lipseg_tf.prep import folders
from lipseg_tf.serve import align

log = logging.getLogger("lipseg_tf")

META_FILE = "classes.json"
# background_scale: what train/calibrate.py folded into the network (information: the graph has it already)
FIELDS = ("classes", "colors", "image_size", "framing", "crop", "tta", "signatures", "background_scale")
# classes.json "signatures": what each signature takes (savedmodel.SIGNATURES)
SIGNATURE_INPUTS = {"serving_default": ("framing", "crop"), "serve_crop": ("crop",)}
# Fields the graph fixes: a classes.json edited in one of them describes another model.
GRAPH_FIELDS = ("classes", "image_size", "framing", "crop", "tta")
# 4096 px is 16x the paper's 256 px; a crop of that size and its probabilities take ~0.5 GB per face.
MAX_IMAGE_SIZE = 4096
TTA_VALUES = ("flip",)
EXPECTED = "the classes.json written beside saved_model.pb by unet.py / pix2pix.py --mode export"
# Graphs this repository shipped before exports recorded their classes.json (classes_json()): the
# saved_model_checksum of their fingerprint.pb -> what they were exported with, so that a copy whose
# classes.json was edited is told as well.
SHIPPED_GRAPHS = {
    1417411862092447200: {  # the first export of pretrained/unet (2026-11-29), before it moved into the package
        "classes": ["background", "l_eye", "r_eye", "u_lip", "l_lip"], "image_size": 128,
        "framing": "celebahq", "crop": [0.2, 0.36, 0.6], "tta": "flip"},
}


@dataclasses.dataclass(frozen=True)
class ModelMeta:
    """What classes.json says, checked: background first in classes, colours (C, 3) uint8."""

    classes: tuple[str, ...]
    colors: np.ndarray
    image_size: int
    framing: str | None
    crop: tuple[float, float, float] | None
    tta: str | None

    def as_dict(self) -> dict:
        """The fields as write_classes writes them (absent ones left out)."""
        meta = {"classes": list(self.classes), "colors": self.colors.tolist(), "image_size": self.image_size}
        meta.update({k: v for k, v in (("framing", self.framing), ("tta", self.tta)) if v})
        if self.crop is not None:
            meta["crop"] = list(self.crop)
        return meta


def read_classes_json(meta_file: str | Path) -> ModelMeta:
    """classes.json checked field by field; UserError naming the file and the field otherwise."""
    meta_file = Path(meta_file)
    meta = folders.read_json_object(meta_file, EXPECTED)
    if meta is None:
        raise UserError(f"{meta_file}: not found (expected beside saved_model.pb)")
    return parse(meta, meta_file)


def parse(meta: dict, meta_file: Path) -> ModelMeta:
    """ModelMeta of a classes.json object; UserError naming meta_file and the first bad field."""
    if "image_size" not in meta:
        raise UserError(f"{meta_file}: no image_size (exported by an older lipseg_tf): export the run "
                        "again with unet.py / pix2pix.py --mode export")
    folders.check_fields(meta, meta_file, {"image_size": int, "classes": list, "colors": list,
                                           "framing": (str, type(None)), "crop": (list, type(None)),
                                           "tta": (str, type(None)), "signatures": (dict, type(None)),
                                           "background_scale": (int, float)})
    _signatures(meta.get("signatures"), meta_file)
    background_scale(meta, meta_file)
    for name in sorted(set(meta) - set(FIELDS)):
        log.warning("%s: field %r is not one of %s: ignored", meta_file, name, ", ".join(FIELDS))
    classes = _classes(meta.get("classes", []), meta_file)
    return ModelMeta(classes, _colors(meta.get("colors", []), len(classes), meta_file),
                     _image_size(meta["image_size"], meta_file), _framing(meta.get("framing"), meta_file),
                     _crop(meta.get("crop"), meta_file), _tta(meta.get("tta"), meta_file))


def background_scale(meta: dict, meta_file: Path) -> float:
    """classes.json's "background_scale" (1 when absent); UserError unless it is a number > 0."""
    scale = meta.get("background_scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale) or scale <= 0:
        raise UserError(f"{meta_file}: 'background_scale' is {scale!r}, expected a number > 0 ({EXPECTED})")
    return float(scale)


def _signatures(signatures: dict | None, meta_file: Path) -> None:
    """UserError unless "signatures" (when there) maps known signature names to what they take."""
    for name, takes in (signatures or {}).items():
        if takes not in SIGNATURE_INPUTS.get(name, ()):
            raise UserError(f"{meta_file}: 'signatures' says {name!r} takes {takes!r}, expected "
                            + "; ".join(f"{k}: {' or '.join(v)}" for k, v in SIGNATURE_INPUTS.items()))


def _classes(classes: list, meta_file: Path) -> tuple[str, ...]:
    bad = next((c for c in classes if not isinstance(c, str) or not c.strip()), None)
    if bad is not None:
        raise UserError(f"{meta_file}: class {json.dumps(bad)[:40]} in 'classes', expected a class name (a "
                        "string), background first")
    if len(classes) < 2:
        raise UserError(f"{meta_file}: 'classes' lists {len(classes)} class(es), expected background and at "
                        "least one part")
    twice = next((c for c in classes if classes.count(c) > 1), None)
    if twice is not None:
        raise UserError(f"{meta_file}: class {twice!r} listed twice in 'classes', expected each class once")
    return tuple(classes)


def _is_byte(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255


def _colors(colors: list, count: int, meta_file: Path) -> np.ndarray:
    if len(colors) != count:
        raise UserError(f"{meta_file}: expected 'classes' (background and the parts) and one RGB colour "
                        f"per class in 'colors', got {count} classes and {len(colors)} colours")
    for index, color in enumerate(colors):
        if not (isinstance(color, list) and len(color) == 3 and all(_is_byte(v) for v in color)):
            shown = "NaN" if isinstance(color, list) and any(isinstance(v, float) and math.isnan(v)
                                                             for v in color) else json.dumps(color)[:40]
            raise UserError(f"{meta_file}: colour {index} in 'colors' is {shown}, expected [r, g, b] of "
                            "whole numbers 0-255")
    return np.asarray(colors, np.uint8).reshape(count, 3)


def _image_size(size: int, meta_file: Path) -> int:
    if not 1 <= size <= MAX_IMAGE_SIZE:
        shown = size if abs(size) < 10 ** 12 else f"{size:.3g}"
        raise UserError(f"{meta_file}: 'image_size' is {shown}, expected the model's input size in pixels "
                        f"(1 to {MAX_IMAGE_SIZE})")
    return size


def _framing(framing: str | None, meta_file: Path) -> str | None:
    if framing is not None and framing not in align.FRAMINGS:
        raise UserError(f"{meta_file}: 'framing' {framing!r} unknown, valid: {', '.join(align.FRAMINGS)}")
    return framing


def _crop(crop: list | None, meta_file: Path) -> tuple[float, float, float] | None:
    """"crop" [x0, y0, side] (fractions of the framing's side) or None."""
    if crop is None:
        return None
    if len(crop) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                 for v in crop):
        raise UserError(f"{meta_file}: crop {json.dumps(crop)[:40]}: expected [x0, y0, side]")
    x0, y0, side = (float(v) for v in crop)
    if not (side > 0 and 0 <= x0 and 0 <= y0 and x0 + side <= 1 + 1e-9 and y0 + side <= 1 + 1e-9):
        raise UserError(f"{meta_file}: crop {crop!r}: expected a box inside the framing (fractions 0-1)")
    return x0, y0, side


def _tta(tta: str | None, meta_file: Path) -> str | None:
    if tta in (None, "none"):
        return None
    if tta not in TTA_VALUES:
        raise UserError(f"{meta_file}: 'tta' {tta!r} unknown, expected \"flip\" or no tta")
    return tta


# ------------------------------------------------------------------------------------ the graph's side

def graph_facts(loaded, signature, folder: Path | None = None) -> dict:
    """What a loaded SavedModel (from folder) says about itself, without running it: {"num_classes",
    "classes", "image_size"} where found, plus every GRAPH_FIELDS entry of the classes.json recorded in
    its graph (or in SHIPPED_GRAPHS for its fingerprint)."""
    facts = {}
    channels = signature.structured_outputs["probabilities"].shape[-1]
    if channels is not None:
        facts["num_classes"] = int(channels)
    recorded = None
    if hasattr(loaded, "classes_json"):
        recorded = json.loads(loaded.classes_json().numpy().decode())
    elif folder is not None:
        recorded = SHIPPED_GRAPHS.get(_checksum(folder))
    if recorded is not None:
        facts.update({k: recorded.get(k) for k in GRAPH_FIELDS})
        return facts
    if hasattr(loaded, "classes"):
        facts["classes"] = [name.decode() for name in loaded.classes().numpy()]
    size = _resize_size(signature)
    if size is not None:
        facts["image_size"] = size
    return facts


def _checksum(folder: Path) -> int | None:
    """The saved_model_checksum of a SavedModel's fingerprint.pb, None without one."""
    import tensorflow as tf

    try:
        return int(tf.saved_model.experimental.read_fingerprint(str(folder)).saved_model_checksum)
    except Exception:  # no fingerprint.pb (TensorFlow before 2.12), or an unreadable one
        return None


def _resize_size(signature) -> int | None:
    """The constant square size of the graph's antialiased resize (Segmenter.serve's input resize), or
    None when there is no such single one."""
    import tensorflow as tf

    sizes = set()
    for function in signature.graph.as_graph_def().library.function:
        nodes = {node.name: node for node in function.node_def}
        for node in function.node_def:
            if node.op != "ScaleAndTranslate" or len(node.input) < 2:
                continue
            source = nodes.get(node.input[1].split(":")[0])
            if source is not None and source.op == "Const":
                value = tf.make_ndarray(source.attr["value"].tensor).ravel()
                if value.size == 2 and value[0] == value[1]:
                    sizes.add(int(value[0]))
    return sizes.pop() if len(sizes) == 1 else None


def check_against_graph(meta: ModelMeta, meta_file: Path, loaded, signature) -> None:
    """UserError naming meta_file and the field where classes.json does not describe this graph."""
    facts = graph_facts(loaded, signature, meta_file.parent)
    fix = "expected the classes.json exported with this model"
    if "num_classes" in facts and facts["num_classes"] != len(meta.classes):
        raise UserError(f"{meta_file}: 'classes' lists {len(meta.classes)} classes but the model outputs "
                        f"{facts['num_classes']} ({fix})")
    if facts.get("classes") is not None and list(facts["classes"]) != list(meta.classes):
        raise UserError(f"{meta_file}: 'classes' is {','.join(meta.classes)} but the model was exported with "
                        f"{','.join(facts['classes'])} ({fix})")
    if facts.get("image_size") is not None and facts["image_size"] != meta.image_size:
        raise UserError(f"{meta_file}: 'image_size' is {meta.image_size} but the model's graph takes "
                        f"{facts['image_size']} px ({fix})")
    mine = meta.as_dict()
    for name in ("framing", "crop", "tta"):
        if name in facts and not _same(mine.get(name), facts[name]):
            said = json.dumps(mine[name]) if name in mine else "absent"
            raise UserError(f"{meta_file}: '{name}' is {said} but the model was exported with "
                            f"{json.dumps(facts[name]) if facts[name] is not None else 'none'} ({fix})")


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(abs(float(x) - float(y)) < 1e-9 for x, y in zip(a, b))
    return a == b
