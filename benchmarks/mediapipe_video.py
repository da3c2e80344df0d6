"""MediaPipe FaceMesh in video mode on the synthetic clips of lipseg_tf.tools.bench_video: fps, flicker, F1.

The same clips (lipseg_tf.prep.sample.clip: one synthetic face, moving 640 x 480 and still with sensor
noise, --frames each), FaceMesh with static_image_mode=False (it tracks its landmarks from frame to
frame), refine_landmarks, one face. Its eye loops and lip rings are filled as in
benchmarks/mediapipe_peer.py (pixel centres inside the polygon, at the frame's size), and scored with
tools/bench_video.py's measures. fps is the best of --rounds runs over the moving clip, FaceMesh alone and
with the polygons filled. Synthetic data.

Runs in the MediaPipe environment (mediapipe pins numpy < 2 and protobuf < 5), made by
benchmarks/mediapipe_peer.sh:

    benchmarks/mediapipe_peer.sh --help >/dev/null    # makes .venv-mediapipe/ once
    .venv-mediapipe/bin/python -m benchmarks.mediapipe_video --frames 100
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.mediapipe_peer import fill_parts, part_polygons
from benchmarks.speed import cpu_seconds
from lipseg_tf.prep.parts import DEFAULT_PARTS
from lipseg_tf.prep.sample.clip import render_clip
from lipseg_tf.tools.bench_video import flicker, mean_f1, real_clips, real_data  # numpy only at import


def run_clip(frames: np.ndarray, polygons: dict, fill: bool = True) -> tuple[np.ndarray | None, float, int, float]:
    """FaceMesh in video mode over the frames -> (labels (N, H, W) or None without fill, seconds, misses,
    CPU seconds of the process, all its threads)."""
    from mediapipe.python.solutions import face_mesh

    height, width = frames.shape[1:3]
    class_ids = {part: k for k, part in enumerate(DEFAULT_PARTS, start=1)}
    labels = np.zeros(frames.shape[:3], np.uint8) if fill else None
    misses = 0
    with face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as mesh:
        mesh.process(frames[0])  # the graph's start-up, left out of the time (as lipseg_tf's warm-up)
    with face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as mesh:
        start, cpu = time.perf_counter(), cpu_seconds()
        for index, frame in enumerate(frames):
            found = mesh.process(frame).multi_face_landmarks
            if not found:
                misses += 1
                continue
            if fill:
                points = np.array([(p.x * width, p.y * height) for p in found[0].landmark])
                fill_parts(labels[index], points, polygons, class_ids)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return labels, seconds, misses, cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mediapipe_video", description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-id", dest="image_id", type=int, default=1)
    parser.add_argument("--real", default=None, help="a CelebAMask-HQ root: also its test faces' clips, as "
                                                     "tools/bench_video.py --real makes them")
    parser.add_argument("--real-faces", dest="real_faces", type=int, default=5)
    parser.add_argument("--real-frames", dest="real_frames", type=int, default=40)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    import mediapipe
    from mediapipe.python.solutions import face_mesh

    polygons = part_polygons(face_mesh.FACEMESH_LIPS, face_mesh.FACEMESH_LEFT_EYE, face_mesh.FACEMESH_RIGHT_EYE)
    moving, moving_truth = render_clip(args.seed, args.image_id, args.frames, shape=(480, 640))
    still, still_truth = render_clip(args.seed, args.image_id, args.frames, shape=(480, 640), motion="still",
                                     noise=4.0)
    mesh_seconds = min(run_clip(moving, polygons, fill=False)[1] for _ in range(args.rounds))
    labels, seconds, misses, cpu = run_clip(moving, polygons)
    still_labels, _, still_misses, _ = run_clip(still, polygons)
    results = {"data": "synthetic (lipseg_tf.prep.sample.clip)", "mediapipe": mediapipe.__version__,
               "mode": "FaceMesh, static_image_mode=False, refine_landmarks, 1 face", "frames": args.frames,
               "fps_facemesh": args.frames / mesh_seconds, "fps_with_fill": args.frames / seconds,
               "cpu_ms_with_fill": cpu / args.frames * 1e3,
               "frames_missed": misses, "f1_moving": mean_f1(labels, moving_truth),
               "flicker_still": flicker(still_labels), "f1_still": mean_f1(still_labels, still_truth),
               "still_frames_missed": still_misses}
    print(f"MediaPipe {mediapipe.__version__} FaceMesh video mode, synthetic clips, {args.frames} frames of 640 x 480")
    print(f"fps      FaceMesh {results['fps_facemesh']:.1f}, with the parts filled {results['fps_with_fill']:.1f}")
    print(f"flicker  still face {results['flicker_still']:.4f}")
    print(f"F1       moving face {results['f1_moving']:.3f} (frames missed {misses}), still {results['f1_still']:.3f}")
    if args.real:
        chosen, truths, found, flickers = [], [], [], []
        for image_id, moving_real, truth, still_real in real_clips(Path(args.real), args.real_faces, args.real_frames):
            chosen.append(image_id)
            truths.append(truth)
            found.append(run_clip(moving_real, polygons)[0])
            flickers.append(flicker(run_clip(still_real, polygons)[0]))
        results["real"] = {"data": real_data(chosen), "frames": args.real_frames,
                           "f1_moving": mean_f1(np.concatenate(found), np.concatenate(truths)),
                           "flicker_still": float(np.mean(flickers))}
        print(f"{results['real']['data']}: F1 moving {results['real']['f1_moving']:.3f}, flicker still "
              f"{results['real']['flicker_still']:.4f}")
    if args.json:
        with open(args.json, "w") as file:
            file.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
