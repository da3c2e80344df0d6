"""predict.py: lips and eyes in any photo or video, with an exported model: a thin layer over the Python
API (serve/api.py's Segmenter); serve/predict.py writes the photos' outputs, serve/video.py the videos'."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from lipseg_tf.cli.common import positive_int, run, setup_logging
from lipseg_tf.errors import UserError
from lipseg_tf.prep.folders import check_apart, claim_folder
from lipseg_tf.prep.imageio import IMAGE_EXTENSIONS, list_images
from lipseg_tf.serve import align
from lipseg_tf.serve.api import DEFAULT_MODEL, DEFAULT_MODEL_NAME, PRETRAINED, Segmenter, model_folder
from lipseg_tf.serve.detect import DEFAULT_DETECTOR, DEFAULT_MIN_CONFIDENCE, DETECTORS
from lipseg_tf.serve.predict import (
    DEFAULT_SAVE,
    RUNTIMES,
    SAVE_CHOICES,
    SUMMARY_FILE,
    TTA_CHOICES,
    _output_names,
    check_output_dir,
    parse_save,
    predict_files,
    tune_process,
)
from lipseg_tf.serve.track import DETECT_EVERY
from lipseg_tf.serve.video import VIDEO_EXTENSIONS, is_video, list_videos, predict_videos, video_outputs

log = logging.getLogger("lipseg_tf")


def _input_files(path: Path) -> tuple[list[Path], list[Path]]:
    """(photos, videos) of --input: a file (a video by its extension) or a folder's photos and videos."""
    if path.is_dir():
        videos = list_videos(path)
        return list_images(path, required=not videos), videos  # UserError when there is neither
    if not path.exists():
        raise UserError(f"{path}: not found (expected an image or video file, or a folder of them)")
    return ([], [path]) if is_video(path) else ([path], [])


def _model_folder(model: str | None) -> Path:
    """--model (a folder, or a shipped model's name), or the shipped default (small); UserError when the
    shipped model is missing."""
    if model is None:
        if not DEFAULT_MODEL.is_dir():
            raise UserError(f"no --model given and the pretrained model {DEFAULT_MODEL} is missing: pass --model "
                            "(an export folder of unet.py / pix2pix.py --mode export)")
        return DEFAULT_MODEL
    return model_folder(model)


DEFAULT_OUTPUT = "predict_out"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict.py",
        description="Segment lips and eyes in photos and videos of any size: detect faces (BlazeFace or MTCNN), "
                    "align each to the model's training framing, segment, and paste the masks back at the "
                    "photo's size. In videos faces are tracked between detections and smoothed in time.",
        epilog="Example: %(prog)s --input photo.jpg --output masks/ (the pretrained model), or %(prog)s "
               "--model export/unet --input photos/ --output masks/. Writes per photo "
               "<name>-mask.png (class ids) and <name>.json (--save adds <name>-overlay.png); per video "
               "<name>-overlay.mp4, <name>-masks/NNNNNN.png and <name>.json; and summary.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="an exported SavedModel folder (unet.py / pix2pix.py --mode export --output_dir), or "
                             f"a shipped model: {', '.join(PRETRAINED)} (small, the default: a U-Net on 2x2 patches, "
                             "dev test mean F1 0.866 with detection; fast: full resolution, 3.5 times the network "
                             "time, 0.865; accurate: twice the resolution, 0.893 pasted back, about 20 times the "
                             "fast one's model time, having no TFLite copy; "
                             "lipseg_tf/pretrained/MODEL.md); "
                             f"default: {DEFAULT_MODEL_NAME}/")
    parser.add_argument("--input", required=True,
                        help=f"a photo ({', '.join(IMAGE_EXTENSIONS)}), a video ({', '.join(VIDEO_EXTENSIONS)}) "
                             "or a folder of them")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help="folder for masks, overlays and JSON (created; default: %(default)s in the "
                             "current folder)")
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                        help="face detector: blazeface (MediaPipe's BlazeFace full range, a few ms a photo; faces "
                             "from about 1/20 of the photo's longer side) or mtcnn (about 0.3 s a photo; finds "
                             "faces down to --min-face on any photo)")
    parser.add_argument("--save", default=",".join(DEFAULT_SAVE),
                        help=f"outputs per photo, comma-separated, of {','.join(SAVE_CHOICES)} (default: "
                             f"{','.join(DEFAULT_SAVE)}; the overlay PNG costs most of the writing time)")
    parser.add_argument("--min-face", "--min_face", dest="min_face", type=int, default=40,
                        help="smallest face to keep, in pixels (the detector box's longer side); with mtcnn "
                             "photos are resized by 20/min-face for detection (MTCNN finds faces from 20 px), "
                             "so a larger value is faster on big photos")
    parser.add_argument("--min-confidence", "--min_confidence", dest="min_confidence", type=float, default=None,
                        help="smallest detector confidence (0-1) to keep a face (default: "
                             + ", ".join(f"{k} {v}" for k, v in DEFAULT_MIN_CONFIDENCE.items()) + ")")
    parser.add_argument("--framing", choices=sorted(align.FRAMINGS), default=None,
                        help="where faces are put in the crop: as in lipseg_tf.prep.sample's synthetic faces or "
                             "in CelebA-HQ (default: the model's classes.json, else celebahq)")
    parser.add_argument("--no-detect", "--no_detect", dest="no_detect", action="store_true",
                        help="no face detection: each input already is an aligned face crop (a CelebA-HQ "
                             "image); the model sees the whole image, or the box of it that it was trained on "
                             "(classes.json crop)")
    parser.add_argument("--tta", choices=TTA_CHOICES, default="none",
                        help="test-time augmentation: flip averages each face's probabilities with those of its "
                             "mirror image (left/right classes swapped); twice the model time. Models exported "
                             "with --tta flip (the shipped ones) do it already, unless off: never flip, half the "
                             "model time (needs the TFLite runtime for those; mean F1 0.860 against 0.862 on "
                             "real-face scenes; videos: 1.1x the fps of the default, which runs the halves by turns)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="what runs the network on the aligned faces: auto (the TFLite copy with int8 weights, "
                             "crop.tflite, when the model folder has one, as the shipped small and fast models do: "
                             "several times faster on a CPU; else the SavedModel), tflite (that copy) or savedmodel")
    parser.add_argument("--detect-every", "--detect_every", dest="detect_every", type=positive_int,
                        default=DETECT_EVERY,
                        help="videos: run the face detector every this many frames (and on the first, and when "
                             "a face is lost); in between each face is tracked from the previous frame")
    parser.add_argument("--smoothing", type=float, default=0.5,
                        help="videos: weight of the past in a moving average of each face's probabilities "
                             "(0 off, below 1), so masks do not flicker")
    parser.add_argument("--flip-every-frame", "--flip_every_frame", dest="flip_every_frame", action="store_true",
                        help="videos: run both halves of the mirror-image average (tta flip) on every frame; by "
                             "default a tracked frame runs one, the image and its mirror image by turns, and the "
                             "smoothing joins them (on real clips 0.001 lower F1, 1.25x the flicker, 1.2x the fps)")
    parser.add_argument("--verbose", action="store_true", help="debug logging (per-photo timings), TF messages")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, tensorflow=True)
    tune_process()  # freed memory reused, OpenCV on the calling thread
    if args.min_face < 1:
        raise UserError(f"--min-face: expected a positive number of pixels, got {args.min_face}")
    if args.min_confidence is not None and not 0.0 <= args.min_confidence <= 1.0:
        raise UserError(f"--min-confidence: expected a value from 0 to 1, got {args.min_confidence}")
    if not 0.0 <= args.smoothing < 1.0:
        raise UserError(f"--smoothing: expected a weight from 0 (off) to below 1, got {args.smoothing}")
    save = parse_save(args.save)
    photos, videos = _input_files(Path(args.input))
    model_dir = _model_folder(args.model)
    out_dir = Path(args.output)
    check_apart(("--output", args.output), {"--input": args.input, "--model": str(model_dir)})
    check_output_dir(out_dir, photos)
    names = _output_names(photos + videos)
    claim_folder(out_dir, SUMMARY_FILE, [path for video in videos for path in video_outputs(out_dir, names[video])],
                 "predict.py", keys=("model", "photos"))
    segmenter = Segmenter(model_dir, detector=None if args.no_detect else args.detector, min_face=args.min_face,
                          min_confidence=args.min_confidence, tta=args.tta, framing=args.framing,
                          runtime=args.runtime)
    summary = predict_files(photos, segmenter, out_dir, save)
    if photos or not videos:
        mean = summary["mean_seconds"]
        log.info("%d photo(s), %d face(s); without a face: %d; skipped (unreadable): %d; mean per photo: %s%s",
                 summary["photos"], summary["faces"], len(summary["photos_without_face"]), len(summary["skipped"]),
                 ", ".join(f"{k} {v:.3f} s" for k, v in mean.items()) or "-",
                 f"; wall {summary['wall_seconds_per_photo']:.3f} s (the steps overlap)" if summary["photos"] else "")
        for path in summary["photos_without_face"]:
            log.info("no face found in %s", path)
    if videos:
        summary = predict_videos(videos, names, segmenter, out_dir, summary, args.detect_every, args.smoothing,
                                 flip_by_turns=not args.flip_every_frame)
        log.info("%d video(s), %d frame(s), mean %s fps; without frames: %d; without a face: %d; broken off: %d",
                 summary["videos"], summary["frames"], "-" if summary["mean_fps"] is None else summary["mean_fps"],
                 len(summary["videos_without_frames"]),
                 len(summary["videos_without_face"]), len(summary["videos_broken"]))
    log.info("results in %s (%s)", args.output, SUMMARY_FILE)
    if summary["skipped"]:
        log.error("%d file(s) skipped: %s", len(summary["skipped"]),
                  ", ".join(s["file"] for s in summary["skipped"]))
    if summary.get("videos_broken"):
        log.error("%d video(s) broken off, their frames before it kept: %s", len(summary["videos_broken"]),
                  ", ".join(s["file"] for s in summary["videos_broken"]))
    return 1 if summary["skipped"] or summary.get("videos_broken") else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of predict.py: returns 0, or 1 after a one-line error or when a file was skipped."""
    return run(_main, argv)
