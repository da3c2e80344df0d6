"""Photo + mask -> one side-by-side "AB" training image per photo (the original process step).

An AB image is an RGB PNG `size` high and `2*size` wide: the photo on the left (A), its mask on the
right (B), the layout pix2pix-style trainers read. The photo is resized with antialiasing (Lanczos);
the mask with nearest neighbour, so it never gains a label colour it didn't have. A greyscale mask
(binary or index style) becomes RGB by repeating its grey value in all three channels.

Aspect ratio: photo and mask must have the same aspect ratio (within 1%; CelebAMask-HQ's 1024x1024
photos and 512x512 masks do). A photo that is square within 1% is resized as it is; any other is first
center-cropped to a square, and its mask the same way, so the two stay aligned.

Two ways to name the inputs:

    --data-dir ROOT --masks MASKS   CelebAMask-HQ: photos ROOT/CelebA-HQ-img/<id>.jpg, masks
                                    MASKS/<id>.png from g_mask.py; official split from
                                    ROOT/CelebA-HQ-to-CelebA-mapping.txt when that file is there.
    --images DIR --masks MASKS      plain folders: photo and mask matched by file name stem.

With --format tfrecord the pairs go instead into sharded TFRecord files, `<out>/<split>-00000-of-000NN
.tfrecord` (records.py: the same PNG bytes and the id per record), rewritten on every run, for fast
streaming reads in training; the trainers read either.

Output `<out>/{train,val,test}/<id>.png` and `<out>/pairs.json`: the masks' meta (MASKS/masks.json
from g_mask.py: parts, style, classes, palette) plus the size and the number of pairs per split, for
the trainers. Without a masks.json the meta says style --style (default color) with parts --parts
(default the four lip and eye parts).

Split: the official CelebA split when the mapping file is there and no --split is given; otherwise a
seeded random split by --split fractions (default 0.8,0.1,0.1, seed 0, with a warning that the
official split wasn't available). The random split is drawn over every photo (not only those with a
mask), so a photo keeps its split when more masks are added.

Errors: problems of the whole run (a missing or empty folder, a missing mapping row, bad --split, a
--size whose pairing cannot fit in memory (check_memory), an output folder that is not apart from the
inputs or holds files process.py did not write) stop it with a one-line UserError. Problems of one photo
(unreadable or truncated photo or mask, a photo under MIN_PHOTO_SIDE pixels, a mask of another aspect
ratio, a mask whose part pixels are mostly no colour of its palette (check_mask_colors), an id listed
twice in the mapping file, a photo without a mask) are logged as warnings naming the file; the photo gets
no pair, and the run ends with exit status 1 and the counts. A mask without a photo is ignored and counted.

Restart: pairs.json is written first with the settings, `"complete": false` until the run ends, so an
interrupted run restarts where it stopped: up-to-date pairs (newer than their photo and mask, same size,
crop and mask settings as pairs.json) are not rewritten; when those settings change, every old pair is
deleted and rewritten. Only files named process.py's way inside a folder holding its pairs.json are ever
replaced or deleted (prep/folders.py).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from pathlib import Path
from typing import Hashable, Iterable, Sequence

import numpy as np
from PIL import Image

from lipseg_tf.errors import UserError
from lipseg_tf.prep import celebamask, folders, imageio, parallel
from lipseg_tf.prep import parts as parts_lib
from lipseg_tf.prep.celebamask import SPLITS
from lipseg_tf.prep.masks import META_FILE as MASKS_META_FILE
from lipseg_tf.prep.masks import is_up_to_date, mask_meta, read_meta
from lipseg_tf.prep.parts import DEFAULT_PARTS, MASK_STYLES, check_style, parse_parts
from lipseg_tf.prep.splits import choose_splits, parse_fractions

log = logging.getLogger("lipseg_tf.pairs")

META_FILE = "pairs.json"
ASPECT_TOLERANCE = 0.01
# Warnings named one by one before the rest are summed up, so a half-made mask folder can't flood the log.
MAX_NAMED_WARNINGS = 10
FORMATS = ("png", "tfrecord")
DEFAULT_SHARDS = 16
# A smaller photo shows no eyes or lips to learn from (a 1x1 photo would be blown up into a flat square).
MIN_PHOTO_SIDE = 8
# Peak memory of one worker pairing a photo, per pixel of the size x size square: photo and mask resized,
# the AB pair, its PNG encoding. Measured 20 (max RSS of process.py --size 2048 and 4096 --workers 1,
# less the interpreter's); 24 leaves a margin.
PAIR_BYTES_PER_PIXEL = 24


def _aspect(array: np.ndarray) -> float:
    return array.shape[1] / array.shape[0]


def _center_square(array: np.ndarray) -> np.ndarray:
    height, width = array.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return array[top:top + side, left:left + side]


def parse_crop(text: str) -> tuple[float, float, float]:
    """'0.2,0.36,0.6' -> (x0, y0, side): a square box of the photo, in fractions of its side."""
    try:
        x0, y0, side = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--crop: expected three numbers X0,Y0,SIDE like 0.2,0.36,0.6, got {text!r}") from None
    return check_crop((x0, y0, side))


def check_crop(crop: Sequence[float]) -> tuple[float, float, float]:
    """(x0, y0, side) checked: a box of positive side lying inside the photo (0..1 on both axes)."""
    x0, y0, side = (float(v) for v in crop)
    if not (side > 0 and 0 <= x0 and 0 <= y0 and x0 + side <= 1 + 1e-9 and y0 + side <= 1 + 1e-9):
        raise UserError(f"--crop {x0:g},{y0:g},{side:g}: expected a box inside the photo "
                        "(X0, Y0 >= 0, SIDE > 0, X0 + SIDE <= 1, Y0 + SIDE <= 1)")
    return x0, y0, side


def _crop_box(array: np.ndarray, crop: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    """The crop as a PIL resize box (left, top, right, bottom) in the pixels of a square array."""
    if crop is None:
        return None
    x0, y0, side = crop
    height, width = array.shape[:2]
    return x0 * width, y0 * height, (x0 + side) * width, (y0 + side) * height


def make_pair(image: np.ndarray, mask: np.ndarray, size: int = 256,
              crop: Sequence[float] | None = None) -> np.ndarray:
    """Photo (H, W, 3) and mask (h, w) or (h, w, 3), both uint8 -> AB image (size, 2*size, 3) uint8.

    The photo is resized with Lanczos antialiasing, the mask with nearest neighbour (no new label
    values). Non-square inputs are center-cropped to a square first. `crop` (x0, y0, side), fractions
    of that square's side, keeps only that box of photo and mask (process.py --crop): the same face
    parts at a higher resolution for the same network input. Raises UserError when photo and mask
    differ in aspect ratio by more than 1%.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a (H, W, 3) uint8 photo, got {image.shape} {image.dtype}")
    if mask.ndim == 2:
        mask = np.repeat(mask[..., None], 3, axis=-1)
    if mask.dtype != np.uint8 or mask.ndim != 3 or mask.shape[2] != 3:
        raise ValueError(f"expected a (H, W) or (H, W, 3) uint8 mask, got {mask.shape} {mask.dtype}")
    if abs(_aspect(image) / _aspect(mask) - 1) > ASPECT_TOLERANCE:
        raise UserError(f"photo is {image.shape[1]}x{image.shape[0]} but mask is {mask.shape[1]}x"
                        f"{mask.shape[0]} (expected the same aspect ratio)")
    if abs(_aspect(image) - 1) > ASPECT_TOLERANCE:
        image, mask = _center_square(image), _center_square(mask)
    photo = Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS, box=_crop_box(image, crop))
    labels = Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST, box=_crop_box(mask, crop))
    return np.concatenate([np.asarray(photo), np.asarray(labels)], axis=1)


def split_pair(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AB image (H, 2W, C) -> (image, mask), its left and right halves."""
    width = np.shape(ab)[1]
    if width % 2:
        raise ValueError(f"an AB image has an even width, got {width}")
    return ab[:, :width // 2], ab[:, width // 2:]


def check_memory(size: int, workers: int, available: int | None = None) -> None:
    """UserError, before anything is allocated, when `workers` processes pairing at --size `size` would
    need more memory than the machine has available (parallel.available_memory_bytes, or `available`)."""
    available = parallel.available_memory_bytes() if available is None else available
    need = PAIR_BYTES_PER_PIXEL * size * size
    if available is None or need * workers <= available:
        return
    hint = (f"; with --workers {available // need} it would fit" if need <= available else
            f"; at most --size {math.isqrt(available // PAIR_BYTES_PER_PIXEL)} fits")
    raise UserError(f"--size {size}: pairing a photo at {size}x{size} takes about {_gb(need)} of memory a worker, "
                    f"{_gb(need * workers)} for {workers} worker(s), and {_gb(available)} is available{hint}")


def _gb(count: int) -> str:
    return f"{count / 2 ** 30:.3g} GB"


def _by_stem(paths: Iterable[Path], numeric: bool) -> tuple[dict, list[Path]]:
    """{stem (int when numeric): path} and the files whose stem is no id; UserError on a repeated stem."""
    found: dict = {}
    others = []
    for path in paths:
        if numeric and not path.stem.isdigit():
            others.append(path)
            continue
        key = int(path.stem) if numeric else path.stem
        if key in found:
            raise UserError(f"{path}: same name as {found[key].name} (expected one file per photo)")
        found[key] = path
    return found, others


def _celeba_photos(root: Path) -> dict[int, Path]:
    """{id: photo path} of a CelebAMask-HQ root, whatever image extension the photos have."""
    ids = set(celebamask.find_image_ids(root))
    photos, _ = _by_stem(imageio.list_images(root / celebamask.IMAGE_DIR), numeric=True)
    return {image_id: path for image_id, path in sorted(photos.items()) if image_id in ids}


def _warn_named(problems: list[str], what: str) -> None:
    for message in problems[:MAX_NAMED_WARNINGS]:
        log.warning("%s", message)
    if len(problems) > MAX_NAMED_WARNINGS:
        log.warning("... and %d more %s", len(problems) - MAX_NAMED_WARNINGS, what)


def _pair_job(job: tuple, size: int, force: bool, crop=None, masks=None) -> tuple[Hashable, str, str]:
    """Write one AB pair unless up to date; returns (key, 'written'|'skipped'|'failed', message)."""
    key, photo_path, mask_path, output, stale = job
    output = Path(output)
    # A copy left in another split by an earlier run with another split would leak between splits.
    for path in stale:
        Path(path).unlink(missing_ok=True)
    try:
        if not force and is_up_to_date(output, [Path(photo_path), Path(mask_path)]):
            return key, "skipped", ""
        ab = _load_pair(photo_path, mask_path, size, crop, masks)
        imageio.save_image(output, ab)
        return key, "written", ""
    except UserError as err:
        # A stale pair left here would look up to date on the next run although its inputs are bad.
        output.unlink(missing_ok=True)
        return key, "failed", str(err)


def _load_pair(photo_path, mask_path, size: int, crop=None, masks=None):
    """The AB pair of a photo and its mask files; UserError naming both files when they don't fit, or
    naming the mask when it is not one of masks (parts, style): see check_mask_colors."""
    image = imageio.load_rgb(photo_path)
    if min(image.shape[:2]) < MIN_PHOTO_SIDE:
        raise UserError(f"{photo_path}: photo of {image.shape[1]}x{image.shape[0]} pixels, expected at least "
                        f"{MIN_PHOTO_SIDE} a side (a face photo)")
    mask = imageio.load_rgb(mask_path)
    try:
        ab = make_pair(image, mask, size, crop)
    except UserError as err:
        raise UserError(f"{photo_path} and {mask_path}: {err}") from None
    if masks is not None:
        check_mask_colors(mask_path, split_pair(ab)[1], *masks)
    return ab


def check_mask_colors(path, mask: np.ndarray, parts, style: str, source: str = "") -> float:
    """UserError naming path when more than MAX_OFF_PALETTE_SHARE of the RGB mask's part pixels are no
    colour of the (parts, style) palette; returns that share. source: where parts and style came from."""
    share, count, common = parts_lib.off_palette(mask, parts_lib.palette(parts, style))
    if share > parts_lib.MAX_OFF_PALETTE_SHARE:
        raise UserError(f"{path}: {100 * share:.1f}% of the mask's part pixels ({count}) are no colour of "
                        f"{parts_lib.describe_palette(parts, style)}{source} (most common {common}); expected masks "
                        "of that style and those parts")
    return share


def _palette_source(masks_dir: Path) -> str:
    if (masks_dir / MASKS_META_FILE).is_file():
        return f" ({masks_dir / MASKS_META_FILE})"
    return " (--style and --parts: no masks.json)"


def _record_job(job: tuple, size: int, crop=None, masks=None) -> tuple[Hashable, str, str, bytes]:
    """One AB pair encoded as PNG, for a TFRecord: (key, 'written'|'failed', message, PNG bytes)."""
    key, photo_path, mask_path = job
    try:
        ab = _load_pair(photo_path, mask_path, size, crop, masks)
    except UserError as err:
        return key, "failed", str(err), b""
    return key, "written", "", imageio.encode_image(ab)   # the bytes imageio.save_image writes to a .png


def _write_records(out_dir: Path, jobs: list[tuple], splits: dict, size: int, crop, shards: int,
                   workers: int | None, masks=None) -> tuple[list[tuple[Hashable, str, str]], dict]:
    """Stream every pair into its split's TFRecord shards; returns ((key, status, message) per pair,
    {split: shards})."""
    from lipseg_tf.prep import records  # TensorFlow is imported only for this format

    ordered = sorted(jobs, key=lambda job: (SPLITS.index(splits[job[0]]), job[0]))
    stream = parallel.imap_progress(functools.partial(_record_job, size=size, crop=crop, masks=masks), ordered,
                                    workers=workers, desc="records")
    results, shard_counts = [], {}
    for name in SPLITS:
        split_jobs = sum(1 for job in ordered if splits[job[0]] == name)

        def split_records(n=split_jobs):
            for _ in range(n):
                key, status, message, ab_png = next(stream)
                results.append((key, status, message))
                if status == "written":
                    yield records.serialize(str(key), ab_png)

        shard_counts[name] = len(records.write_split(out_dir, name, split_records(), split_jobs, shards))
    return results, shard_counts


def _write_pngs(out_dir: Path, jobs: list[tuple], splits: dict, size: int, crop, force: bool,
                workers: int | None, masks=None) -> list[tuple[Hashable, str, str]]:
    """Write `<out>/<split>/<id>.png` for every job (key, photo, mask) unless up to date; returns
    (key, status, message) per pair."""
    for name in SPLITS:
        (out_dir / name).mkdir(parents=True, exist_ok=True)
    pair_jobs = [(key, photo, mask, str(out_dir / splits[key] / f"{key}.png"),
                  [str(out_dir / other / f"{key}.png") for other in SPLITS if other != splits[key]])
                 for key, photo, mask in jobs]
    job = functools.partial(_pair_job, size=size, force=force, crop=crop, masks=masks)
    return parallel.map_progress(job, pair_jobs, workers=workers, desc="pairs")


def _pair_meta(masks_dir: Path, parts: Sequence[str] | None, style: str | None) -> dict:
    """The masks' meta: MASKS/masks.json when there, else from --parts/--style (defaults: color, lips+eyes)."""
    meta_path = masks_dir / MASKS_META_FILE
    meta = read_meta(meta_path)
    if meta is None:
        log.info("no %s: masks taken as style %s with parts %s", meta_path, style or "color",
                 ",".join(parts or DEFAULT_PARTS))
        return mask_meta(masks_dir, parts or DEFAULT_PARTS, style or "color")
    if meta.pop("complete", True) is False:
        log.warning("%s: g_mask.py did not finish writing these masks; run it again for the rest", meta_path)
    parse_parts(meta.get("parts", DEFAULT_PARTS), f"{meta_path}: parts")   # a hand-edited one: named
    check_style(meta.get("style", "color"), f"{meta_path}: style")
    if parts is not None and list(parts) != meta.get("parts"):
        raise UserError(f"--parts {','.join(parts)} disagrees with {meta_path} "
                        f"(parts {','.join(map(str, meta.get('parts') or []))}); leave --parts out")
    if style is not None and style != meta.get("style"):
        raise UserError(f"--style {style} disagrees with {meta_path} (style {meta.get('style')}); "
                        "leave --style out")
    return meta


def _own_outputs(out_dir: Path) -> list[Path]:
    """The files in out_dir named as process.py names its outputs: `<split>/*.png` and the shards."""
    if not out_dir.is_dir():
        return []
    own = [p for name in SPLITS for p in (out_dir / name).glob("*.png")]
    return own + [p for name in SPLITS for p in out_dir.glob(f"{name}-[0-9][0-9][0-9][0-9][0-9]-of-*.tfrecord")]


def _claim_pairs_folder(out_dir: Path, settings: dict) -> bool:
    """Make out_dir process.py's own before any pair is written: pairs.json with the settings, marked
    incomplete until the run ends, so a restart trusts the pairs finished so far. Pairs of other settings
    are deleted first. Returns True when every pair must be rewritten."""
    meta_path = out_dir / META_FILE
    folders.make_output_dir(out_dir, "--out-dir")
    folders.claim_folder(out_dir, META_FILE, _own_outputs(out_dir), "process.py", keys=("size", "parts"))
    old_meta = read_meta(meta_path)
    keys = ("size", "parts", "style", "crop", "format")
    old = {k: (old_meta or {}).get(k, "png" if k == "format" else None) for k in keys}
    changed = old_meta is not None and old != {k: settings.get(k) for k in keys}
    if changed:
        log.info("size/parts/style/crop/format differ from %s: rewriting every pair", meta_path)
        # Pairs of the old settings outside this run (--limit) would pass for the new ones.
        for stale in _own_outputs(out_dir):
            stale.unlink()
    imageio.write_text(meta_path, json.dumps({**settings, "complete": False}, indent=2) + "\n")
    return changed


def run_process(out_dir: str | Path, masks_dir: str | Path, *, data_dir: str | Path | None = None,
                images_dir: str | Path | None = None, size: int = 256, partition: str | None = None,
                split: str | None = None, seed: int | None = None, workers: int | None = None,
                limit: int | None = None, force: bool = False, parts: Sequence[str] | None = None,
                style: str | None = None, output_format: str = "png", shards: int | None = None,
                crop: Sequence[float] | None = None) -> dict:
    """Write `<out_dir>/<split>/<id>.png` AB pairs and `<out_dir>/pairs.json`.

    output_format 'tfrecord' writes `<out_dir>/<split>-NNNNN-of-NNNNN.tfrecord` instead, `shards` per
    split (default 16, fewer for a smaller split), every run afresh. crop: (x0, y0, side), the box of
    each photo kept (make_pair), recorded in pairs.json as "crop".

    Give exactly one of data_dir (a CelebAMask-HQ root) or images_dir (a plain photo folder). split:
    'train,val,test' fractions; None means the official split when data_dir has the mapping file,
    else 0.8,0.1,0.1. Returns counts: written, skipped (up to date), failed (unreadable, too small, listed
    ambiguously in the mapping file), missing_mask (photos without a mask), unmatched_masks (masks without
    a photo), splits {split: pairs a trainer will read} and, for TFRecords, shards {split: shards}.
    Raises UserError for problems of the whole run.
    """
    if (data_dir is None) == (images_dir is None):
        raise UserError("give either --data-dir (CelebAMask-HQ) or --images (a photo folder), not both")
    if size < 1:
        raise UserError(f"--size: expected a number >= 1, got {size}")
    if output_format not in FORMATS:
        raise UserError(f"--format: unknown format {output_format!r}, valid: {', '.join(FORMATS)}")
    if shards is not None and output_format != "tfrecord":
        raise UserError(f"--shards {shards}: only with --format tfrecord (PNG pairs are one file each)")
    if shards is not None and shards < 1:
        raise UserError(f"--shards: expected a number >= 1, got {shards}")
    out_dir, masks_dir = Path(out_dir), Path(masks_dir)
    if parts is not None:
        parts = parse_parts(parts)
    if style is not None and style not in MASK_STYLES:
        raise UserError(f"--style: unknown style {style!r}, valid: {', '.join(MASK_STYLES)}")
    fractions = parse_fractions(split) if split is not None else None
    crop = check_crop(crop) if crop is not None else None
    folders.check_apart(("--out-dir", out_dir), {"--data-dir": data_dir, "--images": images_dir,
                                                 "--masks": masks_dir, "--partition": partition})

    numeric = data_dir is not None
    if numeric:
        data_dir = Path(data_dir)
        photos = _celeba_photos(data_dir)
    else:
        photos, _ = _by_stem(imageio.list_images(images_dir), numeric=False)
    mask_files, odd_masks = _by_stem(imageio.list_images(masks_dir), numeric)
    unmatched = len(odd_masks) + sum(1 for key in mask_files if key not in photos)
    if unmatched:
        log.info("%d masks in %s have no photo: ignored", unmatched, masks_dir)
    all_keys = sorted(photos)
    keys = all_keys[:limit] if limit is not None else all_keys
    splits, split_failures = choose_splits(keys, all_keys, data_dir if numeric else None, partition,
                                            fractions, seed)
    check_memory(size, parallel.worker_count(workers, len(keys)))
    settings = {**_pair_meta(masks_dir, parts, style), "size": size, "format": output_format}
    if crop is not None:
        settings["crop"] = list(crop)
    force = _claim_pairs_folder(out_dir, settings) or force
    # Every mask is checked against the palette it is read with (the masks' masks.json, else --style/--parts).
    masks = (tuple(settings["parts"]), settings["style"], _palette_source(masks_dir))

    missing = [f"{photos[key]}: no mask {key}.* in {masks_dir}, skipped" for key in keys
               if key not in mask_files]
    _warn_named(missing, "photos without a mask")
    for key in keys:
        if key not in mask_files or key in split_failures:  # a pair from an earlier run would outlive it
            for name in SPLITS:
                (out_dir / name / f"{key}.png").unlink(missing_ok=True)
    jobs = [(key, str(photos[key]), str(mask_files[key])) for key in keys
            if key in mask_files and key not in split_failures]
    if output_format == "tfrecord":
        results, shard_counts = _write_records(out_dir, jobs, splits, size, crop, shards or DEFAULT_SHARDS,
                                               workers, masks)
    else:
        results = _write_pngs(out_dir, jobs, splits, size, crop, force, workers, masks)
    return _finish(out_dir, settings, splits, results, list(split_failures.values()), missing, unmatched,
                   shard_counts if output_format == "tfrecord" else None)


def _finish(out_dir: Path, settings: dict, splits: dict, results: list, split_failures: list[str],
            missing: list[str], unmatched: int, shard_counts: dict | None) -> dict:
    """Count the results, name the failures, write the complete pairs.json and log the summary."""
    counts = {"written": 0, "skipped": 0, "failed": len(split_failures), "missing_mask": len(missing),
              "unmatched_masks": unmatched}
    failures = list(split_failures)
    for key, status, message in results:
        counts[status] += 1
        if status == "failed":
            failures.append(message)
    _warn_named(failures, "unreadable photos or masks")
    if shard_counts is None:
        # What the folders hold, pairs of photos beyond --limit included: what a trainer will read.
        counts["splits"] = {name: sum(1 for p in (out_dir / name).glob("*.png") if not p.name.startswith("."))
                            for name in SPLITS}
        meta = {**settings, "splits": counts["splits"]}
        del meta["format"]  # PNG pairs.json as it always was
        where = "(train {}, val {}, test {})".format(*counts["splits"].values())
    else:
        written = [splits[key] for key, status, _ in results if status == "written"]
        counts["splits"] = {name: written.count(name) for name in SPLITS}
        counts["shards"] = shard_counts
        meta = {**settings, "splits": counts["splits"], "shards": shard_counts}
        where = "in TFRecord shards (train {} in {} shards, val {} in {}, test {} in {})".format(
            *(n for name in SPLITS for n in (counts["splits"][name], shard_counts[name])))
    imageio.write_text(out_dir / META_FILE, json.dumps({**meta, "complete": True}, indent=2) + "\n")
    log.info("wrote %d pairs, skipped %d up to date, %d failed, %d photos without a mask -> %s %s",
             counts["written"], counts["skipped"], counts["failed"], counts["missing_mask"], out_dir, where)
    return counts


def pairs_meta_file(input_dir: str | Path) -> Path | None:
    """The pairs.json read_pairs_meta reads (beside the split folders, or in the folder itself), if any."""
    folder = Path(input_dir)
    return next((c for c in (folder / META_FILE, folder.parent / META_FILE) if c.is_file()), None)


def read_pairs_meta(input_dir: str | Path) -> dict | None:
    """pairs.json written by process.py beside the split folders (or in the folder itself), if any;
    UserError naming it when it is not a JSON object with fields of the expected types."""
    folder = Path(input_dir)
    for candidate in (folder / META_FILE, folder.parent / META_FILE):
        meta = read_meta(candidate)
        if meta is not None:
            return meta
    return None
