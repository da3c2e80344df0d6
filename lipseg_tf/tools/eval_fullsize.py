"""Score predict.py's full-size masks on a CelebAMask-HQ split, beside the crop-size masks test mode scores.

    python -m lipseg_tf.tools.eval_fullsize --model export/unet --data-dir CelebAMask-HQ --masks masks \\
        --split test --out eval/unet-test [--detect [--detector mtcnn]] [--tta flip] [--limit N]

For every photo of the split (the official split of the mapping file, as process.py assigns it) that
has a g_mask.py mask, predict.py's segment_photo segments it (by default --no-detect: CelebA-HQ photos
are aligned, so the model sees the photo's crop box; --detect finds (--detector, as predict.py's:
blazeface or mtcnn) and aligns the faces as for any photo) and two scores are counted, each from one
confusion count over the split (train/metrics.py):

    full_size  the mask pasted back at the photo's size (probabilities resampled, then argmax) against
               g_mask.py's mask brought to the photo's size by nearest neighbour (1024 px photos, 512 px
               annotations: each annotation pixel counts four times)
    crop_size  the model's labels at its input size against the mask looked up at the centres of the
               crop's pixels (nearest neighbour): what test mode scores on process.py's pairs

Writes <out>/metrics.json: {"full_size": metrics, "crop_size": metrics, "model", "data", "split",
"detect", "tta", "photos", "photos_without_face"}, each metrics as test mode's metrics.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from lipseg_tf.cli.common import positive_int, run, setup_logging
from lipseg_tf.errors import UserError
from lipseg_tf.prep import celebamask
from lipseg_tf.prep.imageio import load_gray, load_rgb, write_text
from lipseg_tf.prep.masks import META_FILE as MASKS_META_FILE
from lipseg_tf.prep.masks import read_meta
from lipseg_tf.serve import align
from lipseg_tf.serve.detect import DEFAULT_DETECTOR, DETECTORS, make_detector
from lipseg_tf.serve.predict import TTA_CHOICES, Model, segment_photo
from lipseg_tf.train import metrics

log = logging.getLogger("lipseg_tf")

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def decode_mask(mask: np.ndarray, meta: dict) -> np.ndarray:
    """A g_mask.py mask image -> class ids (H, W) uint8, by its masks.json style: colour masks to the
    nearest palette colour, binary masks by threshold, index masks as they are."""
    style = meta.get("style")
    if style == "index":
        return np.asarray(mask if mask.ndim == 2 else mask[..., 0], np.uint8)
    if style == "binary":
        return (np.asarray(mask if mask.ndim == 2 else mask[..., 0]) >= 128).astype(np.uint8)
    if style == "color":
        palette = np.asarray(meta["palette"], np.int32)
        distance = ((mask[..., None, :].astype(np.int32) - palette) ** 2).sum(-1)
        return distance.argmin(-1).astype(np.uint8)
    raise UserError(f"masks.json: unknown style {style!r}, valid: color, binary, index")


def split_photos(data_dir: Path, masks_dir: Path, split: str, partition: str | None = None,
                 limit: int | None = None) -> list[tuple[int, Path, Path]]:
    """(id, photo, mask) of the split's photos that have a mask, by id; the split is process.py's."""
    ids = celebamask.find_image_ids(data_dir)
    splits = celebamask.official_splits(data_dir, ids, partition)
    found = []
    for image_id in ids:
        if splits[image_id] != split:
            continue
        mask = masks_dir / f"{image_id}.png"
        photo = next((p for p in (data_dir / celebamask.IMAGE_DIR / f"{image_id}{s}" for s in PHOTO_SUFFIXES)
                      if p.is_file()), None)
        if mask.is_file() and photo is not None:
            found.append((image_id, photo, mask))
    if not found:
        raise UserError(f"{masks_dir}: no masks of {split} photos of {data_dir} (expected g_mask.py's <id>.png)")
    return found[:limit] if limit is not None else found


def crop_targets(target: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The true labels (photo size, H x W) at the centres of a size x size crop's pixels; background
    where a centre falls outside the photo."""
    height, width = target.shape
    centres = np.stack(np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5), axis=-1).reshape(-1, 2)
    points = align.apply(align.invert(matrix), centres)
    cols, rows = np.floor(points[:, 0]).astype(np.int64), np.floor(points[:, 1]).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    labels = np.zeros(size * size, np.uint8)
    labels[inside] = target[rows[inside], cols[inside]]
    return labels.reshape(size, size)


def evaluate_fullsize(model: Model, data_dir: str | Path, masks_dir: str | Path, split: str = "test",
                      detector=None, partition: str | None = None,
                      limit: int | None = None) -> dict:
    """Full-size and crop-size metrics of `model` on a split (the module's docstring says what each is)."""
    from tqdm import tqdm

    data_dir, masks_dir = Path(data_dir), Path(masks_dir)
    meta = read_meta(masks_dir / MASKS_META_FILE)
    if meta is None:
        raise UserError(f"{masks_dir / MASKS_META_FILE}: not found (expected g_mask.py's output folder)")
    if tuple(meta.get("classes", ())) != model.classes:
        raise UserError(f"{masks_dir / MASKS_META_FILE}: classes {','.join(meta.get('classes', []))} differ from "
                        f"the model's {','.join(model.classes)}")
    photos = split_photos(data_dir, masks_dir, split, partition, limit)
    num_classes = len(model.classes)
    full = np.zeros((num_classes, num_classes), np.int64)
    crop = np.zeros_like(full)
    without_face = []
    for image_id, photo_path, mask_path in tqdm(photos, desc=f"{split} photos", unit="photo", disable=None):
        photo = load_rgb(photo_path)
        mask = load_rgb(mask_path) if meta.get("style") == "color" else load_gray(mask_path)
        height, width = photo.shape[:2]
        target = Image.fromarray(decode_mask(mask, meta)).resize((width, height), Image.Resampling.NEAREST)
        target = np.asarray(target)
        result = segment_photo(photo, model, detector)
        full += metrics.confusion_matrix(target, result.labels, num_classes)
        if not result.faces:
            without_face.append(image_id)
        for matrix, crop_labels in zip(result.transforms, result.crop_labels if result.faces else []):
            crop += metrics.confusion_matrix(crop_targets(target, matrix, model.image_size), crop_labels,
                                             num_classes)
    data = f"{data_dir} ({split} split, {len(photos)} photos)"
    if meta.get("synthetic"):
        data += ": synthetic sample faces (lipseg_tf.prep.sample), not real photos"
    return {"full_size": metrics.summary(full, model.classes, len(photos)),
            "crop_size": metrics.summary(crop, model.classes, len(photos) - len(without_face)),
            "model": str(model.path), "data": data, "split": split, "detect": detector is not None,
            "detector": None if detector is None else getattr(detector, "name", type(detector).__name__),
            "tta": model.tta, "photos": len(photos), "photos_without_face": without_face}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lipseg_tf.tools.eval_fullsize",
        description="Score predict.py's full-size masks (and the crop-size ones) on a CelebAMask-HQ split.",
        epilog="Writes OUT/metrics.json with full_size and crop_size metrics (per part F1 and IoU, dataset level).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="an exported SavedModel folder (--mode export --output_dir)")
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", required=True,
                        help="CelebAMask-HQ root (CelebA-HQ-img/, the mapping file)")
    parser.add_argument("--masks", required=True, help="g_mask.py's output folder (<id>.png, masks.json)")
    parser.add_argument("--split", choices=celebamask.SPLITS, default="test",
                        help="which split of the mapping file's official split to score")
    parser.add_argument("--partition", default=None,
                        help="CelebA's list_eval_partition.txt, as for process.py (default: the mapping file's "
                             "CelebA numbers decide the split)")
    parser.add_argument("--out", required=True, help="folder for metrics.json (created)")
    detect = parser.add_mutually_exclusive_group()
    detect.add_argument("--detect", dest="detect", action="store_true",
                        help="find and align faces with --detector, as predict.py does for any photo")
    detect.add_argument("--no-detect", "--no_detect", dest="detect", action="store_false",
                        help="the photos are aligned: the model sees each photo's crop box (the default)")
    parser.add_argument("--tta", choices=TTA_CHOICES, default="none",
                        help="flip: average with the mirror image's probabilities (left/right swapped)")
    parser.add_argument("--min-face", "--min_face", dest="min_face", type=int, default=40,
                        help="with --detect: smallest face to keep, in pixels")
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                        help="with --detect: the face detector (serve/detect.py), as predict.py's")
    parser.add_argument("--min-confidence", "--min_confidence", dest="min_confidence", type=float, default=None,
                        help="with --detect: smallest detector confidence (default: the detector's own)")
    parser.add_argument("--limit", type=positive_int, default=None, help="score only the first N photos of the split")
    parser.add_argument("--verbose", action="store_true", help="debug logging, TensorFlow messages")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, tensorflow=True)
    model = Model(args.model, tta=args.tta)
    detector = make_detector(args.detector, args.min_face, args.min_confidence) if args.detect else None
    result = evaluate_fullsize(model, args.data_dir, args.masks, args.split, detector, args.partition, args.limit)
    out = Path(args.out)
    write_text(out / metrics.METRICS_FILE, json.dumps(result, indent=2) + "\n")
    for key in ("full_size", "crop_size"):
        print(f"{key} on {result['data']}\n{metrics.format_table(result[key])}\n")
    log.info("metrics in %s", out / metrics.METRICS_FILE)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0, or 1 after a one-line error."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
