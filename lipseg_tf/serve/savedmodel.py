"""Export a trained segmenter as a SavedModel that needs nothing from this package.

Serving signature `serving_default`: `images` uint8 [N, H, W, 3], any H and W ->
    `labels`        uint8 [N, H, W]    class ids at the input size (0 background, then the parts)
    `probabilities` float32 [N, H, W, C]
Resizing, normalisation and decoding happen inside the graph; the network runs in inference mode
(dropout off, BatchNorm moving statistics). A second function `classes()` returns the class names and
`colors()` their mask colours; both are also written to classes.json beside saved_model.pb, with the
network's input size, the framing of its training faces and the box of it they were cut to (what
predict.py aligns faces to), and "tta": "flip" when the graph averages each image's probabilities with
those of its mirror image. A third, `classes_json()`, returns that classes.json as exported, so that an
edited copy can be told (serve/model_meta.py).
"""

from __future__ import annotations

import errno
import glob
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.imageio import write_text
from lipseg_tf.train import pipeline

log = logging.getLogger("lipseg_tf")


TTA_CHOICES = ("none", "flip")


class Segmenter(tf.Module):
    """uint8 photos in, class ids and probabilities out; `network` maps [-1, 1] images to its output.

    tta 'flip': the probabilities are the mean of the image's and of its mirror image's, flipped back
    with the left/right classes swapped (classes.flip_perm), so a mirrored face gets the mirrored answer.
    """

    def __init__(self, network: keras.Model, image_size: int, classes: ClassSpec, output: str,
                 tta: str | None = None):
        super().__init__(name="lipseg_segmenter")
        if tta not in (None, *TTA_CHOICES):
            raise ValueError(f"unknown tta {tta!r}, valid: {', '.join(TTA_CHOICES)}")
        self.network = network
        self.image_size = image_size
        self.output = output                   # "probabilities" (U-Net) or "image" (pix2pix)
        self.tta = "flip" if tta == "flip" else None
        self.class_colors = np.asarray(classes.colors, np.uint8)
        self._flip_perm = tf.constant(np.asarray(classes.flip_perm, np.int32))
        self._names = tf.constant(list(classes.names))
        self._colors = tf.constant(self.class_colors)

    def probabilities_at_model_size(self, images: tf.Tensor) -> tf.Tensor:
        """[-1, 1] float images at image_size -> (N, S, S, C) class probabilities (flip-averaged with tta)."""
        probabilities = self._network_probabilities(images)
        if self.tta == "flip":
            mirrored = self._network_probabilities(tf.reverse(images, axis=[2]))
            # Flipped back, the mirror image's "left eye" channel is the right eye's: swap the classes.
            mirrored = tf.gather(tf.reverse(mirrored, axis=[2]), self._flip_perm, axis=-1)
            probabilities = 0.5 * (probabilities + mirrored)
        return probabilities

    def _network_probabilities(self, images: tf.Tensor) -> tf.Tensor:
        output = self.network(images, training=False)
        if self.output == "image":
            return pipeline.image_to_class_scores(output, self.class_colors)
        return output

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve(self, images):
        size = tf.shape(images)[1:3]
        x = tf.image.resize(tf.cast(images, tf.float32), (self.image_size, self.image_size),
                            method="bilinear", antialias=True) / 127.5 - 1.0
        probabilities = self.probabilities_at_model_size(x)
        # Resize the probabilities, not the labels, so the mask at the input size has smooth borders.
        probabilities = tf.image.resize(probabilities, size, method="bilinear")
        labels = tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8)
        return {"labels": labels, "probabilities": probabilities}

    @tf.function(input_signature=[])
    def classes(self):
        return self._names

    @tf.function(input_signature=[])
    def colors(self):
        return self._colors


def write_classes(out_dir: Path, classes: ClassSpec, image_size: int, framing: str | None = None,
                  crop=None, tta: str | None = None) -> Path:
    """classes.json: class names, mask colours, the network's input size and, when known, the framing of
    the faces it was trained on ('sample' or 'celebahq', see serve/align.py) and the box of it they were
    cut to (crop [x0, y0, side], process.py --crop), for predict.py; "tta": "flip" when the model
    averages with the mirror image itself."""
    path = Path(out_dir) / "classes.json"
    write_text(path, json.dumps(classes_meta(classes, image_size, framing, crop, tta), indent=2) + "\n")
    return path


def classes_meta(classes: ClassSpec, image_size: int, framing: str | None = None, crop=None,
                 tta: str | None = None) -> dict:
    """The fields of classes.json (write_classes)."""
    meta = {"classes": list(classes.names), "colors": classes.colors.tolist(), "image_size": int(image_size)}
    if framing:
        meta["framing"] = framing
    if crop is not None:
        meta["crop"] = [float(v) for v in crop]
    if tta:
        meta["tta"] = tta
    return meta


def export(segmenter: Segmenter, classes: ClassSpec, out_dir: Path, framing: str | None = None,
           crop=None) -> Path:
    """Write the SavedModel (and classes.json) to out_dir; returns out_dir.

    The graph also holds the classes.json it is exported with (its function classes_json()), so that
    predict.py can tell an edited classes.json (serve/model_meta.py). Everything is written into a
    temporary folder beside out_dir first and moved in at the end, saved_model.pb last: a save killed
    midway leaves no saved_model.pb without its variables and classes.json (_move_export).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(classes_meta(classes, segmenter.image_size, framing, crop, segmenter.tta))
    segmenter.classes_json = tf.function(lambda: tf.constant(text), input_signature=[])
    for stale in out_dir.parent.glob(f".tmp-export-{glob.escape(out_dir.name)}-*"):  # a killed export's
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-export-{out_dir.name}-", dir=out_dir.parent))
    try:
        tf.saved_model.save(segmenter, str(staging), signatures={"serving_default": segmenter.serve})
        write_classes(staging, classes, segmenter.image_size, framing, crop, segmenter.tta)
        _move_export(staging, out_dir)
    except OSError as err:  # a full disk: named in out_dir, not in the temporary folder
        name = str(err.filename or out_dir).replace(str(staging), str(out_dir))
        raise OSError(err.errno, err.strerror or str(err), name) from None
    except tf.errors.OpError as err:  # TensorFlow's own writes (the variables) on a full disk
        if "No space left on device" not in str(err):
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out_dir / "variables")) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported SavedModel to %s (signature serving_default: uint8 images -> labels, probabilities)",
             out_dir)
    return out_dir


def _move_export(staging: Path, out_dir: Path) -> None:
    """Move a whole export from staging into out_dir: an old saved_model.pb goes first, the new one comes
    last, so that at every moment out_dir either is no SavedModel or is the whole new one."""
    (out_dir / "saved_model.pb").unlink(missing_ok=True)
    for entry in sorted(staging.iterdir(), key=lambda p: p.name == "saved_model.pb"):
        target = out_dir / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
