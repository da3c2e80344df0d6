"""python -m lipseg_tf.tools.bench_video: predict.py's video path on synthetic clips with known masks.

Three figures, each beside its baseline in the same run (lipseg_tf.prep.sample.clip; synthetic data):

    fps      640 x 480 clip of a moving face, frames in memory: Segmenter.video (tracked, detection every
             --detect-every frames, smoothed) against segmenting every frame as a photo (detection on
             each); and predict.py's whole video path (decode, segment, write masks and overlay MP4)
    flicker  a still face with sensor noise: the share of part pixels whose label changes between two
             consecutive frames, frame by frame / tracked without smoothing / tracked and smoothed
    F1       the moving face: mean F1 of the four parts over all frames, frame by frame / tracked, with
             and without smoothing / with the detection's transform kept between detections

Optionally (--libraries) the decode and encode speed of the video libraries that are installed (PyAV,
imageio-ffmpeg, opencv-python-headless) on the same clip, and (--real ROOT) F1 and flicker on clips made
the same way from real test-split faces of a CelebAMask-HQ root (nothing made from them is written).
Prints the figures and writes --json.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from lipseg_tf.cli.common import positive_int, run, setup_logging
from lipseg_tf.serve.track import DETECT_EVERY

log = logging.getLogger("lipseg_tf")


def mean_f1(pred: np.ndarray, truth: np.ndarray, parts: int = 4) -> float:
    """Mean over the parts of each part's F1, pixels of all frames together."""
    scores = []
    for k in range(1, parts + 1):
        both = np.count_nonzero((pred == k) & (truth == k))
        total = np.count_nonzero(pred == k) + np.count_nonzero(truth == k)
        scores.append(2 * both / total if total else 1.0)
    return float(np.mean(scores))


def flicker(labels: np.ndarray) -> float:
    """The share of part pixels (in either of two consecutive frames) whose label changes between them."""
    changed = union = 0
    for before, after in zip(labels[:-1], labels[1:]):
        parts = (before > 0) | (after > 0)
        changed += np.count_nonzero((before != after) & parts)
        union += np.count_nonzero(parts)
    return changed / union if union else 0.0


def _timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def _video_labels(seg, frames, **options) -> np.ndarray:
    return np.stack([frame.labels for frame in seg.video(frames, **options)])


def _photo_labels(seg, frames) -> np.ndarray:
    return np.stack([seg(frame).labels for frame in frames])


def measure(seg, frames: int, detect_every: int, smoothing: float, seed: int, image_id: int,
            rounds: int = 3, flip_by_turns: bool = True) -> dict:
    """The fps, flicker and F1 rows (see the module's text) -> {name: value}. Each fps is the best of
    `rounds` runs, the two ways taking turns, so that other jobs on the machine weigh on both alike."""
    from lipseg_tf.prep.sample.clip import render_clip

    moving, moving_truth = render_clip(seed, image_id, frames, shape=(480, 640))
    still, still_truth = render_clip(seed, image_id, frames, shape=(480, 640), motion="still", noise=4.0)
    seg(moving[0])  # warm up: the model's and the detector's first calls trace their graphs
    options = {"detect_every": detect_every, "smoothing": smoothing, "flip_by_turns": flip_by_turns}
    tracked_seconds, photo_seconds = [], []
    for _ in range(rounds):
        tracked, seconds = _timed(lambda: _video_labels(seg, moving, **options))
        tracked_seconds.append(seconds)
        photos, seconds = _timed(lambda: _photo_labels(seg, moving))
        photo_seconds.append(seconds)
    tracked_seconds, photo_seconds = min(tracked_seconds), min(photo_seconds)
    results = {
        "fps_tracked": frames / tracked_seconds, "fps_frame_by_frame": frames / photo_seconds,
        "f1_frame_by_frame": mean_f1(photos, moving_truth), "f1_tracked": mean_f1(tracked, moving_truth),
        "f1_tracked_unsmoothed": mean_f1(_video_labels(seg, moving, detect_every=detect_every, smoothing=0.0),
                                         moving_truth),
        "f1_kept_transform": mean_f1(_video_labels(seg, moving, realign=False, **options), moving_truth),
        "f1_detect_every_frame": mean_f1(_video_labels(seg, moving, detect_every=1, smoothing=0.0), moving_truth),
    }
    still_photos = _photo_labels(seg, still)
    still_plain = _video_labels(seg, still, detect_every=detect_every, smoothing=0.0)
    still_smoothed = _video_labels(seg, still, **options)
    results.update({"flicker_frame_by_frame": flicker(still_photos),
                    "flicker_tracked_unsmoothed": flicker(still_plain), "flicker_tracked": flicker(still_smoothed),
                    "f1_still_tracked": mean_f1(still_smoothed, still_truth),
                    "f1_still_frame_by_frame": mean_f1(still_photos, still_truth)})
    results["end_to_end_fps"] = _end_to_end_fps(seg, moving, detect_every, smoothing, flip_by_turns)
    return results


def real_clips(root: Path, faces: int, frames: int, split: str = "test"):
    """The first `faces` faces of a split of a CelebAMask-HQ root (photo and g_mask.py's mask, with
    --fix-sides), each moved as the synthetic face is and held still with noise: yields (image id,
    moving frames, their labels, still frames). Needs numpy and PIL only."""
    from lipseg_tf.prep import celebamask, masks
    from lipseg_tf.prep.imageio import load_rgb
    from lipseg_tf.prep.sample.clip import warp_clip

    ids = celebamask.find_image_ids(root)
    splits = celebamask.official_splits(root, ids)
    for image_id in [i for i in ids if splits.get(i) == split][:faces]:
        labels = masks.make_mask_checked(root, image_id, style="index", fix_sides=True)[0]
        photo = load_rgb(celebamask.image_path(root, image_id))
        moving, truth = warp_clip(photo, labels, frames, seed=image_id)
        still, _ = warp_clip(photo, labels, frames, motion="still", noise=4.0, seed=image_id)
        yield image_id, moving, truth, still


def measure_real(seg, root: Path, faces: int, frames: int, detect_every: int, smoothing: float,
                 split: str = "test", flip_by_turns: bool = True) -> dict:
    """F1 (moving) and mean flicker (still) on real_clips of a split, frame by frame and tracked."""
    chosen, truths, photos, tracked, still_photos, still_tracked = [], [], [], [], [], []
    options = {"detect_every": detect_every, "smoothing": smoothing, "flip_by_turns": flip_by_turns}
    for image_id, moving, truth, still in real_clips(root, faces, frames, split):
        chosen.append(image_id)
        truths.append(truth)
        photos.append(_photo_labels(seg, moving))
        tracked.append(_video_labels(seg, moving, **options))
        still_photos.append(flicker(_photo_labels(seg, still)))
        still_tracked.append(flicker(_video_labels(seg, still, **options)))
    truth = np.concatenate(truths)
    return {"data": real_data(chosen, split), "faces": len(chosen), "frames": frames,
            "f1_frame_by_frame": mean_f1(np.concatenate(photos), truth),
            "f1_tracked": mean_f1(np.concatenate(tracked), truth),
            "flicker_frame_by_frame": float(np.mean(still_photos)), "flicker_tracked": float(np.mean(still_tracked))}


def real_data(chosen: Sequence[int], split: str = "test") -> str:
    return f"dev {split} split, {len(chosen)} real faces (CelebAMask-HQ ids {chosen[0]}..{chosen[-1]})"


def _end_to_end_fps(seg, frames: np.ndarray, detect_every: int, smoothing: float, flip_by_turns: bool = True) -> float:
    """predict.py's video path on the clip written as an MP4: decode, segment, write masks and overlay."""
    from lipseg_tf.serve.video import VideoWriter, predict_video

    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "clip.mp4"
        writer = VideoWriter(path, 25.0)
        for frame in frames:
            writer.write(frame)
        writer.close()
        out = Path(work) / "out"
        out.mkdir()
        record = predict_video(path, "clip", seg, out, detect_every, smoothing, progress=False,
                               flip_by_turns=flip_by_turns)
    return record["fps_processed"]


def library_speeds(frames: np.ndarray) -> dict[str, dict[str, float]]:
    """Decode and encode fps of each installed video library on these frames (H.264 where it can)."""
    speeds = {}
    height, width = frames.shape[1:3]
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "clip.mp4"
        try:
            import av
        except ImportError:
            return speeds
        from lipseg_tf.serve.video import VideoReader, VideoWriter

        def av_write(path=source):
            writer = VideoWriter(path, 25.0)
            for frame in frames:
                writer.write(frame)
            writer.close()
        _, encode = _timed(av_write)
        _, decode = _timed(lambda: sum(1 for _ in VideoReader(source)))
        speeds[f"PyAV {av.__version__}"] = {"decode": len(frames) / decode, "encode": len(frames) / encode}
        try:
            import imageio_ffmpeg
        except ImportError:
            imageio_ffmpeg = None
        if imageio_ffmpeg is not None:
            def iio_write():
                writer = imageio_ffmpeg.write_frames(str(Path(work) / "iio.mp4"), (width, height), fps=25,
                                                     codec="libx264", macro_block_size=1,
                                                     output_params=["-preset", "ultrafast", "-crf", "23",
                                                                    "-threads", "1"])
                writer.send(None)
                for frame in frames:
                    writer.send(np.ascontiguousarray(frame))
                writer.close()

            def iio_read():
                reader = imageio_ffmpeg.read_frames(str(source))
                next(reader)
                return sum(1 for _ in reader)
            _, encode = _timed(iio_write)
            _, decode = _timed(iio_read)
            speeds[f"imageio-ffmpeg {imageio_ffmpeg.__version__}"] = {"decode": len(frames) / decode,
                                                                      "encode": len(frames) / encode}
        try:
            import cv2
        except ImportError:
            cv2 = None
        if cv2 is not None:
            def cv_write():
                writer = cv2.VideoWriter(str(Path(work) / "cv.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25,
                                         (width, height))
                for frame in frames:
                    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                writer.release()

            def cv_read():
                capture, count = cv2.VideoCapture(str(source)), 0
                while True:
                    ok, frame = capture.read()
                    if not ok:
                        return count
                    cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    count += 1
            _, encode = _timed(cv_write)
            _, decode = _timed(cv_read)
            speeds[f"opencv-python-headless {cv2.__version__} (encode: mp4v, no H.264)"] = {
                "decode": len(frames) / decode, "encode": len(frames) / encode}
    return speeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lipseg_tf.tools.bench_video", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default=None, help="an export folder (default: the shipped pretrained model)")
    parser.add_argument("--frames", type=positive_int, default=100, help="frames per clip")
    parser.add_argument("--tta", choices=("none", "flip", "off"), default="none",
                        help="the Segmenter's tta, as predict.py's --tta (off: no mirror-image average, half "
                             "the model time)")
    parser.add_argument("--detect-every", "--detect_every", dest="detect_every", type=positive_int,
                        default=DETECT_EVERY)
    parser.add_argument("--smoothing", type=float, default=0.5)
    parser.add_argument("--flip-every-frame", "--flip_every_frame", dest="flip_every_frame", action="store_true",
                        help="both halves of the mirror-image average every frame, as predict.py's option")
    parser.add_argument("--rounds", type=positive_int, default=3, help="fps: the best of this many runs")
    parser.add_argument("--seed", type=int, default=0, help="the synthetic sample's seed")
    parser.add_argument("--image-id", "--image_id", dest="image_id", type=int, default=1,
                        help="which synthetic face (one MTCNN finds)")
    parser.add_argument("--libraries", action="store_true", help="also time the installed video libraries")
    parser.add_argument("--real", default=None,
                        help="a CelebAMask-HQ root: also F1 and flicker on clips of its first --real-faces "
                             "faces of --real-split (nothing is written)")
    parser.add_argument("--real-split", "--real_split", dest="real_split", default="test",
                        help="the split whose faces make the real clips (val to tune on, test to report)")
    parser.add_argument("--real-faces", "--real_faces", dest="real_faces", type=positive_int, default=5)
    parser.add_argument("--real-frames", "--real_frames", dest="real_frames", type=positive_int, default=40)
    parser.add_argument("--skip-synthetic", action="store_true", help="only the --real figures")
    parser.add_argument("--json", default=None, help="write the figures here as JSON")
    parser.add_argument("--verbose", action="store_true")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, tensorflow=True)  # TensorFlow's start-up lines kept off stderr
    from lipseg_tf.serve.predict import tune_process
    tune_process()  # as predict.py does
    import lipseg_tf

    seg = lipseg_tf.Segmenter(args.model, tta=args.tta)
    results = {"data": "synthetic (lipseg_tf.prep.sample.clip)", "frames": args.frames, "tta": args.tta,
               "runtime": seg.model.runtime,
               "detect_every": args.detect_every, "smoothing": args.smoothing, "seed": args.seed,
               "flip_by_turns": seg.flips_by_turns(not args.flip_every_frame, args.smoothing),
               "image_id": args.image_id, "model": str(seg.model.path)}
    if args.real:
        results["real"] = measure_real(seg, Path(args.real), args.real_faces, args.real_frames, args.detect_every,
                                       args.smoothing, args.real_split, not args.flip_every_frame)
        real = results["real"]
        print(f"{real['data']}, {real['frames']} frames each: F1 frame by frame {real['f1_frame_by_frame']:.3f}, "
              f"tracked {real['f1_tracked']:.3f}; flicker (still) frame by frame "
              f"{real['flicker_frame_by_frame']:.4f}, tracked {real['flicker_tracked']:.4f}")
    if args.skip_synthetic:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        return 0
    results.update(measure(seg, args.frames, args.detect_every, args.smoothing, args.seed, args.image_id,
                           args.rounds, not args.flip_every_frame))
    if args.libraries:
        from lipseg_tf.prep.sample.clip import render_clip
        results["libraries"] = library_speeds(render_clip(args.seed, args.image_id, args.frames)[0])
    print(f"synthetic clips, {args.frames} frames of 640 x 480, detect every {args.detect_every}, "
          f"smoothing {args.smoothing}, tta {args.tta}, runtime {seg.model.runtime}")
    print(f"fps      tracked {results['fps_tracked']:.1f}, frame by frame {results['fps_frame_by_frame']:.1f} "
          f"(x{results['fps_tracked'] / results['fps_frame_by_frame']:.2f}); predict.py end to end "
          f"{results['end_to_end_fps']:.1f}")
    print(f"flicker  frame by frame {results['flicker_frame_by_frame']:.4f}, tracked unsmoothed "
          f"{results['flicker_tracked_unsmoothed']:.4f}, tracked smoothed {results['flicker_tracked']:.4f}")
    print(f"F1       frame by frame {results['f1_frame_by_frame']:.3f}, tracked {results['f1_tracked']:.3f} "
          f"(unsmoothed {results['f1_tracked_unsmoothed']:.3f}), transform kept {results['f1_kept_transform']:.3f}, "
          f"detect every frame {results['f1_detect_every_frame']:.3f}")
    for name, speed in results.get("libraries", {}).items():
        print(f"{name}: decode {speed['decode']:.0f} fps, encode {speed['encode']:.0f} fps")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
