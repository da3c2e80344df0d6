"""The built-in synthetic face dataset in the CelebAMask-HQ layout (drawn by prep/sample.py).

    python -m lipseg_tf.tools.sample --out DIR --count N --seed S [--size 512] [--workers K]
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from lipseg_tf.cli.common import run, setup_logging
from lipseg_tf.prep.sample import generate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lipseg_tf.tools.sample",
        description="Write a synthetic face dataset (drawn faces, not real people) in the exact CelebAMask-HQ "
                    "layout: CelebA-HQ-img/<id>.jpg, CelebAMask-HQ-mask-anno/<id//2000>/<id:05d>_<part>.png "
                    "(512x512, 0/255) and CelebA-HQ-to-CelebA-mapping.txt (about 80/10/10 train/val/test).")
    parser.add_argument("--out", required=True, help="folder to write the dataset into (created if missing)")
    parser.add_argument("--count", type=int, required=True, help="number of faces, ids 0..count-1")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed (default 0); the same seed gives byte-identical files, and a bigger "
                             "--count gives the same first faces")
    parser.add_argument("--size", type=int, default=512,
                        help="photo width and height in pixels (default 512); annotations are always 512x512, "
                             "like the real dataset")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes to use (default: every core; 1 runs in this process)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.verbose:
        setup_logging(verbose=True)
    generate(args.out, args.count, args.seed, size=args.size, workers=args.workers)
    return 0


if __name__ == "__main__":
    setup_logging()
    sys.exit(run(main))
