"""Videos in and out (PyAV, whose wheel ships FFmpeg), and predict.py's work on a video.

For a video <name>.<ext> predict.py writes into --output:

    <name>-overlay.mp4        the frames with the parts in their mask colours (H.264), at the video's rate
    <name>-masks/NNNNNN.png   each frame's class ids at the frame's size (uint8), numbered from 000000
    <name>.json               fps, size, frame count, per frame its faces (box, landmarks, whether they
                              were detected or tracked) and the time of each step; the mean fps

Frames come from Segmenter.video (serve/api.py): faces detected on the first frame, every
--detect-every frames and whenever a track is lost, tracked in between, and smoothed in time
(serve/track.py). A video that cannot be opened is named and skipped; one that breaks off part way keeps
the frames written so far and says where it stopped; a video with no frames or no face is counted.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from lipseg_tf.errors import UserError
from lipseg_tf.prep.imageio import VIDEO_EXTENSIONS, check_regular_file, save_labels_png, write_text
from lipseg_tf.serve.track import DETECT_EVERY

if TYPE_CHECKING:
    from lipseg_tf.serve.api import Segmenter

log = logging.getLogger("lipseg_tf")

OVERLAY_SUFFIX = "-overlay.mp4"
MASKS_SUFFIX = "-masks"
WRITE_AHEAD = 4  # frames segmented but not yet written, at most


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    # FFmpeg's messages start with an error number and end with the path, which the line names already
    return re.sub(r"^\[Errno -?\d+\] ", "", text.split(": '")[0])


class VideoReader:
    """The frames of a video file as (H, W, 3) uint8 RGB arrays, in order, turned upright where the file
    says it is to be shown turned (phone videos' display rotation, as photos' EXIF orientation).

    fps (frames per second; 0.0 when the file does not say), frames (the count the file declares, 0 when
    unknown), width, height (as stored, before any turn). A file that is missing or not a video raises
    UserError on opening; one that breaks off part way raises UserError after its last good frame, and
    one that declares more frames than it holds sets `truncated` when iteration ends.
    """

    def __init__(self, path: str | Path):
        import av

        self.path = Path(path)
        if self.path.is_dir():
            raise UserError(f"{self.path}: a folder, expected a video file")
        check_regular_file(self.path, "a video file")  # a FIFO would hang FFmpeg's open
        try:
            self._container = av.open(str(self.path))
        except FileNotFoundError:
            raise UserError(f"{self.path}: file not found") from None
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise UserError(f"{self.path}: unreadable video ({_reason(err)})") from None
        streams = self._container.streams.video
        self._stream = streams[0] if streams else None
        rate = self._stream.average_rate or self._stream.guessed_rate if self._stream is not None else None
        self.fps = float(rate) if rate else 0.0
        self.frames = int(self._stream.frames or 0) if self._stream is not None else 0
        codec = self._stream.codec_context if self._stream is not None else None
        self.width, self.height = (codec.width, codec.height) if codec is not None else (0, 0)
        self.decoded = 0
        self.truncated: str | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        import av

        if self._stream is None:
            self.close()
            return
        self._stream.thread_type = "AUTO"
        try:
            for frame in self._container.decode(self._stream):
                image = frame.to_ndarray(format="rgb24")
                turns = round(getattr(frame, "rotation", 0) / 90) % 4
                if turns:  # a phone's display matrix: shown turned (counterclockwise), as FFmpeg plays it
                    image = np.ascontiguousarray(np.rot90(image, turns))
                self.decoded += 1
                yield image
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise UserError(f"{self.path}: unreadable after frame {self.decoded} ({_reason(err)})") from None
        finally:
            self.close()
        if self.frames and self.decoded < self.frames:
            self.truncated = f"{self.decoded} of the {self.frames} frames it declares"

    def close(self) -> None:
        self._container.close()


class VideoWriter:
    """Frames (H, W, 3) uint8 RGB into an H.264 MP4 (MPEG-4 part 2 where the FFmpeg build lacks x264) at
    `fps`; odd sizes are padded by one edge pixel, as the encoder's 4:2:0 colour needs even ones."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        self.fps = fps
        self._container = None
        self._stream = None

    def write(self, image: np.ndarray) -> None:
        import av

        height, width = image.shape[:2]
        if self._container is None:
            self._open(width + width % 2, height + height % 2)
        if width % 2 or height % 2:
            image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def _open(self, width: int, height: int) -> None:
        from fractions import Fraction

        import av

        # faststart: the index at the front, so the file plays while it downloads
        self._container = av.open(str(self.path), "w", format="mp4", options={"movflags": "faststart"})
        rate = Fraction(self.fps).limit_denominator(1001) if self.fps > 0 else Fraction(25)
        try:
            self._stream = self._container.add_stream("libx264", rate=rate)
            # ultrafast: 2.0 ms a 640 x 480 frame against veryfast's 5.5 (crf 23 both, one thread; the file
            # about twice the size), so that the overlay keeps up with the segmentation. One thread: the
            # frames' segmentation has the other core.
            self._stream.options = {"preset": "ultrafast", "crf": "23", "threads": "1"}
        except (av.error.FFmpegError, ValueError):  # an FFmpeg built without x264
            self._stream = self._container.add_stream("mpeg4", rate=rate)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"

    def close(self) -> None:
        """Flush the encoder and finish the file (nothing is written for a video without frames)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def list_videos(folder: Path) -> list[Path]:
    """The videos directly inside a folder (VIDEO_EXTENSIONS, any case), sorted."""
    return sorted(p for p in folder.iterdir() if is_video(p) and not p.name.startswith("."))


def video_outputs(out_dir: Path, name: str) -> list[Path]:
    """What predict.py writes for a video of this output name (its mask folder as one path)."""
    return [out_dir / f"{name}{OVERLAY_SUFFIX}", out_dir / f"{name}{MASKS_SUFFIX}", out_dir / f"{name}.json"]


def predict_video(path: Path, name: str, segmenter: Segmenter, out_dir: Path, detect_every: int,
                  smoothing: float, progress: bool = True, flip_by_turns: bool = True) -> dict:
    """Segment every frame of one video; write its overlay, masks and JSON; return its record (also in
    <name>.json). UserError when the video cannot be opened (nothing is written then)."""
    from tqdm import tqdm

    from lipseg_tf.serve.predict import _face_record, _to_json

    reader = VideoReader(path)
    masks_dir = out_dir / f"{name}{MASKS_SUFFIX}"
    masks_dir.mkdir(exist_ok=True)
    for old in masks_dir.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):  # a longer earlier run's frames
        old.unlink()
    writer = VideoWriter(out_dir / f"{name}{OVERLAY_SUFFIX}", reader.fps)
    record = {"video": str(path), "fps": round(reader.fps, 3), "width": reader.width, "height": reader.height,
              "frames": 0, "frames_declared": reader.frames, "model": str(segmenter.model.path),
              "classes": list(segmenter.classes), "overlay": f"{name}{OVERLAY_SUFFIX}",
              "masks": f"{name}{MASKS_SUFFIX}/", "detect_every": detect_every, "smoothing": smoothing,
              "flip_by_turns": segmenter.flips_by_turns(flip_by_turns, smoothing), "detections": 0,
              "frames_without_face": 0, "error": None, "per_frame": []}
    timings: dict[str, list[float]] = {}
    bar = tqdm(total=reader.frames or None, desc=path.name, unit="frame", dynamic_ncols=True,
               disable=None if progress else True)
    started = time.perf_counter()

    def write(frame) -> float:
        start = time.perf_counter()
        save_labels_png(masks_dir / f"{frame.index:06d}.png", frame.labels)
        writer.write(frame.overlay())
        return time.perf_counter() - start

    def finish(frame, written: Future) -> None:
        seconds = {**frame.seconds, "write": written.result()}  # an OSError of the writing thread rises here
        seconds["total"] = sum(seconds.values())
        record["per_frame"].append({
            "frame": frame.index, "time": None if frame.time is None else round(frame.time, 4),
            "detected": frame.detected,
            "faces": [{**_face_record(face, i, frame, segmenter.classes), "tracked": not frame.detected}
                      for i, face in enumerate(frame.faces)],
            "seconds": {k: round(v, 4) for k, v in seconds.items()}})
        if not record["frames"]:  # the frame's own size: a turned video's is not the stored one
            record["height"], record["width"] = frame.labels.shape
        record["frames"] += 1
        record["detections"] += frame.detected
        record["frames_without_face"] += not frame.faces
        for key, value in seconds.items():
            timings.setdefault(key, []).append(value)
        bar.update()

    # One writing thread (PNG and H.264 encoding release the GIL), frames in order, a few in flight.
    pending: deque[tuple[object, Future]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lipseg-video-write") as pool:
        try:
            for frame in segmenter.video(reader, detect_every=detect_every, smoothing=smoothing,
                                         flip_by_turns=flip_by_turns):
                pending.append((frame, pool.submit(write, frame)))
                while len(pending) > WRITE_AHEAD:
                    finish(*pending.popleft())
        except UserError as err:
            record["error"] = str(err)
        finally:
            while pending:
                finish(*pending.popleft())
            bar.close()
            writer.close()
    if record["error"]:
        log.warning("%s; the %d frame(s) before it are written", record["error"], record["frames"])
    elapsed = time.perf_counter() - started
    if record["error"] is None and reader.truncated:
        record["error"] = f"{path}: truncated, {reader.truncated}"
        log.warning("%s", record["error"])
    if record["frames"] == 0 and record["error"] is None:
        log.warning("%s: no video frames", path)
    record["mean_seconds"] = {k: round(sum(v) / len(v), 4) for k, v in timings.items()}
    record["fps_processed"] = round(record["frames"] / elapsed, 2) if record["frames"] else 0.0
    if not record["frames"]:
        record["overlay"] = None
    write_text(out_dir / f"{name}.json", _to_json(record))
    return record


def predict_videos(videos: Sequence[Path], names: dict[Path, str], segmenter: Segmenter, out_dir: Path,
                   summary: dict, detect_every: int = DETECT_EVERY, smoothing: float = 0.5,
                   flip_by_turns: bool = True) -> dict:
    """predict_video for each video, into the summary of the same run (predict_files', already written
    with the photos): its "videos" count and lists; returns it, also written to summary.json."""
    from lipseg_tf.serve.predict import SUMMARY_FILE, _to_json

    summary.update({"videos": 0, "frames": 0, "videos_without_frames": [], "videos_without_face": [],
                    "videos_broken": [], "complete": False})
    write_text(out_dir / SUMMARY_FILE, _to_json(summary))
    rates = []
    for path in videos:
        try:
            record = predict_video(path, names[path], segmenter, out_dir, detect_every, smoothing,
                                   flip_by_turns=flip_by_turns)
        except UserError as err:
            log.warning("skipped %s", err)
            summary["skipped"].append({"file": str(path), "reason": str(err)})
            continue
        summary["videos"] += 1
        summary["frames"] += record["frames"]
        if record["error"]:
            summary["videos_broken"].append({"file": str(path), "frames": record["frames"],
                                             "reason": record["error"]})
        elif record["frames"] == 0:
            summary["videos_without_frames"].append(str(path))
        if record["frames"] and record["frames_without_face"] == record["frames"]:
            summary["videos_without_face"].append(str(path))
        if record["frames"]:
            rates.append(record["fps_processed"])
    summary["mean_fps"] = round(math.fsum(rates) / len(rates), 2) if rates else None
    summary["complete"] = True
    write_text(out_dir / SUMMARY_FILE, _to_json(summary))
    return summary
