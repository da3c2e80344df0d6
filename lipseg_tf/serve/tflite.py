"""TensorFlow Lite export of a segmenter, and a latency benchmark.

`unet.py` / `pix2pix.py --mode export --format tflite` write two models into --output_dir:

    <model>_float32.tflite        weights and arithmetic in float32
    <model>_dynamic_range.tflite  weights stored as int8 (dynamic-range quantisation), activations float
    classes.json                  class names, colours, image_size and framing (as beside a SavedModel)

Each has one signature, `serving_default`:

    images         uint8   [1, S, S, 3]  an aligned face crop at the model's size S (classes.json image_size)
    labels         uint8   [1, S, S]     class ids (0 background, then the parts)
    probabilities  float32 [1, S, S, C]

Unlike the SavedModel, a .tflite model takes only crops of its own size: resizing with antialiasing
is not a TensorFlow Lite built-in op, so the caller resizes (predict.py's aligned crops already have
that size). Normalisation and decoding are inside, as in the SavedModel. For pix2pix the generated
colour image is decoded inside too: probabilities are the softmax over the negative squared distances
of the generated colour to each palette colour, labels the nearest colour.

    python -m lipseg_tf.tools.tflite_bench EXPORT_DIR [EXPORT_DIR ...] [--runs 50] [--threads 2]

prints the size and CPU latency (one crop, after a warm-up) of every .tflite model and SavedModel given
(benchmark, below).
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from lipseg_tf.prep import imageio
from lipseg_tf.serve import xnnpack

log = logging.getLogger("lipseg_tf")

VARIANTS = ("float32", "dynamic_range")
# Weights and activations int8 (full integer quantisation), each activation's range measured on
# calibration crops: convert's third variant, which needs them (python -m lipseg_tf.tools.reexport
# --tflite int8 --pairs P takes them from P's train split).
INT8 = "int8"
# The TFLite copy of a SavedModel's network that predict.py runs when it is there (predict.Model runtime):
# int8 weights (dynamic range, or int8 activations too), no flip inside, crops of the model's size, one
# at a time.
CROP_TFLITE = "crop.tflite"
# Beside an int8 CROP_TFLITE (activations int8 too), the same network with float activations (dynamic
# range): which of the two is faster depends on the CPU (serve/fastest.py), so predict.Model times both
# when it loads them and keeps the int8 one unless the other is clearly quicker (predict.LITE_MARGIN).
CROP_TFLITE_DYNAMIC = "crop-dynamic.tflite"
CROP_TFLITES = (CROP_TFLITE, CROP_TFLITE_DYNAMIC)


def model_file(out_dir: str | Path, model: str, variant: str) -> Path:
    """Where export_tflite writes one variant: <out_dir>/<model>_<variant>.tflite."""
    return Path(out_dir) / f"{model}_{variant}.tflite"


def convert(segmenter, variants: Sequence[str] = VARIANTS, tta: bool = True,
            calibration: np.ndarray | None = None) -> dict[str, bytes]:
    """The flatbuffers of a savedmodel.Segmenter: {variant: bytes} for 'float32', 'dynamic_range' and/or
    'int8' (INT8: weights and activations, the activations' ranges measured on `calibration`, uint8 crops
    (N, S, S, 3) at the model's size; input uint8 and output float32 as in the others); tta False:
    without the segmenter's flip average (its network alone)."""
    import keras
    import tensorflow as tf

    from lipseg_tf.quiet import caught_stderr

    unknown = [v for v in variants if v not in (*VARIANTS, INT8)]
    if unknown:
        raise ValueError(f"unknown TFLite variant {unknown[0]!r}, valid: {', '.join((*VARIANTS, INT8))}")
    if INT8 in variants and (calibration is None or len(calibration) == 0):
        raise ValueError("the int8 variant needs calibration crops")
    size = segmenter.image_size

    def serve(images):
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        probabilities = (segmenter.probabilities_at_model_size(x) if tta
                         else segmenter._network_probabilities(x))
        return {"labels": tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8), "probabilities": probabilities}

    # Keras' own export archive: converting a tf.saved_model of a Keras 3 network leaves its weights
    # as uninitialised resource variables in the .tflite file (the model then outputs NaN).
    archive = keras.export.ExportArchive()
    archive.track(segmenter.network)
    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8, name="images")])
    flatbuffers = {}
    with tempfile.TemporaryDirectory(prefix="lipseg-tflite-") as tmp:
        archive.write_out(tmp, verbose=False)
        for variant in variants:
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            if variant != "float32":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: weights only
            if variant == INT8:
                converter.representative_dataset = lambda: ({"images": crop[None]} for crop in calibration)
            # The calibration runs an interpreter (its deprecation notice) and prints its settings on stderr.
            with warnings.catch_warnings(), caught_stderr():
                warnings.simplefilter("ignore")
                flatbuffers[variant] = converter.convert()
    return flatbuffers


def export_tflite(segmenter, classes, out_dir: str | Path, model: str, framing: str | None = None,
                  crop=None) -> dict:
    """Write both variants and classes.json to out_dir; returns {variant: path}."""
    from lipseg_tf.serve.savedmodel import write_classes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for variant, flatbuffer in convert(segmenter).items():
        path = model_file(out_dir, model, variant)
        imageio.write_bytes(path, flatbuffer)
        written[variant] = path
        log.info("wrote %s (%.0f KiB)", path, path.stat().st_size / 1024)
    write_classes(out_dir, classes, segmenter.image_size, framing, crop, segmenter.tta)
    return written


def write_crop_tflite(segmenter, out_dir: str | Path, calibration: np.ndarray | None = None) -> list[Path]:
    """Write CROP_TFLITE into an export folder: the segmenter's network alone (no flip), weights int8;
    with calibration (uint8 crops (N, S, S, 3) of faces as the model sees them) its activations int8 too
    (convert's INT8), and CROP_TFLITE_DYNAMIC beside it, activations float (predict.Model runs whichever
    this CPU runs faster). Returns the files written."""
    variants = ["dynamic_range"] if calibration is None else [INT8, "dynamic_range"]
    names = {"dynamic_range": CROP_TFLITE_DYNAMIC if calibration is not None else CROP_TFLITE, INT8: CROP_TFLITE}
    flatbuffers = convert(segmenter, variants, tta=False, calibration=calibration)
    written = []
    for variant in variants:
        path = Path(out_dir) / names[variant]
        imageio.write_bytes(path, flatbuffers[variant])
        log.info("wrote %s (%.0f KiB)", path, path.stat().st_size / 1024)
        written.append(path)
    stale = Path(out_dir) / CROP_TFLITE_DYNAMIC
    if calibration is None and stale.is_file():
        stale.unlink()  # an int8 export's float-activation copy, which the new crop.tflite replaces
    return written


class CropNetwork:
    """CROP_TFLITE of an export folder: uint8 crops (N, S, S, 3) -> class probabilities (N, S, S, C), one
    crop per run, on one thread (predict.py's other steps use the other cores); UserError when the file
    is unreadable or its shapes are not the SavedModel's (image_size S, C classes)."""

    def __init__(self, path: str | Path, image_size: int, num_classes: int):
        from lipseg_tf.errors import UserError
        from lipseg_tf.quiet import caught_stderr

        self.path = Path(path)
        try:
            with caught_stderr():  # the interpreter announces its XNNPACK delegate on stderr
                self._interpreter = _interpreter(self.path, 1)
                runner = self._interpreter.get_signature_runner("serving_default")
                inputs, outputs = runner.get_input_details(), runner.get_output_details()
                del runner  # it holds the interpreter's internals, and invoke() refuses to run while anything does
                shapes = (tuple(inputs["images"]["shape"]), tuple(outputs["probabilities"]["shape"]))
                self._input = inputs["images"]["index"]
                self._probabilities = outputs["probabilities"]["index"]
                # the network's own argmax, an output of every export
                self._labels = outputs["labels"]["index"] if "labels" in outputs else None
                if shapes[0][1:] == (image_size, image_size, 3):  # a first run, so that any delegate message is caught
                    self._invoke(np.zeros(shapes[0][1:], np.uint8))
        except (ValueError, KeyError, RuntimeError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"{self.path}: not a readable TFLite crop model ({reason}); remake it with "
                            "python -m lipseg_tf.tools.reexport --tflite") from None
        expected = ((1, image_size, image_size, 3), (1, image_size, image_size, num_classes))
        if shapes != expected:
            raise UserError(f"{self.path}: takes {shapes[0]} and gives {shapes[1]}, expected {expected[0]} and "
                            f"{expected[1]} (the SavedModel beside it); remake it with reexport --tflite")
        self._shape = (image_size, image_size, num_classes)
        self._lock = threading.Lock()  # one run at a time: an interpreter is not to be shared by threads

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, labels=False)[0]

    def _invoke(self, image: np.ndarray) -> None:
        """One run of the network on one crop (S, S, 3) uint8; its outputs stay in the interpreter."""
        self._interpreter.set_tensor(self._input, image[None])
        self._interpreter.invoke()

    def _run(self, images: np.ndarray, labels: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The file's outputs for uint8 images (N, S, S, 3), one run a crop: (probabilities (N, S, S, C),
        with `labels` the network's labels (N, S, S) uint8 where it has them, else None). Through the
        interpreter itself, not its signature runner, which resizes the input and reallocates the tensors
        before every run and returns fresh copies to be concatenated: the synthetic clip 1.02 times as
        fast through Segmenter.video (10 rounds in turns, 2026-12-08)."""
        images = np.asarray(images, np.uint8)
        probabilities = np.empty((len(images), *self._shape), np.float32)
        found = np.empty(probabilities.shape[:-1], np.uint8) if labels and self._labels is not None else None
        with self._lock:
            for index, image in enumerate(images):
                self._invoke(image)
                # views of the interpreter's buffers, dropped at once: invoke() refuses to run while one lives
                np.copyto(probabilities[index], self._interpreter.tensor(self._probabilities)()[0])
                if found is not None:
                    np.copyto(found[index], self._interpreter.tensor(self._labels)()[0], casting="unsafe")
        return probabilities, found

    def with_labels(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, S, S, C), labels (N, S, S) uint8): the labels the network's own argmax of the
        same probabilities (ties to the lower class, as numpy's), where the file has that output."""
        probabilities, labels = self._run(images, labels=True)
        if labels is None:
            return probabilities, probabilities.argmax(-1).astype(np.uint8)
        return probabilities, labels


class TFLiteSegmenter:
    """A .tflite segmenter: uint8 crops (N, S, S, 3) at its size in, labels and probabilities out."""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        interpreter = _interpreter(self.path, threads)
        self._run = interpreter.get_signature_runner("serving_default")
        self.image_size = int(self._run.get_input_details()["images"]["shape"][1])

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.asarray(images, np.uint8)
        if images.shape[1:] != (self.image_size, self.image_size, 3):
            raise ValueError(f"{self.path}: expected crops of {self.image_size}x{self.image_size}x3, "
                             f"got {images.shape[1:]}")
        outputs = [self._run(images=image[None]) for image in images]
        return {key: np.concatenate([out[key] for out in outputs]) for key in ("labels", "probabilities")}


def _interpreter(path: Path, threads: int | None):
    """LiteRT's interpreter when installed, else the one TensorFlow still ships; XNNPACK kept off AMX
    (serve/xnnpack.py)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice, once per model
        return xnnpack.interpreter(Interpreter, path, threads)


# ------------------------------------------------------------------------------------------ benchmark

def _latencies(fn, runs: int) -> list[float]:
    fn()  # warm-up: graph tracing, delegate set-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def benchmark(paths: Sequence[str | Path], runs: int = 50, threads: int | None = None) -> list[dict]:
    """Size and latency of one crop for every .tflite file and SavedModel in `paths` (files or folders)."""
    import tensorflow as tf

    from lipseg_tf.errors import UserError

    rows = []
    for path in map(Path, paths):
        models = sorted(path.glob("*.tflite")) if path.is_dir() else [path]
        if path.is_dir() and (path / "saved_model.pb").is_file():
            models.insert(0, path)
        if not models or not all(m.exists() for m in models):
            raise UserError(f"{path}: expected a .tflite file or a folder holding .tflite files or a SavedModel")
        for model in models:
            if model.is_dir():
                meta = json.loads((model / "classes.json").read_text()) if (model / "classes.json").is_file() else {}
                size = int(meta.get("image_size", 256))
                signatures = tf.saved_model.load(str(model)).signatures  # serve_crop: crops, as the .tflite
                serve = signatures["serve_crop" if "serve_crop" in signatures else "serving_default"]
                crop = tf.constant(np.zeros((1, size, size, 3), np.uint8))
                fn, nbytes, kind = (lambda: serve(images=crop)), _dir_size(model), "SavedModel"
            else:
                segmenter = TFLiteSegmenter(model, threads)
                size = segmenter.image_size
                crop = np.zeros((1, size, size, 3), np.uint8)
                fn, nbytes, kind = (lambda: segmenter(crop)), model.stat().st_size, "TFLite"
            times = _latencies(fn, runs)
            rows.append({"model": str(model), "kind": kind, "bytes": nbytes, "image_size": size,
                         "ms_median": 1000 * statistics.median(times), "ms_mean": 1000 * statistics.fmean(times)})
    return rows
