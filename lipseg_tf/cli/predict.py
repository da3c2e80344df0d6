"""predict.py: lips and eyes in any photo, with an exported model (serve/predict.py does the work)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from lipseg_tf.cli.common import run, setup_logging
from lipseg_tf.errors import UserError
from lipseg_tf.prep.folders import check_apart
from lipseg_tf.prep.imageio import IMAGE_EXTENSIONS, list_images
from lipseg_tf.serve import align
from lipseg_tf.serve.predict import SUMMARY_FILE, FaceDetector, Model, check_output_dir, predict_files

log = logging.getLogger("lipseg_tf")


def _input_files(path: Path) -> list[Path]:
    if path.is_dir():
        return list_images(path)
    if not path.exists():
        raise UserError(f"{path}: not found (expected an image file or a folder of images)")
    return [path]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict.py",
        description="Segment lips and eyes in photos of any size: detect faces (MTCNN), align each to the "
                    "model's training framing, segment, and paste the masks back at the photo's size.",
        epilog="Example: %(prog)s --model export/unet --input photos/ --output masks/. Writes per photo "
               "<name>-mask.png (class ids), <name>-overlay.png and <name>.json, and summary.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="an exported SavedModel folder (unet.py / pix2pix.py --mode export --output_dir)")
    parser.add_argument("--input", required=True,
                        help=f"a photo or a folder of photos ({', '.join(IMAGE_EXTENSIONS)})")
    parser.add_argument("--output", required=True, help="folder for masks, overlays and JSON (created)")
    parser.add_argument("--min-face", "--min_face", dest="min_face", type=int, default=40,
                        help="smallest face to keep, in pixels (the detector box's longer side); photos are "
                             "resized by 20/min-face for detection (MTCNN finds faces from 20 px), so a larger "
                             "value is faster on big photos")
    parser.add_argument("--min-confidence", "--min_confidence", dest="min_confidence", type=float, default=0.9,
                        help="smallest detector confidence (0-1) to keep a face")
    parser.add_argument("--framing", choices=sorted(align.FRAMINGS), default=None,
                        help="where faces are put in the crop: as in lipseg_tf.prep.sample's synthetic faces or "
                             "in CelebA-HQ (default: the model's classes.json, else celebahq)")
    parser.add_argument("--no-detect", "--no_detect", dest="no_detect", action="store_true",
                        help="no face detection: each input already is an aligned face crop (a CelebA-HQ "
                             "image); the model sees the whole image")
    parser.add_argument("--verbose", action="store_true", help="debug logging (per-photo timings), TF messages")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.min_face < 1:
        raise UserError(f"--min-face: expected a positive number of pixels, got {args.min_face}")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise UserError(f"--min-confidence: expected a value from 0 to 1, got {args.min_confidence}")
    files = _input_files(Path(args.input))
    check_apart(("--output", args.output), {"--input": args.input, "--model": args.model})
    check_output_dir(Path(args.output), files)
    model = Model(args.model, args.framing)
    detector = None if args.no_detect else FaceDetector(args.min_face, args.min_confidence)
    summary = predict_files(files, model, detector, Path(args.output))
    mean = summary["mean_seconds"]
    log.info("%d photo(s), %d face(s); without a face: %d; skipped (unreadable): %d; mean per photo: %s",
             summary["photos"], summary["faces"], len(summary["photos_without_face"]), len(summary["skipped"]),
             ", ".join(f"{k} {v:.2f} s" for k, v in mean.items()) or "-")
    for path in summary["photos_without_face"]:
        log.info("no face found in %s", path)
    log.info("results in %s (%s)", args.output, SUMMARY_FILE)
    if summary["skipped"]:
        log.error("%d file(s) skipped: %s", len(summary["skipped"]),
                  ", ".join(s["file"] for s in summary["skipped"]))
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of predict.py: returns 0, or 1 after a one-line error or when a file was skipped."""
    return run(_main, argv)
