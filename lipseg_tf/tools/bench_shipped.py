"""Time per face of the shipped models, side by side: python -m lipseg_tf.tools.bench_shipped.

Each model (lipseg_tf/pretrained: fast, accurate, small) segments the same aligned crops, one face per call as
predict.py's default batch does for one-face photos, in interleaved rounds so that a load on the machine
falls on both alike. Prints seconds per face (the median over rounds, each the mean over --faces faces)
and the ratio to the first model. Model loading and the first call (graph tracing) are excluded.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Sequence

import numpy as np

from lipseg_tf.cli.common import positive_int, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lipseg_tf.tools.bench_shipped", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="fast,accurate,small", help="shipped model names or export folders")
    parser.add_argument("--faces", type=positive_int, default=20, help="faces per round")
    parser.add_argument("--rounds", type=positive_int, default=5, help="interleaved rounds")
    parser.add_argument("--verbose", action="store_true", help="debug logging, TensorFlow's messages")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, tensorflow=True)
    from lipseg_tf.serve.api import model_folder
    from lipseg_tf.serve.predict import Model

    names = [m for m in args.models.split(",") if m]
    models = {name: Model(model_folder(name)) for name in names}
    rng = np.random.default_rng(0)
    crops = {name: rng.integers(0, 256, (args.faces, m.image_size, m.image_size, 3), dtype=np.uint8)
             for name, m in models.items()}
    for name, model in models.items():
        model(crops[name][:1])  # traced once, outside the timing
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for face in crops[name]:
                model(face[None])
            times[name].append((time.perf_counter() - start) / args.faces)
    first = statistics.median(times[names[0]])
    print(f"{'model':<12} {'input':>6} {'tta':>5} {'s/face':>8} {'ratio':>6}")
    for name, model in models.items():
        median = statistics.median(times[name])
        print(f"{name:<12} {model.image_size:>6} {model.tta or '-':>5} {median:8.4f} {median / first:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
