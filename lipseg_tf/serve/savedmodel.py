"""Export a trained segmenter as a SavedModel that needs nothing from this package.

Serving signature `serving_default`: `images` uint8 [N, H, W, 3], any H and W ->
    `labels`        uint8 [N, H, W]    class ids at the input size (0 background, then the parts)
    `probabilities` float32 [N, H, W, C]
Resizing, normalisation and decoding happen inside the graph; the network runs in inference mode
(dropout off, BatchNorm moving statistics). A second function `classes()` returns the class names and
`colors()` their mask colours; both are also written to classes.json beside saved_model.pb, with the
network's input size and the framing of its training faces (what predict.py aligns faces to).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.imageio import write_text
from lipseg_tf.train import pipeline

log = logging.getLogger("lipseg_tf")


class Segmenter(tf.Module):
    """uint8 photos in, class ids and probabilities out; `network` maps [-1, 1] images to its output."""

    def __init__(self, network: keras.Model, image_size: int, classes: ClassSpec, output: str):
        super().__init__(name="lipseg_segmenter")
        self.network = network
        self.image_size = image_size
        self.output = output                   # "probabilities" (U-Net) or "image" (pix2pix)
        self.class_colors = np.asarray(classes.colors, np.uint8)
        self._names = tf.constant(list(classes.names))
        self._colors = tf.constant(self.class_colors)

    def probabilities_at_model_size(self, images: tf.Tensor) -> tf.Tensor:
        """[-1, 1] float images at image_size -> (N, S, S, C) class probabilities."""
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


def write_classes(out_dir: Path, classes: ClassSpec, image_size: int, framing: str | None = None) -> Path:
    """classes.json: class names, mask colours, the network's input size and, when known, the framing of
    the faces it was trained on ('sample' or 'celebahq', see serve/align.py) for predict.py."""
    meta = {"classes": list(classes.names), "colors": classes.colors.tolist(), "image_size": int(image_size)}
    if framing:
        meta["framing"] = framing
    path = Path(out_dir) / "classes.json"
    write_text(path, json.dumps(meta, indent=2) + "\n")
    return path


def export(segmenter: Segmenter, classes: ClassSpec, out_dir: Path, framing: str | None = None) -> Path:
    """Write the SavedModel (and classes.json) to out_dir; returns out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(segmenter, str(out_dir), signatures={"serving_default": segmenter.serve})
    write_classes(out_dir, classes, segmenter.image_size, framing)
    log.info("exported SavedModel to %s (signature serving_default: uint8 images -> labels, probabilities)",
             out_dir)
    return out_dir
