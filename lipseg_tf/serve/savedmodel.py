"""Export a trained segmenter as a SavedModel that needs nothing from this package.

Serving signature `serving_default`: `images` uint8 [N, H, W, 3], each an aligned face in the model's
framing (for a CelebA-HQ model: a whole CelebA-HQ image), any H and W ->
    `labels`        uint8 [N, H, W]    class ids at the input size (0 background, then the parts)
    `probabilities` float32 [N, H, W, C]
A model trained on a box of the framing (process.py --crop; classes.json "crop": [x0, y0, side],
fractions of the image's width and height) cuts that box out inside the graph, as predict.py
--no-detect does (serve/align.py box_transform and warp_face), and pastes its answer back: outside the
box every pixel is background with probability 1. Without a crop the box is the whole image.

Signature `serve_crop`: the same outputs for images that already are the box (what predict.py feeds
after aligning a face), resized to the network's input size; for a model without a crop it equals
`serving_default` but for the resampling filter. Exports older than this one have only
`serving_default`, and it took the crop.

Resizing, normalisation and decoding happen inside the graph; the network runs in inference mode
(dropout off, BatchNorm moving statistics). A second function `classes()` returns the class names and
`colors()` their mask colours; both are also written to classes.json beside saved_model.pb, with the
network's input size, the framing of its training faces and the box of it they were cut to (what
predict.py aligns faces to), what each signature takes ("signatures"), and "tta": "flip" when the graph
averages each image's probabilities with those of its mirror image. A further function,
`classes_json()`, returns that classes.json as exported, so that an edited copy can be told
(serve/model_meta.py).
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
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.imageio import write_text
from lipseg_tf.train import pipeline

log = logging.getLogger("lipseg_tf")


TTA_CHOICES = ("none", "flip")
# What each exported signature takes, as classes.json "signatures" says it.
SIGNATURES = {"serving_default": "framing", "serve_crop": "crop"}


class Segmenter(tf.Module):
    """uint8 photos in, class ids and probabilities out; `network` maps [-1, 1] images to its output.

    tta 'flip': the probabilities are the mean of the image's and of its mirror image's, flipped back
    with the left/right classes swapped (classes.flip_perm), so a mirrored face gets the mirrored answer.
    crop (x0, y0, side): the box of the framing the network was trained on (None: all of it), cut out
    of the aligned faces by `serve`. background_scale: what train/calibrate.py folded into the network
    (classes.json records it; the network already has it).
    """

    def __init__(self, network: keras.Model, image_size: int, classes: ClassSpec, output: str,
                 tta: str | None = None, crop: Sequence[float] | None = None, background_scale: float = 1.0):
        super().__init__(name="lipseg_segmenter")
        if tta not in (None, *TTA_CHOICES):
            raise ValueError(f"unknown tta {tta!r}, valid: {', '.join(TTA_CHOICES)}")
        self.network = network
        self.image_size = image_size
        self.output = output                   # "probabilities" (U-Net) or "image" (pix2pix)
        self.tta = "flip" if tta == "flip" else None
        self.crop = None if crop is None else tuple(float(v) for v in crop)
        self.background_scale = float(background_scale)   # folded into the network (train/calibrate.py)
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
        """Aligned faces in the model's framing, any size: the crop box is cut out, segmented and pasted
        back at the input size; background (probability 1) outside it."""
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        x0, y0, side = self.crop or (0.0, 0.0, 1.0)
        size = self.image_size
        # align.box_transform's map from image to crop, per axis: crop = scale * (image - offset).
        scale = tf.cast(size, tf.float64) / (side * tf.cast(tf.stack([height, width]), tf.float64))
        offset = tf.constant([y0, x0], tf.float64) * tf.cast(tf.stack([height, width]), tf.float64)
        crops = _cut_box(images, scale, offset, size)
        probabilities = self.probabilities_at_model_size(crops / 127.5 - 1.0)
        # Pasted back bilinearly (align.paste_probabilities): pixel centres map into the crop.
        pasted = tf.raw_ops.ScaleAndTranslate(
            images=probabilities, size=tf.stack([height, width]), scale=tf.cast(1.0 / scale, tf.float32),
            translation=tf.cast(offset, tf.float32), kernel_type="triangle", antialias=False)
        inside = tf.logical_and(_centres_inside(height, scale[0], offset[0], size)[:, None],
                                _centres_inside(width, scale[1], offset[1], size)[None, :])
        background = tf.one_hot(0, tf.shape(probabilities)[-1], dtype=tf.float32)
        probabilities = tf.where(inside[None, :, :, None], pasted, background)
        labels = tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8)
        return {"labels": labels, "probabilities": probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve_crop(self, images):
        """Images that already are the crop box (or the whole framing without a crop), any size."""
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


def _cut_box(images: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor, size: int) -> tf.Tensor:
    """The box (image - offset) * scale of uint8 images, size x size, as float32 grey levels: cut as
    align.warp_face cuts predict.py's crops (bilinear at a whole multiple of the size no smaller than the
    box, then block-averaged), and quantised as its uint8 crops are (PIL truncates, then rounds)."""
    supersample = tf.maximum(1, tf.cast(tf.math.ceil(1.0 / tf.sqrt(scale[0] * scale[1]) - 1e-6), tf.int32))
    fine = tf.raw_ops.ScaleAndTranslate(
        images=tf.cast(images, tf.float32), size=tf.stack([size * supersample, size * supersample]),
        scale=tf.cast(scale * tf.cast(supersample, tf.float64), tf.float32),
        translation=tf.cast(-offset * scale * tf.cast(supersample, tf.float64), tf.float32),
        kernel_type="triangle", antialias=False)
    fine = tf.floor(tf.clip_by_value(fine, 0.0, 255.0))
    blocks = tf.reshape(fine, [-1, size, supersample, size, supersample, 3])
    return tf.floor(tf.reduce_mean(blocks, axis=[2, 4]) + 0.5)


def _centres_inside(count: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor, size: int) -> tf.Tensor:
    """Whether each of `count` pixel centres along one axis falls inside the crop [0, size)."""
    centres = (tf.cast(tf.range(count), tf.float64) + 0.5 - offset) * scale
    return tf.logical_and(centres >= 0.0, centres < size)


def fold_background_scale(network: keras.Model, scale: float | str, image_size: int, classes: ClassSpec,
                          tta: str | None, pairs_dir) -> float:
    """Fold `scale` into the U-Net `network` (train/calibrate.py) and return it; "auto" first chooses it on
    the val split of pairs_dir, with the network run as its export will run it (this tta)."""
    from lipseg_tf.train import calibrate
    if scale == "auto":
        chooser = Segmenter(network, image_size, classes, output="probabilities", tta=tta)
        scale = calibrate.choose_on_val(chooser.probabilities_at_model_size, classes, image_size, pairs_dir)
    calibrate.fold_background_scale(network, scale)
    return scale


def write_classes(out_dir: Path, classes: ClassSpec, image_size: int, framing: str | None = None,
                  crop=None, tta: str | None = None, signatures: dict[str, str] | None = None,
                  background_scale: float = 1.0) -> Path:
    """classes.json: class names, mask colours, the network's input size and, when known, the framing of
    the faces it was trained on ('sample' or 'celebahq', see serve/align.py) and the box of it they were
    cut to (crop [x0, y0, side], process.py --crop), for predict.py; "tta": "flip" when the model
    averages with the mirror image itself; "signatures": what each SavedModel signature takes
    ('framing': the whole aligned face, 'crop': its crop box); "background_scale" when the network's
    background probability was rescaled after training (train/calibrate.py)."""
    path = Path(out_dir) / "classes.json"
    meta = classes_meta(classes, image_size, framing, crop, tta, signatures, background_scale)
    write_text(path, json.dumps(meta, indent=2) + "\n")
    return path


def classes_meta(classes: ClassSpec, image_size: int, framing: str | None = None, crop=None,
                 tta: str | None = None, signatures: dict[str, str] | None = None,
                 background_scale: float = 1.0) -> dict:
    """The fields of classes.json (write_classes)."""
    meta = {"classes": list(classes.names), "colors": classes.colors.tolist(), "image_size": int(image_size)}
    if framing:
        meta["framing"] = framing
    if crop is not None:
        meta["crop"] = [float(v) for v in crop]
    if tta:
        meta["tta"] = tta
    if signatures:
        meta["signatures"] = dict(signatures)
    if background_scale != 1.0:
        meta["background_scale"] = float(background_scale)
    return meta


def export(segmenter: Segmenter, classes: ClassSpec, out_dir: Path, framing: str | None = None) -> Path:
    """Write the SavedModel (and classes.json) to out_dir; returns out_dir. The crop box is the
    segmenter's (Segmenter crop).

    The graph also holds the classes.json it is exported with (its function classes_json()), so that
    predict.py can tell an edited classes.json (serve/model_meta.py). Everything is written into a
    temporary folder beside out_dir first and moved in at the end, saved_model.pb last: a save killed
    midway leaves no saved_model.pb without its variables and classes.json (_move_export).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scale = segmenter.background_scale
    meta = classes_meta(classes, segmenter.image_size, framing, segmenter.crop, segmenter.tta, SIGNATURES, scale)
    text = json.dumps(meta)
    segmenter.classes_json = tf.function(lambda: tf.constant(text), input_signature=[])
    for stale in out_dir.parent.glob(f".tmp-export-{glob.escape(out_dir.name)}-*"):  # a killed export's
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-export-{out_dir.name}-", dir=out_dir.parent))
    try:
        tf.saved_model.save(segmenter, str(staging), signatures={"serving_default": segmenter.serve,
                                                                 "serve_crop": segmenter.serve_crop})
        write_classes(staging, classes, segmenter.image_size, framing, segmenter.crop, segmenter.tta, SIGNATURES,
                      scale)
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
    log.info("exported SavedModel to %s (signatures serving_default: uint8 aligned faces -> labels, "
             "probabilities; serve_crop: the same for crops of the box %s)", out_dir,
             "of the whole face" if segmenter.crop is None else list(segmenter.crop))
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
