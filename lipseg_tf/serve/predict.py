"""Lips and eyes in any photo, with an exported model: the work of predict.py (cli/predict.py).

For each photo: find the faces (MTCNN, https://github.com/ipazc/mtcnn, weights inside its wheel), keep
those at least --min-face pixels tall and wide-ish (the detector box's longer side) and at least
--min-confidence sure; align each with the similarity transform that puts its eyes and mouth corners
where the model's training faces had them (serve/align.py), cut the crop at the model's input size,
segment all crops of the photo in one batch, resample each crop's class probabilities back into the
photo through the inverse transform (bilinear) and take their argmax there, so the labels are never
interpolated and a large face's mask has no blocky borders. Where two faces' crops overlap, a part
label beats background and the more probable of two part labels wins.

A model trained on a box of the framing (classes.json "crop": [x0, y0, side], process.py --crop) gets
faces aligned to that box; with --no-detect it sees that box of each photo. With --tta flip (or a
model exported with it) each crop's probabilities are averaged with those of its mirror image, flipped
back and with the left/right classes swapped.

Writes into --output, for a photo <name>.<ext>:

    <name>-mask.png     class ids at the photo's full size (uint8, 0 background, then the parts)
    <name>-overlay.png  the photo with the parts in their mask colours, face boxes and landmarks
    <name>.json         size, each face's box, landmarks, detector confidence, transform and pixel area
                        per part, the time of each step
    summary.json        photos, faces, photos without a face, skipped files, mean times

A photo without a face gets an all-background mask and is listed in the summary: not an error. An
unreadable file is named, skipped and listed; the run goes on and then exits with status 1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image, ImageDraw

from lipseg_tf.errors import UserError
from lipseg_tf.prep import folders
from lipseg_tf.prep.imageio import load_rgb, save_image, write_text
from lipseg_tf.prep.parts import mirror_permutation
from lipseg_tf.serve import align, model_meta

if TYPE_CHECKING:
    from lipseg_tf.serve.api import Segmenter

log = logging.getLogger("lipseg_tf")

SUMMARY_FILE = "summary.json"
MTCNN_MIN_FACE = 20  # MTCNN's own smallest face (pixels); photos are shrunk so --min-face maps onto it
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # MTCNN's order
OVERLAY_ALPHA = 0.55


@dataclasses.dataclass
class Face:
    """One detected face, in photo pixel coordinates."""

    box: tuple[float, float, float, float]  # x, y, width, height
    confidence: float | None                # None with --no-detect
    keypoints: np.ndarray | None            # (5, 2) in KEYPOINTS order; None with --no-detect

    @property
    def landmarks(self) -> np.ndarray:
        """The four alignment landmarks (eyes, mouth corners), in align.py's order."""
        return self.keypoints[[0, 1, 3, 4]]


class FaceDetector:
    """MTCNN over a photo resized so that faces of min_face pixels are MTCNN's smallest (20 pixels)."""

    def __init__(self, min_face: int = 40, min_confidence: float = 0.9):
        from mtcnn import MTCNN
        self.min_face = min_face
        self.min_confidence = min_confidence
        self._mtcnn = MTCNN()

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


TTA_CHOICES = ("none", "flip")


class Model:
    """An exported SavedModel (unet.py / pix2pix.py --mode export) and what its classes.json says.

    tta 'flip' averages each crop's probabilities with those of its mirror image (left/right classes
    swapped) unless the model already does so inside its graph (classes.json "tta": "flip").
    """

    def __init__(self, path: str | Path, framing: str | None = None, tta: str | None = None):
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
        self.tta = "flip" if "flip" in (tta, meta.tta) else None
        # The flip average is done here only when the graph does not do it already.
        self._flip_here = tta == "flip" and meta.tta != "flip"
        self._mirror = mirror_permutation(self.classes)
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

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, H, W, 3) -> class probabilities (N, H, W, C)."""
        import tensorflow as tf
        probabilities = self._serve(images=tf.constant(images, tf.uint8))["probabilities"].numpy()
        if self._flip_here:
            mirrored = self._serve(images=tf.constant(images[:, :, ::-1], tf.uint8))["probabilities"].numpy()
            probabilities = 0.5 * (probabilities + mirrored[:, :, ::-1][..., self._mirror])
        return probabilities


@dataclasses.dataclass
class PhotoResult:
    labels: np.ndarray                    # (H, W) uint8 class ids
    faces: list[Face]
    transforms: list[np.ndarray]          # photo -> crop, one per face
    owner: np.ndarray                     # (H, W) int16: the face each part pixel came from, -1 none
    seconds: dict[str, float]
    crop_labels: np.ndarray | None = None  # (faces, S, S) uint8: each crop's labels at the model's size


def segment_photo(photo: np.ndarray, model: Model, detector: FaceDetector | None) -> PhotoResult:
    """Detect, align, segment and paste back every face of one photo.

    detector None (--no-detect): the photo already is an aligned face, framed as the model's training
    photos; the model sees its crop box (classes.json "crop"; the whole photo without one).
    """
    height, width = photo.shape[:2]
    seconds = {}
    start = time.perf_counter()
    size = model.image_size
    if detector is None:
        transforms = [align.box_transform((height, width), size, model.crop)]
        (x0, y0), _, (x1, y1), _ = align.crop_corners(transforms[0], size) + 0.0  # + 0.0: no -0.0
        faces = [Face((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), None, None)]
    else:
        faces = detector(photo)
        seconds["detect"] = time.perf_counter() - start
        start = time.perf_counter()
        transforms = [align.face_transform(face.landmarks, size, model.framing, model.crop) for face in faces]
    crop_probs = None
    if faces:
        crops = np.stack([align.warp_face(photo, matrix, size) for matrix in transforms])
        crop_probs = model(crops)
    seconds["align_and_model"] = time.perf_counter() - start
    start = time.perf_counter()
    labels, owner = paste_faces(crop_probs, transforms, (height, width))
    seconds["paste"] = time.perf_counter() - start
    crop_labels = None if crop_probs is None else crop_probs.argmax(-1).astype(np.uint8)
    return PhotoResult(labels, faces, transforms, owner, seconds, crop_labels)


def paste_faces(crop_probs: np.ndarray | None, transforms: Sequence[np.ndarray],
                shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Every face's class probabilities (N, S, S, C), resampled into the photo (align.paste_probabilities)
    -> (labels (H, W) uint8, owner (H, W) int16: the face each part pixel came from, -1 none).

    Where crops overlap, a part beats background and the more probable of two parts wins.
    """
    labels = np.zeros(shape, np.uint8)
    owner = np.full(shape, -1, np.int16)
    best = np.zeros(shape, np.float32)
    for index, matrix in enumerate(transforms):
        (y0, y1, x0, x1), face_probs, inside = align.paste_probabilities(crop_probs[index], matrix, shape)
        face_labels = np.where(inside, face_probs.argmax(-1), 0).astype(np.uint8)
        face_best = face_probs.max(-1)
        window = labels[y0:y1, x0:x1]
        window_best = best[y0:y1, x0:x1]
        wins = (face_labels > 0) & ((window == 0) | (face_best > window_best))
        window[wins] = face_labels[wins]
        window_best[wins] = face_best[wins]
        owner[y0:y1, x0:x1][wins] = index
    return labels, owner


def overlay(photo: np.ndarray, result: PhotoResult, colors: np.ndarray) -> np.ndarray:
    """The photo with each part in its mask colour, and each detected face's box and landmarks."""
    parts = result.labels > 0
    image = photo.astype(np.float32)
    image[parts] = (1 - OVERLAY_ALPHA) * image[parts] + OVERLAY_ALPHA * colors[result.labels[parts]]
    canvas = Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    line = max(1, round(max(photo.shape[:2]) / 400))
    for face in result.faces:
        if face.keypoints is None:
            continue
        x, y, w, h = face.box
        draw.rectangle((x, y, x + w, y + h), outline=(255, 255, 255), width=line)
        for px, py in face.keypoints:
            r = 2 * line
            draw.ellipse((px - r, py - r, px + r, py + r), outline=(255, 255, 255), width=line)
    return np.asarray(canvas)


def _face_record(face: Face, index: int, result: PhotoResult, classes: Sequence[str]) -> dict:
    record = {"box": [round(v, 1) for v in face.box],
              "confidence": None if face.confidence is None else round(face.confidence, 4)}
    if face.keypoints is not None:
        record["landmarks"] = {name: [round(float(x), 1), round(float(y), 1)]
                               for name, (x, y) in zip(KEYPOINTS, face.keypoints)}
        record["photo_to_crop"] = np.round(result.transforms[index], 6).tolist()
    mine = result.labels[result.owner == index]
    counts = np.bincount(mine, minlength=len(classes))
    record["area"] = {name: int(counts[k]) for k, name in enumerate(classes) if k > 0}
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


def predict_files(files: Sequence[Path], segmenter: Segmenter, out_dir: Path) -> dict:
    """Segment every photo with a Segmenter (serve/api.py; built with detector=None for --no-detect); write
    its mask, overlay and JSON; return the summary (also in summary.json)."""
    from tqdm import tqdm

    model = segmenter.model
    names = _output_names(files)
    summary = {"model": str(model.path), "framing": model.framing if segmenter.detects else None,
               "crop": None if model.crop is None else list(model.crop), "tta": model.tta,
               "photos": 0, "faces": 0, "photos_without_face": [], "skipped": []}
    _claim_output_dir(out_dir, files, summary)
    timings: dict[str, list[float]] = {}
    for path in tqdm(files, desc="predict", unit="photo", disable=None if len(files) > 1 else True,
                     dynamic_ncols=True):
        start = time.perf_counter()
        try:
            photo = load_rgb(path)
        except UserError as err:
            log.warning("skipped %s", err)
            summary["skipped"].append({"file": str(path), "reason": str(err)})
            continue
        seconds = {"load": time.perf_counter() - start}
        result = segmenter(photo)
        seconds.update(result.seconds)
        start = time.perf_counter()
        name = names[path]
        save_image(out_dir / f"{name}-mask.png", result.labels, compress_level=1)
        save_image(out_dir / f"{name}-overlay.png", result.overlay(), compress_level=1)
        seconds["write"] = time.perf_counter() - start
        seconds["total"] = sum(seconds.values())
        counts = np.bincount(result.labels.ravel(), minlength=len(model.classes))
        record = {"photo": str(path), "width": int(photo.shape[1]), "height": int(photo.shape[0]),
                  "model": str(model.path), "framing": summary["framing"], "classes": list(model.classes),
                  "mask": f"{name}-mask.png", "overlay": f"{name}-overlay.png",
                  "faces": [_face_record(face, i, result, model.classes) for i, face in enumerate(result.faces)],
                  "area": {c: int(counts[k]) for k, c in enumerate(model.classes) if k > 0},
                  "seconds": {k: round(v, 4) for k, v in seconds.items()}}
        write_text(out_dir / f"{name}.json", _to_json(record))
        summary["photos"] += 1
        summary["faces"] += len(result.faces)
        if not result.faces:
            summary["photos_without_face"].append(str(path))
        for key, value in seconds.items():
            timings.setdefault(key, []).append(value)
        log.debug("%s: %d face(s), %s", path, len(result.faces),
                  ", ".join(f"{k} {v:.3f} s" for k, v in seconds.items()))
    summary["mean_seconds"] = {k: round(statistics.fmean(v), 4) for k, v in timings.items()}
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
