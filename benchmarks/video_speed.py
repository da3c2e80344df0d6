"""lipseg_tf's video path and MediaPipe FaceMesh in video mode on the same clip, in one run.

    benchmarks/video_speed.sh                          # fast and small, each with and without --tta off
    benchmarks/video_speed.sh --systems small:off --rounds 3
    benchmarks/video_speed.sh --no-mediapipe           # lipseg_tf alone

The clips are tools/bench_video.py's (lipseg_tf.prep.sample.clip: **synthetic data**, one rendered face
of the built-in sample; 640 x 480): a moving, turning face for fps and F1, and a still face with sensor
noise for flicker. In each of --rounds rounds every system runs the moving clip once, in turn (the order
reversed every other round, so that the machine's changing load weighs on all alike):

- lipseg_tf (--systems: shipped model names or export folders, each optionally ":off" for --tta off):
  `Segmenter.video` over the frames in memory, tracked and smoothed as predict.py does (detection
  every 15 frames, track.DETECT_EVERY; smoothing 0.5), labels at the frame's size for every frame;
- MediaPipe FaceMesh 0.10.21, `static_image_mode=False`, refined landmarks, one face
  (benchmarks/mediapipe_video.py in .venv-mediapipe, a subprocess a round, its start-up not timed):
  the landmarks alone, and again with its eye loops and lip rings filled into a mask at the frame's size.

Model loading and each system's first frame are left out. Prints each system's fps (the median of the
rounds, and their range), its ratio to FaceMesh's (landmarks alone, and filled), F1 on the moving face
and flicker on the still one (tools/bench_video.py's measures), and writes --json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.speed import MEDIAPIPE_PYTHON, cpu_seconds, run_in_mediapipe_env

DEFAULT_SYSTEMS = "fast,fast:off,small,small:off"


def parse_system(spec: str) -> tuple[str, str | None, bool]:
    """'small:off' -> ('small', 'off', True); 'fast' -> ('fast', None, True); 'small:both' -> ('small',
    None, False): both runs of the flip average every frame (Segmenter.video's flip_by_turns=False)."""
    model, _, tta = spec.partition(":")
    if not model or tta not in ("", "off", "flip", "none", "both"):
        from lipseg_tf.errors import UserError
        raise UserError(f"--systems {spec!r}: expected MODEL, MODEL:off or MODEL:both (MODEL a shipped name or a "
                        "folder)")
    return model, None if tta in ("", "both") else tta, tta != "both"


def lipseg_fps(segmenter, frames: np.ndarray, flip_by_turns: bool = True) -> tuple[float, np.ndarray, float]:
    """Segmenter.video over the frames in memory -> (fps, labels (N, H, W), CPU milliseconds a frame,
    all the process's threads)."""
    start, cpu = time.perf_counter(), cpu_seconds()
    labels = np.stack([frame.labels for frame in segmenter.video(frames, flip_by_turns=flip_by_turns)])
    return len(frames) / (time.perf_counter() - start), labels, (cpu_seconds() - cpu) / len(frames) * 1e3


def mediapipe_round(frames: int, python: Path = MEDIAPIPE_PYTHON) -> dict:
    """One run of benchmarks/mediapipe_video.py (its own clips, the same as these) in MediaPipe's
    environment -> its JSON (fps_facemesh, fps_with_fill, f1_moving, flicker_still, ...)."""
    with tempfile.TemporaryDirectory(prefix="video-speed-") as tmp:
        out = Path(tmp) / "mediapipe.json"
        run_in_mediapipe_env(python, ["benchmarks.mediapipe_video", "--frames", str(frames), "--rounds", "1",
                                      "--json", str(out)], "benchmarks/video_speed.sh")
        return json.loads(out.read_text())


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def cpu_cell(values: Sequence[float] | None) -> str:
    """The median CPU milliseconds a frame of the rounds, or a dash where they were not measured."""
    return f"{statistics.median(values):.1f}" if values else "—"


def format_report(results: dict) -> str:
    """The table: one row per system, fps and the ratios to FaceMesh's median fps."""
    mediapipe = results.get("mediapipe")
    lines = [f"{results['data']}, {results['frames']} frames of 640 x 480, {results['rounds']} rounds; "
             "fps: median (range)",
             "| system | fps | x FaceMesh | x FaceMesh filled | CPU ms a frame | F1 moving | flicker still |",
             "|---|---|---|---|---|---|---|"]
    for name, row in results["lipseg"].items():
        ratios = ("—", "—")
        if mediapipe:
            fps = statistics.median(row["fps"])
            ratios = (f"{fps / statistics.median(mediapipe['fps_facemesh']):.2f}",
                      f"{fps / statistics.median(mediapipe['fps_with_fill']):.2f}")
        lines.append(f"| lipseg_tf {name} | {spread(row['fps'])} | {ratios[0]} | {ratios[1]} | "
                     f"{cpu_cell(row.get('cpu_ms'))} | {row['f1_moving']:.3f} | {row['flicker_still']:.4f} |")
    if mediapipe:
        lines.append(f"| MediaPipe FaceMesh {mediapipe['version']}, landmarks | {spread(mediapipe['fps_facemesh'])} "
                     "| 1.00 | — | — | — | — |")
        lines.append(f"| MediaPipe FaceMesh, parts filled | {spread(mediapipe['fps_with_fill'])} | — | 1.00 | "
                     f"{cpu_cell(mediapipe.get('cpu_ms'))} | {mediapipe['f1_moving']:.3f} | "
                     f"{mediapipe['flicker_still']:.4f} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from lipseg_tf.cli.common import positive_int
    parser = argparse.ArgumentParser(prog="benchmarks/video_speed.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=DEFAULT_SYSTEMS,
                        help="lipseg_tf's, comma-separated: a shipped model's name or an export folder, "
                             f"':off' for --tta off (default: {DEFAULT_SYSTEMS})")
    parser.add_argument("--frames", type=positive_int, default=100, help="frames of the clips")
    parser.add_argument("--rounds", type=positive_int, default=5, help="rounds, every system once in each")
    parser.add_argument("--no-mediapipe", dest="mediapipe", action="store_false", help="skip MediaPipe")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--verbose", action="store_true", help="debug logging, TensorFlow's messages")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from lipseg_tf.cli.common import setup_logging
    setup_logging(args.verbose, tensorflow=True)  # TensorFlow's start-up lines kept off stderr
    from lipseg_tf.serve.predict import tune_process
    tune_process()  # as predict.py does
    import lipseg_tf
    from lipseg_tf.prep.sample.clip import render_clip
    from lipseg_tf.tools.bench_video import flicker, mean_f1

    moving, truth = render_clip(0, 1, args.frames, shape=(480, 640))
    still, _ = render_clip(0, 1, args.frames, shape=(480, 640), motion="still", noise=4.0)
    segmenters, by_turns = {}, {}
    for spec in args.systems.split(","):
        model, tta, by_turns[spec] = parse_system(spec)
        segmenters[spec] = lipseg_tf.Segmenter(model, tta=tta)
        list(segmenters[spec].video(moving[:2]))  # warm up: the models' and the detector's first runs
    results = {"data": "synthetic (lipseg_tf.prep.sample.clip, seed 0, image 1)", "frames": args.frames,
               "rounds": args.rounds, "lipseg": {spec: {"fps": [], "cpu_ms": []} for spec in segmenters}}
    mediapipe = {"fps_facemesh": [], "fps_with_fill": [], "cpu_ms": []} if args.mediapipe else None
    for index in range(args.rounds):
        order = list(segmenters) + (["mediapipe"] if mediapipe is not None else [])
        for name in order if index % 2 == 0 else order[::-1]:
            if name == "mediapipe":
                found = mediapipe_round(args.frames)
                mediapipe["fps_facemesh"].append(found["fps_facemesh"])
                mediapipe["fps_with_fill"].append(found["fps_with_fill"])
                mediapipe["cpu_ms"].append(found["cpu_ms_with_fill"])
                mediapipe.update(version=found["mediapipe"], f1_moving=found["f1_moving"],
                                 flicker_still=found["flicker_still"])
                continue
            fps, labels, cpu = lipseg_fps(segmenters[name], moving, by_turns[name])
            row = results["lipseg"][name]
            row["fps"].append(fps)
            row["cpu_ms"].append(cpu)
            if "f1_moving" not in row:
                row["f1_moving"] = mean_f1(labels, truth)
                row["flicker_still"] = flicker(np.stack([f.labels for f in segmenters[name].video(
                    still, flip_by_turns=by_turns[name])]))
                row["model"] = str(segmenters[name].model.path)
        print(f"round {index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    if mediapipe is not None:
        results["mediapipe"] = mediapipe
    print(format_report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from lipseg_tf.cli.common import run
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
