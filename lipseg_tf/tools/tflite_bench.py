"""Size and CPU latency of exported segmenters, .tflite files and SavedModels (serve/tflite.py).

    python -m lipseg_tf.tools.tflite_bench EXPORT_DIR [EXPORT_DIR ...] [--runs 50] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from lipseg_tf.cli.common import run, setup_logging
from lipseg_tf.serve.tflite import benchmark


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lipseg_tf.tools.tflite_bench",
        description="Size and CPU latency of exported segmenters (.tflite and SavedModel).")
    parser.add_argument("paths", nargs="+",
                        help=".tflite files, or export folders (their .tflite files and SavedModel)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per model, after one warm-up run")
    parser.add_argument("--threads", type=int, default=None, help="TFLite interpreter threads (default: its own)")
    args = parser.parse_args(argv)
    rows = benchmark(args.paths, args.runs, args.threads)
    print(f"{'model':60s} {'kind':10s} {'size':>10s} {'crop':>5s} {'median ms':>10s} {'mean ms':>8s}")
    for row in rows:
        print(f"{row['model']:60s} {row['kind']:10s} {row['bytes'] / 1024:8.0f} K {row['image_size']:5d} "
              f"{row['ms_median']:10.2f} {row['ms_mean']:8.2f}")
    return 0


if __name__ == "__main__":
    setup_logging(tensorflow=True)
    sys.exit(run(main))
