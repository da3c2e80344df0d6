"""print.py: photo | target | prediction | overlay grids of a test run (evaluate/grids.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from lipseg_tf.cli.common import run, setup_logging
from lipseg_tf.errors import UserError
from lipseg_tf.evaluate.grids import is_own_grid, make_grid
from lipseg_tf.prep.folders import check_output_dir, check_output_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="print.py", description="Draw photo | target | prediction | overlay grids of a test run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--input_dir", "--input-dir", dest="input_dir", required=True,
                        help="output folder of a `--mode test` run of unet.py or pix2pix.py")
    parser.add_argument("--output", default=None,
                        help="PNG to write (default <input_dir>/grid.png). A PNG print.py wrote is replaced; "
                             "any other existing file is refused unless --overwrite; a link never followed")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output PNG that print.py did not write")
    parser.add_argument("--rows", type=int, default=6, help="number of images (rows)")
    parser.add_argument("--order", choices=["name", "best", "worst"], default="name",
                        help="which images: by name, or highest / lowest F1 first")
    parser.add_argument("--show", action=argparse.BooleanOptionalAction, default=None,
                        help="open a window (default: when a display exists)")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.rows < 1:
        raise UserError(f"--rows must be >= 1, got {args.rows}")
    show = args.show if args.show is not None else bool(os.environ.get("DISPLAY"))
    output = Path(args.output) if args.output else Path(args.input_dir) / "grid.png"
    _check_output(output, Path(args.input_dir), args.overwrite)
    make_grid(args.input_dir, output, args.rows, args.order, show)
    return 0


def _check_output(output: Path, test_dir: Path, overwrite: bool = False) -> None:
    """UserError unless output is a .png print.py may write: not a folder or a link, not under a file or in
    a read-only folder, not one of the test run's own files (its images/, labels/ and JSON are the input),
    and new or a grid print.py wrote (grids.is_own_grid), unless overwrite."""
    if output.suffix.lower() != ".png":
        raise UserError(f"--output {output}: expected a .png file name")
    if output.is_dir():
        raise UserError(f"--output {output}: a folder, expected a .png file name")
    check_output_path(output, "--output")
    check_output_dir(output.parent, "--output", link_ok=True)   # the file itself is no link
    if os.path.lexists(output) and not overwrite and not is_own_grid(output):
        raise UserError(f"--output {output}: already there, and print.py did not write it: expected a new "
                        "file name (or --overwrite to replace it)")
    inside = os.path.realpath(output)
    for input_part in ("images", "labels", "metrics.json", "per_image.json"):
        own = os.path.realpath(test_dir / input_part)
        if inside == own or inside.startswith(own + os.sep):
            raise UserError(f"--output {output} lies in the test run's {input_part} (an input): expected "
                            f"a file elsewhere, e.g. {test_dir / 'grid.png'}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of print.py: returns 0, or 1 after a one-line error."""
    setup_logging()
    return run(_main, argv)
