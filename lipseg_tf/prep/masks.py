"""CelebAMask-HQ per-part annotation files -> one mask image per photo (the original g_mask step).

CelebAMask-HQ stores one black/white PNG per visible part, `<id:05d>_<part>.png`; a part that is hidden
or absent simply has no file. This module merges the chosen parts into one mask per photo,
`<out>/<id>.png`, at the annotations' own size (512x512 in the release), in one of three styles:

    color   RGB; each part painted in its fixed colour (parts.palette), background black
    binary  greyscale 0/255; white where any chosen part is (the original project's masks)
    index   greyscale class ids; 0 background, then 1, 2, ... for the parts in --parts order

A pixel belongs to a part where its annotation value is >= 128 (annotations are 0/255, but a re-saved
file may be antialiased, RGB or 16-bit; load_gray reduces them all to 8-bit grey).

Overlap rule: parts are painted in --parts order and a later part overwrites an earlier one, as
CelebAMask-HQ's own g_mask does. With the default order (l_eye, r_eye, u_lip, l_lip) the lower lip wins
where the two lips' annotations touch.

Errors: problems of the whole run (data folder or its annotation folder missing, an unknown part or
style) stop it with a one-line UserError. Problems of one photo (its annotation sub-folder missing, an
unreadable or truncated part file, parts of different sizes) are logged as a warning naming the file;
that photo gets no mask (a stale mask from an earlier run is removed so it cannot look up to date),
the run goes on, and it ends with exit status 1 and the count of failures. A photo without a part file of
any part (CelebAMask-HQ gives every face at least its skin) gets an all-background mask and a warning
naming where its files were expected (no_part_file_note).

Left and right: CelebAMask-HQ's l_eye, l_brow and l_ear are the person's left, which lies on the
image's RIGHT. Some hand annotations have them the other way round (6.8 % of the faces with both eyes
in one public subset). Every mask written counts the faces whose l_ part lies left of its r_ part and
warns; with fix_sides (g_mask.py --fix-sides) such pairs are relabelled by their position.

Re-running is cheap: a mask is rewritten only when it is missing, older than one of its part files,
or the parts/style differ from those recorded in `<out>/masks.json` (then every old mask is
deleted and rewritten). masks.json is written first, marked `"complete": false` until the run ends, so
an interrupted run restarts where it stopped. The output folder must lie apart from the data folder, and
a folder without masks.json is only used when it holds no `<id>.png` (prep/folders.py).
`masks.json` records parts, style, class names and palette for the later steps (process.py, trainers).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from lipseg_tf.errors import UserError
from lipseg_tf.prep import celebamask, folders, imageio, parallel
from lipseg_tf.prep.parts import CELEBAMASK_PARTS, DEFAULT_PARTS, class_names, palette, parse_parts

log = logging.getLogger("lipseg_tf.masks")

META_FILE = "masks.json"
# Size of the CelebAMask-HQ annotations; used only for a photo that has no part file at all.
ANNOTATION_SIZE = (512, 512)
PART_THRESHOLD = 128
# Photos without any part file named one by one before the rest are counted.
MAX_NAMED_WARNINGS = 10
# Left/right part pairs, (the person's left, the person's right): l_ lies on the image's right.
SIDE_PAIRS = (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear"))


def compose_mask(part_masks: Mapping[str, np.ndarray], parts: Sequence[str], style: str = "color",
                 shape: tuple[int, int] | None = None) -> np.ndarray:
    """Merge boolean part masks into one mask image; a part missing from part_masks is absent.

    parts fixes the painting order (a later part overwrites an earlier one) and the class ids
    (index style: 0 background, then 1.. in parts order). shape (H, W) is needed only when part_masks
    holds none of the parts. Returns uint8: (H, W, 3) for style color, (H, W) for binary (0/255) and
    index (class ids).
    """
    colors = palette(parts, style)  # validates the style
    present = [p for p in parts if p in part_masks]
    shapes = {np.shape(part_masks[p]) for p in present}
    if len(shapes) > 1:
        raise ValueError(f"part masks differ in size: {sorted(shapes)}")
    if shapes:
        shape = shapes.pop()
    elif shape is None:
        raise ValueError("no part mask given: pass shape to make an all-background mask")
    labels = np.zeros(shape, dtype=np.uint8)
    for class_id, part in enumerate(parts, start=1):
        if part in part_masks:
            labels[np.asarray(part_masks[part], dtype=bool)] = class_id
    if style == "binary":
        return np.where(labels > 0, 255, 0).astype(np.uint8)
    if style == "index":
        return labels
    return colors[labels]


def part_files(root: str | Path, image_id: int, parts: Iterable[str]) -> dict[str, Path]:
    """The annotation file of each of these parts that exists for this photo (hidden parts have none).

    UserError naming the path when a part's name holds a folder or a broken link: it is neither a
    hidden part nor an annotation, and guessing would draw a wrong mask.
    """
    paths = {part: celebamask.part_path(root, image_id, part) for part in parts}
    for path in paths.values():
        if path.is_dir():
            raise UserError(f"{path}: a folder, expected a part annotation file")
        if os.path.islink(path) and not path.exists():
            raise UserError(f"{path}: a broken symbolic link (to {os.readlink(path)}), expected a part "
                            "annotation file")
        imageio.check_regular_file(path)   # a FIFO is no hidden part: reading it would wait forever
    return {part: path for part, path in paths.items() if path.is_file()}


def _annotation_folder(root: str | Path, image_id: int) -> Path:
    return celebamask.part_path(root, image_id, DEFAULT_PARTS[0]).parent


def _annotation_size(root: str | Path, image_id: int) -> tuple[int, int]:
    """(H, W) of this photo's annotations, from any part file, when none of the chosen parts has one."""
    for path in part_files(root, image_id, CELEBAMASK_PARTS).values():
        try:
            with Image.open(path) as image:  # reads the header only
                return image.size[1], image.size[0]
        except Exception:  # a broken file of a part we don't use must not fail this photo
            continue
    return ANNOTATION_SIZE


def swapped_sides(part_masks: Mapping[str, np.ndarray]) -> list[tuple[str, str]]:
    """The SIDE_PAIRS, both present, whose l_ part lies on the image's left of its r_ part (by mean column)."""
    swapped = []
    for left, right in SIDE_PAIRS:
        if left in part_masks and right in part_masks:
            # Mean columns from per-column pixel counts, compared exactly in integers: about 5 times
            # cheaper than listing every pixel (np.nonzero), which cost g_mask 20 % of its time.
            left_count, left_sum = _column_moments(part_masks[left])
            right_count, right_sum = _column_moments(part_masks[right])
            if left_count and right_count and left_sum * right_count < right_sum * left_count:
                swapped.append((left, right))
    return swapped


def _column_moments(part_mask: np.ndarray) -> tuple[int, int]:
    """(pixels, sum of their column indices) of a boolean mask."""
    per_column = np.count_nonzero(part_mask, axis=0)
    return int(per_column.sum()), int(per_column @ np.arange(per_column.size, dtype=np.int64))


def make_mask(root: str | Path, image_id: int, parts: Sequence[str] = DEFAULT_PARTS,
              style: str = "color") -> np.ndarray:
    """Read the chosen parts' annotation files of one photo and return its mask (see compose_mask).

    Raises UserError naming the file when the photo's annotation folder is missing, a part file is
    unreadable, or part files differ in size.
    """
    return make_mask_checked(root, image_id, parts, style)[0]


def make_mask_checked(root: str | Path, image_id: int, parts: Sequence[str] = DEFAULT_PARTS,
                      style: str = "color", fix_sides: bool = False) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """make_mask, and the left/right pairs found swapped (swapped_sides); fix_sides relabels them."""
    folder = _annotation_folder(root, image_id)
    if not folder.is_dir():
        raise UserError(f"{folder}: folder not found (expected the annotations of image {image_id})")
    part_masks: dict[str, np.ndarray] = {}
    first_path: Path | None = None
    for part, path in part_files(root, image_id, parts).items():
        annotation = imageio.load_gray(path)
        if part_masks and annotation.shape != next(iter(part_masks.values())).shape:
            height, width = next(iter(part_masks.values())).shape
            raise UserError(f"{path}: size {annotation.shape[1]}x{annotation.shape[0]}, expected "
                            f"{width}x{height} like {first_path.name}")
        first_path = first_path or path
        part_masks[part] = annotation >= PART_THRESHOLD
    shape = None if part_masks else _annotation_size(root, image_id)
    swapped = swapped_sides(part_masks)
    if fix_sides:
        for left, right in swapped:
            part_masks[left], part_masks[right] = part_masks[right], part_masks[left]
    return compose_mask(part_masks, parts, style, shape=shape), swapped


def is_up_to_date(output: Path, inputs: Iterable[Path]) -> bool:
    """True when output exists and is at least as new as every input file."""
    try:
        written = output.stat().st_mtime
    except FileNotFoundError:
        return False
    return all(path.stat().st_mtime <= written for path in inputs)


# The fields of masks.json and pairs.json that later steps read, and their JSON types.
META_FIELDS = {"parts": list, "style": str, "fix_sides": bool, "classes": list, "palette": list, "complete": bool,
               "size": int, "splits": dict, "shards": dict, "format": str, "crop": list}


def read_meta(path: Path) -> dict | None:
    """A JSON settings file (masks.json, pairs.json) written by an earlier run, or None when there is
    none; UserError naming the file when it is not a JSON object with fields of the expected types."""
    meta = folders.read_json_object(path, "the settings an earlier run wrote; delete it to start afresh")
    return None if meta is None else folders.check_fields(meta, path, META_FIELDS)


def mask_meta(data_dir: str | Path, parts: Sequence[str], style: str, fix_sides: bool = False) -> dict:
    """The contents of masks.json: what the masks in a folder hold, for the later steps."""
    return {
        "parts": list(parts),
        "style": style,
        "fix_sides": fix_sides,
        "classes": list(class_names(parts, style)),
        "palette": palette(parts, style).tolist(),
        "source": str(data_dir),
        "synthetic": celebamask.is_synthetic(data_dir),
    }


def _mask_job(image_id: int, data_dir: str, out_dir: str, parts: tuple[str, ...], style: str,
              force: bool, fix_sides: bool = False) -> tuple[int, str, str, list]:
    """Write one photo's mask unless up to date; returns (id, 'written'|'skipped'|'failed', message,
    the left/right pairs found swapped)."""
    output = Path(out_dir) / f"{image_id}.png"
    try:
        inputs = part_files(data_dir, image_id, parts).values()
        note = "" if inputs else no_part_file_note(data_dir, image_id)
        if not force and is_up_to_date(output, inputs):
            return image_id, "skipped", note, []
        mask, swapped = make_mask_checked(data_dir, image_id, parts, style, fix_sides)
        imageio.save_image(output, mask)
        return image_id, "written", note, swapped
    except UserError as err:
        # A stale mask left here would look up to date on the next run although its inputs are bad.
        output.unlink(missing_ok=True)
        return image_id, "failed", str(err), []


def no_part_file_note(root: str | Path, image_id: int) -> str:
    """'' when the photo has an annotation file of any of CelebAMask-HQ's parts; else a line naming where
    they were expected, and any file there named by the id without its five digits (2_l_eye.png)."""
    if part_files(root, image_id, CELEBAMASK_PARTS):
        return ""
    expected = celebamask.part_path(root, image_id, "l_eye")
    unpadded = [expected.parent / f"{image_id}_{part}.png" for part in CELEBAMASK_PARTS]
    misnamed = [path.name for path in unpadded if path.exists()] if str(image_id) != f"{image_id:05d}" else []
    hint = f"; {misnamed[0]} is named without the id's five digits" if misnamed else ""
    return (f"image {image_id}: no part file at all (expected {expected.parent / f'{image_id:05d}_<part>.png'}), "
            f"its mask is all background{hint}")


def _report_sides(counts: dict, fix_sides: bool) -> None:
    if not counts["swapped_sides"]:
        return
    what = (f"{counts['swapped_sides']} of {counts['written']} masks written have a left/right pair the "
            f"wrong way round ({counts['swapped_eyes']} of them the eyes): l_ parts are the person's left, "
            "on the image's right")
    if fix_sides:
        log.info("%s; relabelled by position (--fix-sides)", what)
    else:
        log.warning("%s; --fix-sides relabels them by position", what)


def run_g_mask(data_dir: str | Path, out_dir: str | Path, parts: Sequence[str] = DEFAULT_PARTS,
               style: str = "color", workers: int | None = None, limit: int | None = None,
               force: bool = False, fix_sides: bool = False) -> dict[str, int]:
    """Write `<out_dir>/<id>.png` for every photo of a CelebAMask-HQ root, and `<out_dir>/masks.json`.

    Returns the counts {"written", "skipped", "failed", "swapped_eyes", "swapped_sides"} (the last two:
    masks written this run whose l_eye / any l_ part lay left of its r_ part; relabelled with
    fix_sides); the reason of each failure is logged as a warning. Raises UserError for problems of
    the whole run (missing folders, unknown part or style, an output folder that is not apart from the
    data or not g_mask.py's own).
    """
    parts = parse_parts(parts)
    palette(parts, style)  # unknown style: fail before any work
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    image_ids = celebamask.find_image_ids(data_dir)
    anno_dir = data_dir / celebamask.ANNO_DIR
    if not anno_dir.is_dir():
        raise UserError(f"{anno_dir}: folder not found (expected the CelebAMask-HQ part annotations)")
    folders.check_apart(("--out-dir", out_dir), {"--data-dir": data_dir})
    if limit is not None:
        image_ids = image_ids[:limit]
    meta = mask_meta(data_dir, parts, style, fix_sides)
    force = _claim_mask_folder(out_dir, meta) or force

    job = functools.partial(_mask_job, data_dir=str(data_dir), out_dir=str(out_dir), parts=parts,
                            style=style, force=force, fix_sides=fix_sides)
    results = parallel.map_progress(job, image_ids, workers=workers, desc="masks")
    counts = {"written": 0, "skipped": 0, "failed": 0, "swapped_eyes": 0, "swapped_sides": 0}
    for image_id, status, message, swapped in results:
        counts[status] += 1
        counts["swapped_sides"] += bool(swapped)
        counts["swapped_eyes"] += ("l_eye", "r_eye") in [tuple(pair) for pair in swapped]
        if status == "failed":
            log.warning("image %d skipped: %s", image_id, message)
    empty = [message for _, status, message, _ in results if status != "failed" and message]
    counts["no_part_file"] = len(empty)
    for message in empty[:MAX_NAMED_WARNINGS]:
        log.warning("%s", message)
    if empty:
        log.warning("%d of %d masks are all background because their photos have no part file at all",
                    len(empty), len(results))
    _report_sides(counts, fix_sides)
    imageio.write_text(out_dir / META_FILE, json.dumps({**meta, "complete": True}, indent=2) + "\n")
    log.info("wrote %d masks, skipped %d up to date, %d failed%s -> %s", counts["written"],
             counts["skipped"], counts["failed"], " (see warnings)" if counts["failed"] else "", out_dir)
    return counts


def _own_masks(out_dir: Path) -> list[Path]:
    """The files in out_dir named as g_mask.py names its masks, `<id>.png`."""
    return [p for p in out_dir.glob("*.png") if p.stem.isdigit()] if out_dir.is_dir() else []


def _claim_mask_folder(out_dir: Path, meta: dict) -> bool:
    """Make out_dir g_mask.py's own before any mask is written: masks.json, marked incomplete until the
    run ends, so a restart trusts the masks finished so far. Masks of other parts or style are deleted
    first. Returns True when every mask must be rewritten."""
    meta_path = out_dir / META_FILE
    folders.make_output_dir(out_dir, "--out-dir")
    folders.claim_folder(out_dir, META_FILE, _own_masks(out_dir), "g_mask.py", keys=("parts", "style"))
    old_meta = read_meta(meta_path)
    settings_changed = old_meta is not None and (
        old_meta.get("parts"), old_meta.get("style"), bool(old_meta.get("fix_sides"))) != (
        meta["parts"], meta["style"], meta["fix_sides"])
    if settings_changed:
        log.info("parts/style/fix_sides differ from %s (%s, %s, %s): rewriting every mask", meta_path,
                 ",".join(map(str, old_meta.get("parts") or [])), old_meta.get("style"),
                 bool(old_meta.get("fix_sides")))
        # Masks of the old settings outside this run (--limit) would pass for the new ones.
        for stale in _own_masks(out_dir):
            stale.unlink()
    imageio.write_text(meta_path, json.dumps({**meta, "complete": False}, indent=2) + "\n")
    return settings_changed
