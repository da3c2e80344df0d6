"""process.py: photo + mask -> side-by-side AB training pairs in train/val/test folders (prep/pairs.py)."""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

from lipseg_tf.cli.common import import_tensorflow_quietly, positive_int, run, setup_logging
from lipseg_tf.prep import celebamask
from lipseg_tf.prep.pairs import DEFAULT_SHARDS, FORMATS, parse_crop, run_process
from lipseg_tf.prep.parts import CELEBAMASK_PARTS, DEFAULT_PARTS, MASK_STYLES, parse_parts

log = logging.getLogger("lipseg_tf.pairs")   # the logger of prep/pairs.py: its lines read the same


def build_parser() -> argparse.ArgumentParser:
    """The command line of process.py."""
    parser = argparse.ArgumentParser(
        prog="process.py",
        description="Put each photo and its mask side by side into one AB training image "
                    "(<out-dir>/{train,val,test}/<id>.png, size x 2*size, photo left, mask right) and "
                    "write <out-dir>/pairs.json (mask parts, style, palette, size, pairs per split).",
        epilog="Photos are resized with antialiasing, masks with nearest neighbour (no new label "
               "values). A non-square photo is center-cropped to a square, and its mask likewise. "
               "Split: the official CelebA split with --data-dir and its mapping file, else a seeded "
               "random --split (default 0.8,0.1,0.1, seed 0). "
               "Unreadable files and photos without a mask are skipped with a warning; the run goes "
               "on and exits with status 1 if any were. Up-to-date pairs are not rewritten. "
               "OUT is process.py's own once it holds its pairs.json: every {train,val,test}/*.png and "
               "{split}-NNNNN-of-*.tfrecord there is taken for one of its pairs, rewritten, and deleted "
               "when the settings change or its photo fails, so keep no file of your own named that way "
               "in OUT. A folder with such files but no pairs.json is refused.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", "--data_dir", dest="data_dir", metavar="ROOT",
                        help="CelebAMask-HQ root: photos in ROOT/CelebA-HQ-img/<id>.jpg; the official "
                             f"split comes from ROOT/{celebamask.MAPPING_FILE} when it is there")
    source.add_argument("--images", "--input-dir", "--input_dir", dest="images", metavar="DIR",
                        help="plain folder of photos, matched to masks by file name stem")
    parser.add_argument("--masks", "--mask-dir", "--mask_dir", dest="masks", required=True,
                        metavar="MASKDIR", help="folder of masks (g_mask.py's output: <id>.png and "
                                                "masks.json), matched to photos by file name stem")
    parser.add_argument("--out-dir", "--out_dir", "--output-dir", "--output_dir", dest="out_dir",
                        required=True, metavar="OUT", help="folder for train/, val/, test/ and pairs.json")
    parser.add_argument("--size", type=positive_int, default=256,
                        help="side of each half of an AB image in pixels (default: %(default)s)")
    parser.add_argument("--crop", type=parse_crop, default=None, metavar="X0,Y0,SIDE",
                        help="keep only this square box of each photo and its mask, in fractions of the "
                             "photo's side, e.g. 0.2,0.36,0.6 for the eyes and lips of an aligned CelebA-HQ "
                             "face (0.05 %% of their pixels fall outside): the parts at 1/SIDE times the "
                             "resolution for the same --size; recorded in pairs.json, and predict.py aligns "
                             "faces to it (default: the whole photo)")
    parser.add_argument("--partition", metavar="FILE", default=None,
                        help="CelebA's list_eval_partition.txt: split by it instead of the standard "
                             "image-number ranges (with --data-dir and its mapping file only)")
    parser.add_argument("--split", default=None, metavar="TRAIN,VAL,TEST",
                        help="random split fractions summing to 1, e.g. 0.8,0.1,0.1; overrides the "
                             "official split (default: official split when available, else 0.8,0.1,0.1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the random split, for a reproducible one (default: 0)")
    parser.add_argument("--parts", default=None,
                        help="without MASKDIR/masks.json: the parts the masks hold, in class order "
                             f"(default: {','.join(DEFAULT_PARTS)}; valid: {', '.join(CELEBAMASK_PARTS)})")
    parser.add_argument("--style", choices=MASK_STYLES, default=None,
                        help="without MASKDIR/masks.json: how the masks are drawn: color, binary or "
                             "index (default: color)")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="processes to use (default: every core; 1 runs in this process)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="only the first N photos, by name (for a quick try)")
    parser.add_argument("--force", action="store_true", help="rewrite every pair, even those up to date")
    parser.add_argument("--format", choices=FORMATS, default="png", dest="output_format",
                        help="png: one <split>/<id>.png per pair; tfrecord: sharded TFRecord files "
                             "<split>-NNNNN-of-NNNNN.tfrecord holding the same PNG bytes, for fast "
                             "streaming in training (default: %(default)s)")
    parser.add_argument("--shards", type=positive_int, default=None, metavar="N",
                        help=f"with --format tfrecord: shards per split (default: {DEFAULT_SHARDS}, fewer "
                             "for a smaller split); aim for 100-200 MB a shard")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.output_format == "tfrecord":
        import_tensorflow_quietly()  # the TFRecord writer's TensorFlow, without its start-up lines
    counts = run_process(args.out_dir, args.masks, data_dir=args.data_dir, images_dir=args.images,
                         size=args.size, partition=args.partition, split=args.split, seed=args.seed,
                         workers=args.workers, limit=args.limit, force=args.force,
                         parts=parse_parts(args.parts) if args.parts is not None else None,
                         style=args.style, output_format=args.output_format, shards=args.shards,
                         crop=args.crop)
    problems = counts["failed"] + counts["missing_mask"]
    if problems:
        log.error("%d photos got no pair: %d unreadable, %d without a mask (see the warnings above)",
                  problems, counts["failed"], counts["missing_mask"])
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of process.py: returns 0, or 1 after a one-line error or when any photo got no pair."""
    setup_logging()
    return run(_main, argv)
