"""Lips and eyes in any photo, with an exported model: the work of predict.py (cli/predict.py).

For each photo: find the faces (serve/detect.py: BlazeFace by default, or MTCNN), keep those at least
--min-face pixels tall and wide-ish (the detector box's longer side) and at least --min-confidence
sure; align each with the similarity transform that puts its eyes and mouth corners (MTCNN), or its
eyes and mouth centre (BlazeFace), where the model's training faces had them (serve/align.py), cut the
crop at the model's input size, segment the crops of several photos in one batch, resample each
crop's class probabilities back into the photo through the inverse transform (bilinear) and take their
argmax there, so the labels are never interpolated and a large face's mask has no blocky borders.
Where two faces' crops overlap, a part label beats background and the more probable of two part
labels wins.

A model trained on a box of the framing (classes.json "crop": [x0, y0, side], process.py --crop) gets
faces aligned to that box; with --no-detect it sees that box of each photo. With --tta flip (or a
model exported with it) each crop's probabilities are averaged with those of its mirror image, flipped
back and with the left/right classes swapped.

Writes into --output, for a photo <name>.<ext>, the outputs --save names (default mask,json):

    <name>-mask.png     class ids at the photo's full size (uint8, 0 background, then the parts)
    <name>-overlay.png  the photo with the parts in their mask colours, face boxes and landmarks (overlay)
    <name>.json         size, each face's box, landmarks, detector confidence, transform and pixel area
                        per part, the time of each step
    summary.json        photos, faces, photos without a face, skipped files, mean times, wall time

predict_files overlaps the steps across photos: a loader thread decodes photos ahead, a detector thread
finds their faces, the main thread aligns, segments and pastes back, a writer thread encodes and writes.

A photo without a face gets an all-background mask and is listed in the summary: not an error. An
unreadable file is named, skipped and listed; the run goes on and then exits with status 1.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import logging
import re
import statistics
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from lipseg_tf.errors import UserError
from lipseg_tf.memory import keep_freed_memory
from lipseg_tf.prep import folders
from lipseg_tf.prep.imageio import load_rgb, save_image, save_labels_png, write_text
from lipseg_tf.prep.parts import mirror_permutation
from lipseg_tf.serve import align, model_meta
from lipseg_tf.serve.detect import MTCNN_KEYPOINTS as KEYPOINTS  # noqa: F401  (kept importable from here)
from lipseg_tf.serve.detect import MTCNN_MIN_FACE, Face  # noqa: F401
from lipseg_tf.serve.detect import MTCNNDetector as FaceDetector  # noqa: F401

if TYPE_CHECKING:
    from lipseg_tf.serve.api import Segmenter

log = logging.getLogger("lipseg_tf")

SUMMARY_FILE = "summary.json"
OVERLAY_ALPHA = 0.55


TTA_CHOICES = ("none", "flip", "off")
RUNTIMES = ("auto", "tflite", "savedmodel")


class Model:
    """An exported SavedModel (unet.py / pix2pix.py --mode export) and what its classes.json says.

    tta 'flip' averages each crop's probabilities with those of its mirror image (left/right classes
    swapped) unless the model already does so inside its graph (classes.json "tta": "flip"); None or
    'none' keeps the model's own; 'off' never flips, which a graph that flips allows only through its
    TFLite copy (half the model time; on the 475 speed scenes mean F1 0.860 against 0.862).

    runtime: what runs the network on the aligned crops. "savedmodel": the SavedModel's serve_crop.
    "tflite": the TensorFlow Lite copy of its network beside it (serve/tflite.py CROP_TFLITE, written by
    `python -m lipseg_tf.tools.reexport --tflite`: weights int8, no flip inside, so the flip average of
    a flip model is done here, two runs a face); UserError when the folder has none. Where there are two
    copies (CROP_TFLITES: activations int8 and float), both are timed on loading and the faster is kept
    (serve/fastest.py; `lite_file`, the name of one of them, pins it). "auto" (the default): the TFLite
    copy when there is one, else the SavedModel.
    """

    def __init__(self, path: str | Path, framing: str | None = None, tta: str | None = None,
                 runtime: str = "auto", lite_file: str | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError(f"{self.path}: model folder not found (expected the --output_dir of "
                            "unet.py / pix2pix.py --mode export)")
        if not (self.path / "saved_model.pb").is_file():
            raise UserError(f"{self.path}: no saved_model.pb (expected the --output_dir of "
                            "unet.py / pix2pix.py --mode export)")
        meta_file = self.path / model_meta.META_FILE
        meta = model_meta.read_classes_json(meta_file)  # every field checked; against the graph below
        self.image_size = meta.image_size
        self.classes = meta.classes
        self.colors = meta.colors
        self.framing = framing or meta.framing or "celebahq"
        if self.framing not in align.FRAMINGS:
            raise UserError(f"--framing {self.framing!r} unknown, valid: {', '.join(align.FRAMINGS)}")
        self.crop = meta.crop
        if tta not in (None, *TTA_CHOICES):
            raise UserError(f"--tta {tta!r} unknown, valid: {', '.join(TTA_CHOICES)}")
        self.tta = "flip" if "flip" in (tta, meta.tta) and tta != "off" else None
        # The flip average is done here only when the graph does not do it already.
        self._flip_here = tta == "flip" and meta.tta != "flip"
        self._mirror = mirror_permutation(self.classes)
        # a mirror image's class ids -> the image's: where class c's probabilities come from _mirror[c]
        self._unmirror_labels = np.argsort(self._mirror).astype(np.uint8)
        import tensorflow as tf
        try:
            loaded = tf.saved_model.load(str(self.path))
            # serve_crop takes the aligned crop; exports without it took the crop in serving_default.
            signatures = loaded.signatures
            self._serve = signatures["serve_crop" if "serve_crop" in signatures else "serving_default"]
        except Exception as err:  # TensorFlow raises several types for a damaged SavedModel
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"{self.path}: not a readable SavedModel ({reason}); expected the --output_dir of "
                            "unet.py / pix2pix.py --mode export") from None
        model_meta.check_against_graph(meta, meta_file, loaded, self._serve)
        if runtime not in RUNTIMES:
            raise UserError(f"--runtime {runtime!r} unknown, valid: {', '.join(RUNTIMES)}")
        from lipseg_tf.serve import tflite
        if lite_file is not None and lite_file not in tflite.CROP_TFLITES:
            raise ValueError(f"lite_file {lite_file!r}: expected one of {', '.join(tflite.CROP_TFLITES)}")
        lite_files = [self.path / name for name in ([lite_file] if lite_file else tflite.CROP_TFLITES)
                      if (self.path / name).is_file()]
        if (runtime == "tflite" or lite_file) and not lite_files:
            missing = self.path / (lite_file or tflite.CROP_TFLITE)
            raise UserError(f"{missing}: not found (--runtime tflite needs the TFLite copy of the network that "
                            "python -m lipseg_tf.tools.reexport --tflite writes beside saved_model.pb)")
        self._lite = None
        self.lite_seconds: dict[str, float] = {}  # each TFLite copy's best time a run, when both were timed
        if runtime != "savedmodel" and lite_files:
            self._lite, self.lite_seconds = self._fastest_lite(lite_files)
        self.runtime = "tflite" if self._lite is not None else "savedmodel"
        self._mirror_pool = self._mirror_lite = None  # __call__'s mirror_thread
        self._mirror_lock = threading.Lock()
        if tta == "off" and meta.tta == "flip" and self._lite is None:
            raise UserError(f"--tta off: {self.path}'s graph averages each face with its mirror image itself "
                            f"(classes.json tta flip); only its TFLite copy ({tflite.CROP_TFLITE}, --runtime "
                            "tflite) runs without")

    def _fastest_lite(self, files: list[Path]):
        """The CropNetwork of whichever of `files` runs a crop fastest here (serve/fastest.py), and each
        one's best seconds a run ({} for a single file)."""
        from lipseg_tf.serve import tflite
        from lipseg_tf.serve.fastest import fastest

        networks = {path: tflite.CropNetwork(path, self.image_size, len(self.classes)) for path in files}
        crop = np.zeros((1, self.image_size, self.image_size, 3), np.uint8)
        chosen, seconds = fastest({path: functools.partial(network, crop) for path, network in networks.items()},
                                  margin=LITE_MARGIN)
        return networks[chosen], {path.name: round(value, 5) for path, value in seconds.items()}

    @property
    def lite_path(self) -> Path | None:
        """The TFLite copy that runs the network (None with the SavedModel runtime)."""
        return None if self._lite is None else self._lite.path

    def _mirror_runner(self):
        """The thread and the second TFLite interpreter of __call__'s mirror_thread, made on first use."""
        with self._mirror_lock:  # made once, whichever thread asks first
            if self._mirror_pool is None:
                from concurrent.futures import ThreadPoolExecutor

                from lipseg_tf.serve import tflite
                self._mirror_lite = tflite.CropNetwork(self._lite.path, self.image_size, len(self.classes))
                self._mirror_pool = ThreadPoolExecutor(1, thread_name_prefix="mirror")
        return self._mirror_pool

    @property
    def two_runs(self) -> bool:
        """Whether the flip average is two runs of the network done here (TFLite copy, tta flip), which
        `sides` and __call__'s `side` can give apart."""
        return self._lite is not None and self.tta == "flip"

    def __call__(self, images: np.ndarray, mirror_thread: bool = False, side: str | None = None) -> np.ndarray:
        """uint8 images (N, H, W, 3) -> class probabilities (N, H, W, C); with the TFLite runtime the
        images are crops at image_size. mirror_thread: with the TFLite runtime and the flip average, the
        mirror images run at the same time on a thread and interpreter of their own (for a caller that
        leaves a core free: video frames, which come one after the other). side: where two_runs, only one
        of the flip average's two runs, "image" or "mirror" (as `sides` gives them)."""
        if side is not None and self.two_runs:
            if side == "image":
                return self._lite(images)
            return self._unmirror(self._lite(np.ascontiguousarray(images[:, :, ::-1])))
        if self.two_runs:
            return self.join(*self.sides(images, mirror_thread))
        if self._lite is not None:
            return self._lite(images)
        import tensorflow as tf
        probabilities = self._serve(images=tf.constant(images, tf.uint8))["probabilities"].numpy()
        if self._flip_here:
            mirrored = self._serve(images=tf.constant(images[:, :, ::-1], tf.uint8))["probabilities"].numpy()
            probabilities = 0.5 * (probabilities + self._unmirror(mirrored))
        return probabilities

    def side_with_labels(self, images: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
        """__call__'s one run of the flip average (`side` "image" or "mirror", where two_runs) with its labels
        (N, S, S) uint8, the TFLite copy's own argmax (a mirror image's flipped back and swapped as its
        probabilities are): no second argmax over the probabilities."""
        if not self.two_runs or side not in ("image", "mirror"):
            raise ValueError(f"Model.side_with_labels: side {side!r} needs two_runs and 'image' or 'mirror'")
        if side == "image":
            return self._lite.with_labels(images)
        probabilities, labels = self._lite.with_labels(np.ascontiguousarray(images[:, :, ::-1]))
        return self._unmirror(probabilities), self._unmirror_labels[labels[:, :, ::-1]]

    def sides(self, images: np.ndarray, mirror_thread: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The flip average's two runs apart, where two_runs: (the images' probabilities, their mirror
        images' flipped back with the left/right classes swapped), each (N, S, S, C) float32."""
        if not self.two_runs:
            raise ValueError("Model.sides: the flip average is not two TFLite runs here (two_runs is False)")
        flipped = np.ascontiguousarray(images[:, :, ::-1])
        if mirror_thread:
            pending = self._mirror_runner().submit(self._mirror_lite, flipped)
            probabilities = self._lite(images)
            mirrored = pending.result()
        else:
            probabilities, mirrored = self._lite(images), self._lite(flipped)
        return probabilities, self._unmirror(mirrored)

    @staticmethod
    def join(probabilities: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
        """The flip average of `sides`' two runs, in place of the first (no fresh temporaries)."""
        probabilities += mirrored
        probabilities *= np.float32(0.5)
        return probabilities

    def _unmirror(self, probabilities: np.ndarray) -> np.ndarray:
        """A mirror image's probabilities (N, S, S, C) flipped back, left/right classes swapped (a copy)."""
        return probabilities[:, :, ::-1][..., self._mirror]


@dataclasses.dataclass
class PhotoResult:
    labels: np.ndarray                    # (H, W) uint8 class ids
    faces: list[Face]
    transforms: list[np.ndarray]          # photo -> crop, one per face
    owner: np.ndarray                     # (H, W) int16: the face each part pixel came from, -1 none
    seconds: dict[str, float]
    crop_labels: np.ndarray | None = None  # (faces, S, S) uint8: each crop's labels at the model's size


@dataclasses.dataclass
class PreparedPhoto:
    """One photo between detection and the model: its faces, their transforms and aligned crops."""

    shape: tuple[int, int]
    faces: list[Face]
    transforms: list[np.ndarray]
    crops: np.ndarray | None                # (faces, S, S, 3) uint8; None without a face
    seconds: dict[str, float]


def prepare_photo(photo: np.ndarray, model: Model, detector, found: tuple[list, float] | None = None
                  ) -> PreparedPhoto:
    """Detect the faces of a photo and cut their aligned crops (segment_photo's first half).

    detector None (--no-detect): the photo already is an aligned face, framed as the model's training
    photos; the model sees its crop box (classes.json "crop"; the whole photo without one). found: the
    detector's faces and seconds, when it already ran (predict_files runs it beside the model).
    """
    height, width = photo.shape[:2]
    seconds = {}
    start = time.perf_counter()
    size = model.image_size
    if found is not None:
        faces, seconds["detect"] = found
        transforms = [face.transform(size, model.framing, model.crop) for face in faces]
    elif detector is None:
        transforms = [align.box_transform((height, width), size, model.crop)]
        (x0, y0), _, (x1, y1), _ = align.crop_corners(transforms[0], size) + 0.0  # + 0.0: no -0.0
        faces = [Face((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), None, None)]
    else:
        faces = detector(photo)
        seconds["detect"] = time.perf_counter() - start
        start = time.perf_counter()
        transforms = [face.transform(size, model.framing, model.crop) for face in faces]
    # Detected faces are cut with the cheaper prefiltered warp; --no-detect's crop box exactly as the
    # SavedModel's serving_default cuts it inside its graph.
    prefilter = found is not None or detector is not None
    crops = np.stack([align.warp_face(photo, matrix, size, prefilter) for matrix in transforms]) if faces else None
    seconds["align_and_model"] = time.perf_counter() - start
    return PreparedPhoto((height, width), faces, transforms, crops, seconds)


def finish_photo(prepared: PreparedPhoto, crop_probs: np.ndarray | None) -> PhotoResult:
    """Paste the model's probabilities of a prepared photo's crops back into it (segment_photo's
    second half)."""
    start = time.perf_counter()
    crop_labels = None if crop_probs is None else align.class_argmax(crop_probs)
    labels, owner = paste_faces(crop_probs, prepared.transforms, prepared.shape, crop_labels)
    seconds = {**prepared.seconds, "paste": time.perf_counter() - start}
    return PhotoResult(labels, prepared.faces, prepared.transforms, owner, seconds, crop_labels)


def segment_photos(photos: Sequence[np.ndarray], model: Model, detector,
                   found: Sequence[tuple[list, float] | None] | None = None,
                   mirror_thread: bool = False) -> list[PhotoResult]:
    """segment_photo for several photos, with one model call over all their faces (each photo's
    align_and_model time gets its faces' share of it); found: each photo's faces and detection
    seconds where the detector already ran; mirror_thread: Model's (for a caller with a core free)."""
    found = found or [None] * len(photos)
    prepared = [prepare_photo(photo, model, detector, f) for photo, f in zip(photos, found)]
    crops = [p.crops for p in prepared if p.crops is not None]
    if not crops:
        return [finish_photo(p, None) for p in prepared]
    start = time.perf_counter()
    crop_probs = model(np.concatenate(crops), mirror_thread=mirror_thread)
    per_face = (time.perf_counter() - start) / len(crop_probs)
    results, first = [], 0
    for p in prepared:
        count = len(p.faces) if p.crops is not None else 0
        p.seconds["align_and_model"] += per_face * count
        results.append(finish_photo(p, crop_probs[first:first + count] if count else None))
        first += count
    return results


def segment_photo(photo: np.ndarray, model: Model, detector, mirror_thread: bool = False) -> PhotoResult:
    """Detect, align, segment and paste back every face of one photo.

    detector None (--no-detect): the photo already is an aligned face, framed as the model's training
    photos; the model sees its crop box (classes.json "crop"; the whole photo without one).
    mirror_thread: Model's, for a caller that leaves a core free (the Segmenter, one photo a call).
    """
    return segment_photos([photo], model, detector, mirror_thread=mirror_thread)[0]


def paste_faces(crop_probs: np.ndarray | None, transforms: Sequence[np.ndarray],
                shape: tuple[int, int], crop_labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every face's class probabilities (N, S, S, C), resampled into the photo (align.paste_argmax)
    -> (labels (H, W) uint8, owner (H, W) int16: the face each part pixel came from, -1 none).
    crop_labels: the crops' own argmax (N, S, S), when it is at hand. crop_probs may also be a list of each
    face's align.class_groups (the tracker's averages); crop_labels must then be given.

    Where crops overlap, a part beats background and the more probable of two parts wins.
    """
    labels = np.zeros(shape, np.uint8)
    owner = np.full(shape, -1, np.int16)
    # The winning probability of each pixel so far: only where faces can overlap (one face wins alone).
    best = np.zeros(shape, np.float32) if len(transforms) > 1 else None
    if crop_labels is None and crop_probs is not None:
        crop_labels = align.class_argmax(crop_probs)
    for index, matrix in enumerate(transforms):
        box = align.labels_box(crop_labels[index])
        if box is None:
            continue  # all background: nothing to paste
        (y0, y1, x0, x1), face_labels, face_best = align.paste_argmax(crop_probs[index], matrix, shape, box)
        window = labels[y0:y1, x0:x1]
        if best is None:
            wins = face_labels > 0
        else:
            window_best = best[y0:y1, x0:x1]
            wins = (face_labels > 0) & ((window == 0) | (face_best > window_best))
            window_best[wins] = face_best[wins]
        window[wins] = face_labels[wins]
        owner[y0:y1, x0:x1][wins] = index
    return labels, owner


def overlay(photo: np.ndarray, result: PhotoResult, colors: np.ndarray) -> np.ndarray:
    """The photo with each part in its mask colour, and each detected face's box and landmarks."""
    blended = photo.copy()  # only the part pixels are mixed with their colour (in float32, rounded) ...
    parts = result.labels > 0
    rows, cols = np.flatnonzero(parts.any(1)), np.flatnonzero(parts.any(0))
    if len(rows):  # ... within the box around them, where the masks are looked up
        window = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        inside, pixels = parts[window], blended[window]
        mixed = ((1 - OVERLAY_ALPHA) * pixels[inside].astype(np.float32)
                 + OVERLAY_ALPHA * colors[result.labels[window][inside]])
        pixels[inside] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    # Boxes and keypoints drawn by OpenCV into the array itself, at 1/16 px: PIL's draw took 0.7 ms a
    # 640 x 480 video frame, most of it copying the frame into an image and back
    line = max(1, round(max(photo.shape[:2]) / 400))
    reach = 4 * max(photo.shape[:2])  # points far off the photo are drawn where they stay in int32 at 1/16 px
    inset = line / 2  # OpenCV centres a line on the outline, PIL drew it inside: the same outer edge
    for face in result.faces:
        if face.keypoints is None:
            continue
        x, y, w, h = face.box
        cv2.rectangle(blended, _subpixel(x + inset, y + inset, reach), _subpixel(x + w - inset, y + h - inset, reach),
                      (255, 255, 255), line, cv2.LINE_8, _SUBPIXEL_BITS)
        for px, py in face.keypoints:
            cv2.circle(blended, _subpixel(px, py, reach), round((2 * line - inset + 0.5) * (1 << _SUBPIXEL_BITS)),
                       (255, 255, 255), line, cv2.LINE_8, _SUBPIXEL_BITS)
    return blended


_SUBPIXEL_BITS = 4


def _subpixel(x: float, y: float, reach: float) -> tuple[int, int]:
    """A point for OpenCV's drawing with _SUBPIXEL_BITS fractional bits, its pixel centres at whole
    numbers (this module's at +0.5), within `reach` of the photo."""
    x, y = (min(max(float(v), -reach), reach) if np.isfinite(v) else -reach for v in (x, y))
    return round((x - 0.5) * (1 << _SUBPIXEL_BITS)), round((y - 0.5) * (1 << _SUBPIXEL_BITS))


def _part_areas(labels: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """Pixels of each part class (classes[1:]) in labels: one comparison a class (several times cheaper
    than a bincount over a whole photo)."""
    return {name: int(np.count_nonzero(labels == k)) for k, name in enumerate(classes) if k > 0}


def _faces_window(transforms: Sequence[np.ndarray], size: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The part of a photo of `shape` (H, W) that the faces' size x size crops cover (photo -> crop
    `transforms`), where paste_faces puts every part pixel: the photo's areas counted there alone
    (a 1024 x 768 speed scene's in 0.10 ms against 0.35 counted whole)."""
    if not transforms:
        return slice(0, 0), slice(0, 0)
    corners = np.concatenate([align.crop_corners(matrix, size) for matrix in transforms])
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    return slice(int(y0), int(min(y1, shape[0]))), slice(int(x0), int(min(x1, shape[1])))


def _face_record(face: Face, index: int, result: PhotoResult, classes: Sequence[str],
                 photo_area: dict[str, int] | None = None) -> dict:
    record = {"box": [round(v, 1) for v in face.box],
              "confidence": None if face.confidence is None else round(face.confidence, 4)}
    if face.keypoints is not None:
        record["landmarks"] = {name: [round(float(x), 1), round(float(y), 1)]
                               for name, (x, y) in zip(face.keypoint_names, face.keypoints)}
        record["photo_to_crop"] = np.round(result.transforms[index], 6).tolist()
    if len(result.faces) == 1 and photo_area is not None:
        record["area"] = dict(photo_area)  # every part pixel is the one face's
    else:
        record["area"] = _part_areas(result.labels[result.owner == index], classes)
    return record


def _to_json(data) -> str:
    """Indented JSON with each list of numbers on one line (boxes, points, matrix rows)."""
    text = json.dumps(data, indent=2)
    return re.sub(r"\[\s+([-0-9.eE,\s]+?|null)\s+\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text) + "\n"


def _output_names(files: Sequence[Path]) -> dict[Path, str]:
    """Output name of each input: its stem, or stem_ext where two inputs share a stem (a.jpg, a.png)."""
    stems = [f.stem for f in files]
    return {f: f.stem if stems.count(f.stem) == 1 else f"{f.stem}_{f.suffix.lstrip('.').lower()}" for f in files}


SAVE_CHOICES = ("mask", "json", "overlay")
DEFAULT_SAVE = ("mask", "json")
READ_AHEAD = 2   # photos decoded ahead of the batch being segmented
# A model's first TFLite copy (tflite.CROP_TFLITES: the int8 one) runs unless another is faster by more than
# this share (serve/fastest.py): on a Xeon kept off AMX the two took 1.24 and 1.29 ms a run, and the choice
# went either way from one load to the next, each copy with its own rounding (synthetic clip F1 0.927 or
# 0.926).
LITE_MARGIN = 0.15
MODEL_BATCH = 4  # photos whose faces go through the model in one call (lipseg_tf/pretrained/unet on 2 CPU cores:
#                 20.6 ms a face in batches of 4 against 22.6 ms one by one, 2026-12-01)


def tune_process() -> None:
    """What predict.py sets for the whole process before its photos and videos (so do the benchmarks
    that time its pipeline): freed memory kept for reuse (lipseg_tf/memory.py), and OpenCV's warps on
    the calling thread (predict_files' own threads keep the cores busy; with OpenCV's pool as well, 150
    speed scenes took 0.5-2 ms more a photo, four rounds each, in one run)."""
    import cv2

    keep_freed_memory()
    cv2.setNumThreads(1)


def parse_save(text: str) -> tuple[str, ...]:
    """--save's comma-separated outputs (SAVE_CHOICES) -> a tuple in SAVE_CHOICES' order; UserError when
    one is unknown or none is given."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in SAVE_CHOICES]
    if unknown or not chosen:
        raise UserError(f"--save {text!r}: expected a comma-separated list of {', '.join(SAVE_CHOICES)}")
    return tuple(choice for choice in SAVE_CHOICES if choice in chosen)


def _load(path: Path) -> tuple[np.ndarray | None, UserError | None, float]:
    """A photo, or the error that names why it is unreadable, and the seconds it took."""
    start = time.perf_counter()
    try:
        photo = load_rgb(path)
    except UserError as err:
        return None, err, time.perf_counter() - start
    return photo, None, time.perf_counter() - start


def _detect_loaded(loading, detector) -> tuple[np.ndarray | None, UserError | None, float, tuple | None]:
    """_load's result (from its future) and the photo's faces and their detection seconds (None without
    a detector or a photo)."""
    photo, error, seconds = loading.result()
    if photo is None or detector is None:
        return photo, error, seconds, None
    start = time.perf_counter()
    faces = detector(photo)
    return photo, None, seconds, (faces, time.perf_counter() - start)


def _read_ahead(loader, finder, files: Sequence[Path], ahead: int, detector):
    """(path, (photo, error, load seconds, (faces, detect seconds) or None)) for every file in order: the
    loader thread decodes and the finder thread detects faces in `ahead` files ahead, on their own
    threads, so that decoding one photo and finding the faces of the one before overlap."""
    def submit(path):
        return finder.submit(_detect_loaded, loader.submit(_load, path), detector)

    pending = collections.deque(submit(path) for path in files[:ahead])
    for index, path in enumerate(files):
        found = pending.popleft().result()
        if index + ahead < len(files):
            pending.append(submit(files[index + ahead]))
        yield path, found


def _write_outputs(photo: np.ndarray, result: PhotoResult, record: dict, name: str, out_dir: Path,
                   save: Sequence[str], colors: np.ndarray) -> float:
    """Write one photo's chosen outputs (the JSON last, with the write time in it); returns that time."""
    start = time.perf_counter()
    if "mask" in save:
        save_labels_png(out_dir / f"{name}-mask.png", result.labels)
    if "overlay" in save:
        save_image(out_dir / f"{name}-overlay.png", overlay(photo, result, colors), compress_level=1)
    seconds = time.perf_counter() - start
    record["seconds"]["write"] = round(seconds, 4)
    record["seconds"]["total"] = round(sum(v for k, v in record["seconds"].items() if k != "total"), 4)
    if "json" in save:
        write_text(out_dir / f"{name}.json", _to_json(record))
    return seconds


def _photo_record(path: Path, photo: np.ndarray, result: PhotoResult, name: str, model: Model, framing,
                  save: Sequence[str], seconds: dict) -> dict:
    area = _part_areas(result.labels[_faces_window(result.transforms, model.image_size, result.labels.shape)],
                       model.classes)
    return {"photo": str(path), "width": int(photo.shape[1]), "height": int(photo.shape[0]),
            "model": str(model.path), "framing": framing, "classes": list(model.classes),
            "mask": f"{name}-mask.png" if "mask" in save else None,
            "overlay": f"{name}-overlay.png" if "overlay" in save else None,
            "faces": [_face_record(face, i, result, model.classes, area) for i, face in enumerate(result.faces)],
            "area": area,
            "seconds": {k: round(v, 4) for k, v in seconds.items()}}


def predict_files(files: Sequence[Path], segmenter: Segmenter, out_dir: Path,
                  save: Sequence[str] = DEFAULT_SAVE, batch_size: int = MODEL_BATCH) -> dict:
    """Segment every photo with a Segmenter (serve/api.py; built with detector=None for --no-detect); write
    its outputs (`save`: of SAVE_CHOICES) and return the summary (also in summary.json).

    Four stages overlap across photos: a loader thread decodes the next photos, a detector thread finds
    their faces, this one aligns, segments (one model call over the faces of batch_size photos) and
    pastes back, and a writer thread encodes and writes the outputs of the photos before (the image
    codecs, TensorFlow and TensorFlow Lite release the GIL while they work). Outputs, summary and log
    come in the order of `files`.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    unknown = [s for s in save if s not in SAVE_CHOICES]
    if unknown or not save:
        raise ValueError(f"save {tuple(save)!r}: expected some of {', '.join(SAVE_CHOICES)}")
    model, detector = segmenter.model, segmenter.detector
    names = _output_names(files)
    summary = {"model": str(model.path), "framing": model.framing if segmenter.detects else None,
               "crop": None if model.crop is None else list(model.crop), "tta": model.tta, "runtime": model.runtime,
               "tflite": None if model.lite_path is None else model.lite_path.name,
               "detector": None if detector is None else getattr(detector, "name", type(detector).__name__),
               "save": list(save),
               "photos": 0, "faces": 0, "photos_without_face": [], "skipped": []}
    _claim_output_dir(out_dir, files, summary)
    timings: dict[str, list[float]] = {}
    start_all = time.perf_counter()

    def segment_batch(batch: list, writes: list) -> None:
        results = segment_photos([photo for _, photo, _, _ in batch], model, detector,
                                 [found for _, _, _, found in batch])
        for (path, photo, load_seconds, _), result in zip(batch, results):
            seconds = {"load": load_seconds, **result.seconds}
            name = names[path]
            record = _photo_record(path, photo, result, name, model, summary["framing"], save, seconds)
            writes.append(writer.submit(_write_outputs, photo, result, record, name, out_dir, save, model.colors))
            summary["photos"] += 1
            summary["faces"] += len(result.faces)
            if not result.faces:
                summary["photos_without_face"].append(str(path))
            for key, value in seconds.items():
                timings.setdefault(key, []).append(value)
            log.debug("%s: %d face(s), %s", path, len(result.faces),
                      ", ".join(f"{k} {v:.3f} s" for k, v in seconds.items()))
        batch.clear()

    with ThreadPoolExecutor(1, thread_name_prefix="load") as loader, \
            ThreadPoolExecutor(1, thread_name_prefix="detect") as finder, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer:
        batch, writes = [], []
        for path, (photo, error, load_seconds, found) in tqdm(
                _read_ahead(loader, finder, files, batch_size + READ_AHEAD, detector), total=len(files), desc="predict",
                unit="photo", disable=None if len(files) > 1 else True, dynamic_ncols=True):
            if error is not None:
                log.warning("skipped %s", error)
                summary["skipped"].append({"file": str(path), "reason": str(error)})
                continue
            batch.append((path, photo, load_seconds, found))
            if len(batch) >= batch_size:
                segment_batch(batch, writes)
        if batch:
            segment_batch(batch, writes)
        timings["write"] = [future.result() for future in writes]  # re-raises a failed write here
    if summary["photos"]:
        timings["total"] = [sum(step) for step in zip(*timings.values())]
    wall = time.perf_counter() - start_all
    summary["mean_seconds"] = {k: round(statistics.fmean(v), 4) for k, v in timings.items() if v}
    # The steps overlap, so a photo takes less than its steps' total: the wall time over the photos.
    summary["wall_seconds_per_photo"] = round(wall / summary["photos"], 4) if summary["photos"] else None
    summary["complete"] = True
    write_text(out_dir / SUMMARY_FILE, _to_json(summary))
    return summary


def check_output_dir(out_dir: Path, files: Sequence[Path]) -> None:
    """UserError unless predict.py may write the outputs of these photos into out_dir (creates nothing):
    it replaces only the files it names itself, in a folder holding its own summary.json."""
    folders.check_output_dir(out_dir, "--output")
    ours = [out_dir / f"{name}{suffix}" for name in _output_names(files).values()
            for suffix in ("-mask.png", "-overlay.png", ".json")]
    folders.claim_folder(out_dir, SUMMARY_FILE, ours, "predict.py", keys=("model", "photos"))


def _claim_output_dir(out_dir: Path, files: Sequence[Path], summary: dict) -> None:
    """Make out_dir predict.py's own before any photo: summary.json first, `"complete": false` until the
    run ends."""
    check_output_dir(out_dir, files)
    folders.make_output_dir(out_dir, "--output")
    write_text(out_dir / SUMMARY_FILE, _to_json({**summary, "complete": False}))
