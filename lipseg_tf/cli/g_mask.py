"""g_mask.py: CelebAMask-HQ's per-part annotation files -> one mask image per photo (prep/masks.py)."""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

from lipseg_tf.cli.common import positive_int, run, setup_logging
from lipseg_tf.prep.masks import run_g_mask
from lipseg_tf.prep.parts import CELEBAMASK_PARTS, DEFAULT_PARTS, MASK_STYLES, parse_parts

log = logging.getLogger("lipseg_tf.masks")   # the logger of prep/masks.py: its lines read the same


def build_parser() -> argparse.ArgumentParser:
    """The command line of g_mask.py."""
    parser = argparse.ArgumentParser(
        prog="g_mask.py",
        description="Merge CelebAMask-HQ's per-part annotation files into one mask image per photo, "
                    "<out-dir>/<id>.png, at the annotations' size, plus <out-dir>/masks.json describing "
                    "the classes and colours for process.py and the trainers.",
        epilog="Overlap: parts are painted in --parts order; a later part overwrites an earlier one "
               "(CelebAMask-HQ's own rule). A missing part file means the part is hidden. A photo whose "
               "part files are unreadable or of different sizes is skipped with a warning; the run "
               "goes on and exits with status 1 if any photo failed. Up-to-date masks are not rewritten. "
               "OUT is g_mask.py's own once it holds its masks.json: every <id>.png there (a number, "
               ".png) is taken for one of its masks, rewritten by --force and deleted when --parts or "
               "--style change or its photo fails, so keep no file of your own named that way in OUT. "
               "A folder with such files but no masks.json is refused.")
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", required=True, metavar="ROOT",
                        help="CelebAMask-HQ root holding CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/")
    parser.add_argument("--out-dir", "--out_dir", dest="out_dir", required=True, metavar="OUT",
                        help="folder for the masks <id>.png and masks.json (created if needed)")
    parser.add_argument("--parts", default=",".join(DEFAULT_PARTS),
                        help="comma-separated parts, in painting order; class ids follow this order "
                             f"(default: %(default)s; valid: {', '.join(CELEBAMASK_PARTS)})")
    parser.add_argument("--style", choices=MASK_STYLES, default="color",
                        help="color: RGB, each part in its own colour; binary: white union of the parts "
                             "on black (the original project's masks); index: grey value = class id, "
                             "0 background then the parts in --parts order (default: %(default)s)")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="processes to use (default: every core; 1 runs in this process)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="only the first N photos, by id (for a quick try)")
    parser.add_argument("--force", action="store_true",
                        help="rewrite every mask, even those up to date (every <id>.png in OUT, "
                             "which must be g_mask.py's own: it holds masks.json)")
    parser.add_argument("--fix-sides", "--fix_sides", dest="fix_sides", action="store_true",
                        help="relabel left/right parts (eyes, brows, ears) by position where an annotation "
                             "has them the wrong way round (l_ is the person's left: the image's right). "
                             "Without it such faces are only counted and warned about")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    counts = run_g_mask(args.data_dir, args.out_dir, parse_parts(args.parts), args.style,
                        workers=args.workers, limit=args.limit, force=args.force,
                        fix_sides=args.fix_sides)
    if counts["failed"]:
        log.error("%d of %d photos failed (see the warnings above)", counts["failed"],
                  counts["written"] + counts["skipped"] + counts["failed"])
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of g_mask.py: returns 0, or 1 after a one-line error or when any photo failed."""
    setup_logging()
    return run(_main, argv)
