"""`make demo`: the whole pipeline on the built-in synthetic sample, script by script, at a CPU size.

Runs the same commands a user runs on CelebAMask-HQ (each printed before it runs), then prints both F1
tables and where the grids, metrics and SavedModels are. The data are synthetic faces: the scores show
that the pipeline learns, not how well it segments real photos. When the repository ships its
pretrained real-face model (lipseg_tf/pretrained/unet), the demo ends with predict.py's one-liner on
matplotlib's grace_hopper.jpg and prints where the overlay is.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from lipseg_tf.cli.common import run, setup_logging
from lipseg_tf.cli.predict import DEFAULT_MODEL
from lipseg_tf.errors import UserError
from lipseg_tf.train.metrics import METRICS_FILE, format_table

log = logging.getLogger("lipseg_tf")
REPO = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lipseg_tf.tools.demo", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="demo_out", help="folder for everything the demo writes")
    parser.add_argument("--count", type=int, default=600, help="synthetic faces to generate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample and of training")
    parser.add_argument("--size", type=int, default=128, help="pair and crop size (a power of two)")
    parser.add_argument("--unet-epochs", type=int, default=10, help="U-Net training epochs")
    parser.add_argument("--unet-ngf", type=int, default=8, help="U-Net first-stage filters")
    parser.add_argument("--pix2pix-epochs", type=int, default=8,
                        help="pix2pix training epochs (the learning rate decays to 0 over the last half)")
    parser.add_argument("--pix2pix-ngf", type=int, default=16, help="pix2pix generator/discriminator filters")
    return parser


def _run(step: str, script: str, *args, timings: dict) -> None:
    """Run one pipeline script as a user would; UserError if it fails."""
    command = [sys.executable, script, *map(str, args)]
    shown = " ".join(shlex.quote(c) for c in ["python", script, *map(str, args)])
    print(f"\n== {step}: {shown}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO)
    timings[step] = time.perf_counter() - start
    if result.returncode != 0:
        raise UserError(f"demo step '{step}' failed (exit {result.returncode}): {shown}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out).resolve()
    data, masks, pairs, runs = out / "sample", out / "masks", out / "pairs", out / "runs"
    timings: dict[str, float] = {}
    start = time.perf_counter()
    size = args.size
    _run("sample", "-m", "lipseg_tf.tools.sample", "--out", data, "--count", args.count, "--seed", args.seed,
         "--size", 2 * size, timings=timings)
    _run("g_mask", "g_mask.py", "--data-dir", data, "--out-dir", masks, timings=timings)
    _run("process", "process.py", "--data-dir", data, "--masks", masks, "--out-dir", pairs, "--size", size,
         timings=timings)
    common = ["--input_dir", pairs, "--crop_size", size, "--seed", args.seed]
    _run("unet train", "unet.py", "--mode", "train", "--output_dir", runs / "unet", *common,
         "--ngf", args.unet_ngf, "--batch_size", 8, "--lr", 3e-3, "--max_epochs", args.unet_epochs, "--jit",
         timings=timings)
    _run("unet test", "unet.py", "--mode", "test", "--checkpoint", runs / "unet", "--input_dir", pairs,
         "--output_dir", runs / "unet-test", timings=timings)
    _run("pix2pix train", "pix2pix.py", "--mode", "train", "--output_dir", runs / "pix2pix", *common,
         "--ngf", args.pix2pix_ngf, "--ndf", args.pix2pix_ngf, "--batch_size", 4, "--lr", 5e-4,
         "--l1_balance", 1, "--max_epochs", args.pix2pix_epochs, "--decay_epochs", args.pix2pix_epochs // 2,
         "--summary_freq", 20, timings=timings)
    _run("pix2pix test", "pix2pix.py", "--mode", "test", "--checkpoint", runs / "pix2pix", "--input_dir", pairs,
         "--output_dir", runs / "pix2pix-test", timings=timings)
    for model in ("unet", "pix2pix"):
        _run(f"{model} grid", "print.py", "--input_dir", runs / f"{model}-test", "--output",
             out / f"{model}-grid.png", "--rows", 6, "--no-show", timings=timings)
        _run(f"{model} export", f"{model}.py", "--mode", "export", "--checkpoint", runs / model, "--output_dir",
             out / "export" / model, timings=timings)
    overlay = _predict_with_pretrained(out / "pretrained", timings) if DEFAULT_MODEL.is_dir() else None
    total = time.perf_counter() - start

    print("\n" + "=" * 72)
    print("lipseg_tf demo on SYNTHETIC faces from lipseg_tf.prep.sample: these scores show that the pipeline")
    print("learns; they say nothing about accuracy on real photos.")
    for model in ("unet", "pix2pix"):
        metrics = json.loads((runs / f"{model}-test" / METRICS_FILE).read_text())
        print(f"\n{model} (test split, {args.size} px):\n{format_table(metrics)}")
    print("\nstep times: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    print(f"total: {total:.0f} s")
    print(f"\ngrids:        {out / 'unet-grid.png'}  {out / 'pix2pix-grid.png'}")
    print(f"metrics:      {runs / 'unet-test' / METRICS_FILE}  {runs / 'pix2pix-test' / METRICS_FILE}")
    print(f"SavedModels:  {out / 'export' / 'unet'}  {out / 'export' / 'pix2pix'}")
    print(f"TensorBoard:  tensorboard --logdir {runs}")
    if overlay is not None:
        print(f"\nThe pretrained real-face model ({DEFAULT_MODEL.relative_to(REPO)}) on matplotlib's grace_hopper.jpg:")
        print(f"overlay:      {overlay}")
    return 0


def _predict_with_pretrained(out: Path, timings: dict) -> Path:
    """predict.py with no --model (the pretrained one) on matplotlib's sample photo; the overlay's path."""
    from matplotlib import cbook

    photo = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    _run("pretrained predict", "predict.py", "--input", photo, "--output", out, "--save", "mask,json,overlay",
         timings=timings)
    return out / f"{photo.stem}-overlay.png"


if __name__ == "__main__":
    setup_logging()
    sys.exit(run(main))
