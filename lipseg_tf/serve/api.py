"""The Python API: one Segmenter object for photos, aligned faces and videos, which predict.py also uses.

    import lipseg_tf
    seg = lipseg_tf.Segmenter()              # the shipped model; Segmenter("export/unet") for your own
    result = seg("photo.jpg")                # a path, a PIL image or a uint8 (H, W, 3) array
    result.labels                            # (H, W) uint8 class ids; result.classes names them
    result.faces                             # box, landmarks, confidence per face
    result.overlay()                         # (H, W, 3) uint8: the photo with the parts coloured
    seg.aligned(face)                        # an already-aligned face in the model's framing: no detection
    for frame in seg.video("clip.mp4"): ...  # per-frame results, tracked and smoothed

The work is serve/predict.py's (Model, segment_photo, paste_faces, overlay) and serve/detect.py's; this module
turns what a user has into what those take and gives back one plain result object.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from lipseg_tf import quiet
from lipseg_tf.errors import UserError
from lipseg_tf.prep.imageio import image_to_rgb, load_rgb
from lipseg_tf.serve import detect, predict
from lipseg_tf.serve.detect import DETECTORS, Face
from lipseg_tf.serve.predict import Model
from lipseg_tf.serve.track import DETECT_EVERY

# The pretrained models are package data (lipseg_tf/pretrained/, in the wheel too), found through the
# package wherever it is installed and whatever the working directory. Each has a name a user can pass
# instead of a folder (Segmenter("small"), predict.py --model small); lipseg_tf/pretrained/MODEL.md
# says what each costs and scores.
PRETRAINED_DIR = Path(str(resources.files("lipseg_tf") / "pretrained"))
PRETRAINED = {"fast": "unet", "accurate": "unet-accurate", "small": "unet-small"}
# The default since 2026-12-02: as accurate as "fast" with detection (dev val photos mean F1 0.862 against
# 0.860, test 0.866 against 0.865) at half its network time (MODEL.md).
DEFAULT_MODEL_NAME = "lipseg_tf/pretrained/unet-small"
DEFAULT_MODEL = PRETRAINED_DIR / PRETRAINED["small"]


def model_folder(model: str | os.PathLike | None) -> Path:
    """The export folder a Segmenter loads: `model` as a folder, the shipped model of that name ("fast",
    "accurate", "small") when no such folder exists, or the default (small) one for None; UserError when a shipped model
    is missing."""
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise UserError(f"model: expected a shipped model's name ({', '.join(PRETRAINED)}) or an export folder, "
                        f"got {type(model).__name__}")
    if model is not None and (str(model) not in PRETRAINED or Path(model).exists()):
        if not Path(model).exists() and isinstance(model, str) and os.sep not in model:
            raise UserError(f"{model}: neither a shipped model ({', '.join(PRETRAINED)}) nor a model folder (expected "
                            "the --output_dir of unet.py / pix2pix.py --mode export)")
        return Path(model)
    folder = PRETRAINED_DIR / PRETRAINED[str(model)] if model is not None else DEFAULT_MODEL  # a name or Path("fast")
    if not folder.is_dir():
        raise UserError(f"the pretrained model {folder} is missing: pass a model folder (an export folder of "
                        "unet.py / pix2pix.py --mode export)")
    return folder


@dataclasses.dataclass
class Result:
    """What the Segmenter found in one image (a photo or a video frame).

    image        (H, W, 3) uint8: the image as segmented (a file or PIL image converted to RGB)
    labels       (H, W) uint8 class ids at the image's size: 0 background, then the parts (classes[1:])
    classes      the class names, classes[k] for label k ("background", "l_eye", "r_eye", "u_lip", "l_lip")
    colors       (C, 3) uint8: each class's mask colour
    faces        one Face per face: box (x, y, width, height), keypoints (K, 2) named by keypoint_names
                 (BlazeFace 6: eyes, nose, mouth, ears; MTCNN 5: eyes, nose, mouth corners; None without
                 detection),
                 confidence (None without detection), in image pixels
    transforms   one (2, 3) image -> crop similarity per face
    owner        (H, W) int16: the face index each part pixel came from, -1 for none
    crop_labels  (faces, S, S) uint8: each face's labels in its aligned crop at the model's size, or None
    seconds      the time of each step
    """

    image: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    colors: np.ndarray
    faces: list[Face]
    transforms: list[np.ndarray]
    owner: np.ndarray
    crop_labels: np.ndarray | None
    seconds: dict[str, float]

    def mask(self, part: str) -> np.ndarray:
        """(H, W) bool: where the class named `part` is (ValueError names the classes)."""
        if part not in self.classes:
            raise ValueError(f"unknown part {part!r}, valid: {', '.join(self.classes)}")
        return self.labels == self.classes.index(part)

    def overlay(self) -> np.ndarray:
        """(H, W, 3) uint8: the image with each part in its mask colour, face boxes and landmarks drawn."""
        return predict.overlay(self.image, self, self.colors)


@dataclasses.dataclass
class VideoFrame(Result):
    """One frame of Segmenter.video: a Result, and index (from 0), time (seconds from the start; None
    when the frames come without a rate) and detected (whether the detector ran on this frame; the faces
    of the other frames are tracked from the previous one)."""

    index: int = 0
    time: float | None = None
    detected: bool = False


def as_rgb(image, name: str = "image") -> np.ndarray:
    """A path, a PIL image or a uint8 array (H, W, 3) -> (H, W, 3) uint8; UserError for anything else."""
    if isinstance(image, (str, os.PathLike)):
        return load_rgb(image)
    if isinstance(image, Image.Image):
        return image_to_rgb(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise UserError(f"{name}: expected a uint8 array of shape (H, W, 3) (RGB), got {image.dtype} "
                            f"of shape {image.shape}")
        return image
    raise UserError(f"{name}: expected a file path, a PIL image or a uint8 (H, W, 3) array, got "
                    f"{type(image).__name__}")


class Segmenter:
    """Lips and eyes in photos, aligned faces and videos, with an exported model.

    model           an export folder (unet.py / pix2pix.py --mode export --output_dir), or the name of a
                    shipped model: "small" (the default, None: a U-Net on 2 x 2 patches, mean F1 0.866 on
                    real faces with detection), "fast" (full resolution, four times the weights and 3.5
                    times the model time: 0.865) or "accurate" (256 px and 1.5 times the fast one's
                    width: 0.893 pasted back, about 20 times the fast one's model time, having no TFLite
                    copy); lipseg_tf/pretrained/MODEL.md
    detector        "blazeface" (default) or "mtcnn" (serve/detect.py); None: no detection, every image is an
                    aligned face (as aligned()); or any callable (H, W, 3) uint8 -> list[Face]
    min_face        smallest face to keep, in pixels (the detector box's longer side)
    min_confidence  smallest detector confidence (0-1) to keep a face; None: the detector's own default
                    (blazeface 0.7, mtcnn 0.9)
    tta             "flip": average each face with its mirror image (twice the model time); None or "none":
                    the model's own (the shipped models flip); "off": never (half the model time, with
                    the TFLite runtime; mean F1 0.860 against 0.862 on the speed scenes)
    framing         where faces are put in the crop ("sample" or "celebahq"); None: the model's own
    runtime         what runs the network: "auto" (the default: the TFLite copy with int8 weights beside the
                    SavedModel when the folder has one, as the shipped small and fast models do; several times
                    faster on a CPU; of two copies, as the small model has, the faster here, timed on
                    loading), "tflite" (that copy, UserError without it) or "savedmodel"

    The detector is built on the first detection, so a Segmenter used only for aligned faces never loads
    it. A bad model folder or option raises UserError (one line).
    """

    def __init__(self, model: str | os.PathLike | None = None, *,
                 detector: str | Callable | None = detect.DEFAULT_DETECTOR, min_face: int = 40,
                 min_confidence: float | None = None, tta: str | None = None,
                 framing: str | None = None, runtime: str = "auto"):
        if not isinstance(min_face, (int, np.integer)) or min_face < 1:
            raise UserError(f"min_face: expected a positive number of pixels, got {min_face!r}")
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise UserError(f"min_confidence: expected a value from 0 to 1, got {min_confidence!r}")
        if isinstance(detector, str) and detector not in DETECTORS:
            raise UserError(f"detector {detector!r} unknown, valid: {', '.join(DETECTORS)}")
        quiet.import_tensorflow_quietly()  # its start-up lines ("Could not find cuda drivers") off stderr
        # Loading the SavedModel writes a line of its own on some CPUs ("E0000 ... util.cc:131] oneDNN
        # supports DT_HALF only on platforms with AVX-512"): off stderr too, unless the lipseg_tf logger is
        # at DEBUG (what went there is shown when loading fails).
        with quiet.caught_stderr():
            self.model = Model(model_folder(model), framing, None if tta == "none" else tta, runtime)
        self.min_face = int(min_face)
        self.min_confidence = None if min_confidence is None else float(min_confidence)
        self.detector_choice = detector
        self._detector = None if isinstance(detector, str) else detector
        self._video = None   # video()'s detector (_video_detector)
        self._making = threading.Lock()  # the detectors are built once, also when threads share this

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names: classes[k] is label k, classes[0] "background"."""
        return self.model.classes

    @property
    def colors(self) -> np.ndarray:
        """(C, 3) uint8: each class's mask colour."""
        return self.model.colors

    @property
    def detects(self) -> bool:
        """False when built with detector=None: every image is taken as an aligned face."""
        return self.detector_choice is not None

    @property
    def detector(self) -> Callable[[np.ndarray], list[Face]] | None:
        """The face detector, built on first use (None with detector=None)."""
        with self._making:  # built once, whichever thread asks first
            if self._detector is None and self.detector_choice is not None:
                self._detector = detect.make_detector(self.detector_choice, self.min_face, self.min_confidence)
        return self._detector

    def _video_detector(self) -> Callable[[np.ndarray], list[Face]]:
        """The detector of video(): a named one with every second look taken (detect.make_detector's
        every_look), since frames are detected only now and then; a detector passed in as it is."""
        if not isinstance(self.detector_choice, str):
            return self._detector
        with self._making:
            if self._video is None:
                self._video = detect.make_detector(self.detector_choice, self.min_face, self.min_confidence,
                                                   every_look=True)
        return self._video

    def __call__(self, image, name: str = "image") -> Result:
        """Segment every face of a photo (a path, a PIL image or a uint8 (H, W, 3) array) -> Result with
        labels (H, W) at the photo's size; a photo without a face gets all-background labels."""
        photo = as_rgb(image, _name_of(image, name))
        return self._result(photo, predict.segment_photo(photo, self.model, self.detector, mirror_thread=True))

    def aligned(self, image, name: str = "image") -> Result:
        """Segment an already-aligned face (a whole image framed as the model's training faces, e.g. a
        CelebA-HQ image, any size) with no detection: the model sees its crop box of it (classes.json
        "crop"; the whole image without one) -> Result with labels (H, W) at the image's size."""
        photo = as_rgb(image, _name_of(image, name))
        return self._result(photo, predict.segment_photo(photo, self.model, None, mirror_thread=True))

    def video(self, video, *, detect_every: int = DETECT_EVERY, smoothing: float = 0.5,
              realign: bool = True, flip_by_turns: bool = True) -> Iterator[VideoFrame]:
        """Segment the frames of a video file (a path) or of any iterable of frames (uint8 (H, W, 3)
        arrays or PIL images, e.g. from a camera), one VideoFrame at a time, labels (H, W) each.

        Faces are detected on the first frame, every `detect_every` frames and whenever a track is lost,
        and tracked in between (serve/track.py); `smoothing` (0 to <1, 0 off) is the weight of the past
        in a moving average of each face's probabilities, so masks do not flicker; realign=False keeps
        the detection's alignment until the next detection. With the flip average done in two runs of
        the network (the shipped models), flip_by_turns runs one of them a tracked frame, the image and its
        mirror image by turns, and while a face is still counts each frame's with the last frame's (half
        the model time; False: both runs every frame). A video that cannot be read raises
        UserError (after the frames before the damage, for one that breaks off). Each frame's smoothing
        and paste-back run on a thread while the next frame is segmented (FaceTracker.stream), so a frame
        comes out once the next has been read: one frame of delay for a live camera.
        """
        from lipseg_tf.serve.track import FaceTracker
        from lipseg_tf.serve.video import VideoReader

        if not isinstance(detect_every, (int, np.integer)) or detect_every < 1:
            raise UserError(f"detect_every: expected a whole number of frames >= 1, got {detect_every!r}")
        if not 0.0 <= smoothing < 1.0:
            raise UserError(f"smoothing: expected a weight from 0 (off) to below 1, got {smoothing!r}")
        if not isinstance(video, (str, os.PathLike)) and not hasattr(video, "__iter__"):
            raise UserError(f"video: expected a video file's path or an iterable of frames, got {type(video).__name__}")
        frames = VideoReader(video) if isinstance(video, (str, os.PathLike)) else video
        detector = self._video_detector() if self.detects else _aligned_detector
        tracker = FaceTracker(self.model, detector, detect_every, smoothing, realign and self.detects,
                              prefilter=self.detects, flip_by_turns=flip_by_turns)
        return self._video_frames(frames, tracker)

    def flips_by_turns(self, flip_by_turns: bool = True, smoothing: float = 0.5) -> bool:
        """Whether video(flip_by_turns=..., smoothing=...) runs the flip average's halves by turns: only
        where the model does that average in two runs of its network, and with smoothing."""
        from lipseg_tf.serve.track import flips_by_turns
        return flips_by_turns(self.model, flip_by_turns, smoothing)

    def _video_frames(self, frames: Iterable, tracker) -> Iterator[VideoFrame]:
        fps = getattr(frames, "fps", 0.0) or 0.0

        def photos():
            for index, (image, decode_seconds) in enumerate(_timed(frames)):
                photo = as_rgb(image, f"frame {index}")
                yield photo, (photo, index, decode_seconds)

        # Pipelined (FaceTracker.stream): each frame comes once the next one has been read.
        for (photo, index, decode_seconds), found in tracker.stream(photos()):
            yield VideoFrame(photo, found.labels, self.classes, self.colors, found.faces, found.transforms,
                             found.owner, found.crop_labels, {"decode": decode_seconds, **found.seconds},
                             index=index, time=index / fps if fps else None, detected=found.detected)

    def segment_crops(self, crops: np.ndarray) -> np.ndarray:
        """uint8 crops (N, S, S, 3) at the model's size and framing -> class probabilities (N, S, S, C)."""
        return self.model(crops)

    def _result(self, photo: np.ndarray, found: predict.PhotoResult) -> Result:
        return Result(photo, found.labels, self.classes, self.colors, found.faces, found.transforms,
                      found.owner, found.crop_labels, found.seconds)


def _name_of(image, default: str) -> str:
    return str(image) if isinstance(image, (str, os.PathLike)) else default


def _timed(frames: Iterable) -> Iterator[tuple[object, float]]:
    """Each frame of an iterable with the seconds it took to come."""
    iterator = iter(frames)
    while True:
        start = time.perf_counter()
        try:
            frame = next(iterator)
        except StopIteration:
            return
        yield frame, time.perf_counter() - start


def _aligned_detector(photo: np.ndarray) -> list[Face]:
    """The "detector" of a Segmenter built with detector=None: the whole image is one aligned face."""
    return [Face((0.0, 0.0, float(photo.shape[1]), float(photo.shape[0])), None, None)]
