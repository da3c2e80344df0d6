"""tf.data over a folder of AB pair images (photo left, mask right).

Each element is (image, labels): the photo as float32 in [-1, 1] (H, W, 3) and its mask as int32 class
ids (H, W). The mask half is decoded to class ids by the nearest palette colour *before* any resizing,
so augmentation moves labels, never blends them. Training jitter is pix2pix's: resize to scale_size
(the mask by nearest neighbour), one random crop applied to the stacked photo and mask, and a random
horizontal flip that also swaps the left/right classes. Test mode resizes to image_size and nothing else.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from lipseg_tf.errors import UserError
from lipseg_tf.pairs import META_FILE as PAIRS_META_FILE

log = logging.getLogger("lipseg_tf")
CACHE_LIMIT_BYTES = 2 << 30  # decoded pairs are cached in memory below this size


def find_pair_files(input_dir: str | Path, split: str | None = None) -> list[Path]:
    """The AB PNG files to read: <input_dir>/<split>/ when that folder exists, else <input_dir>/ itself.

    Every file is checked to be twice as wide as high (header read only); UserError names the first
    file that is not, or the folder when it holds no PNG.
    """
    folder = Path(input_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: folder not found (expected a folder of AB pair images)")
    if split and (folder / split).is_dir():
        folder = folder / split
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg") and not p.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: no AB pair images found (expected <id>.png files, "
                        f"photo left and mask right{', or a ' + split + '/ subfolder' if split else ''})")
    for path in files:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception as err:
            raise UserError(f"{path}: unreadable image ({err})") from None
        if width != 2 * height:
            raise UserError(f"{path}: AB pair must be twice as wide as high, got {width}x{height}")
    return files


def read_pairs_meta(input_dir: str | Path) -> dict | None:
    """pairs.json written by process.py beside the split folders (or in the folder itself), if any."""
    folder = Path(input_dir)
    for candidate in (folder / PAIRS_META_FILE, folder.parent / PAIRS_META_FILE):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except json.JSONDecodeError as err:
                raise UserError(f"{candidate}: not valid JSON ({err})") from None
    return None


def decode_pair(path: tf.Tensor, colors: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """AB file -> (photo uint8 (H, W, 3), class ids uint8 (H, W, 1)) by the nearest palette colour."""
    ab = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    width = tf.shape(ab)[1] // 2
    image, mask_rgb = ab[:, :width], ab[:, width:2 * width]
    diff = tf.cast(mask_rgb[:, :, None, :], tf.int32) - tf.cast(colors[None, None], tf.int32)
    labels = tf.argmin(tf.reduce_sum(diff * diff, axis=-1), axis=-1, output_type=tf.int32)
    return image, tf.cast(labels[..., None], tf.uint8)


def resize_pair(image, labels, size: int):
    """Photo resized with antialiasing, labels with nearest neighbour (no new values)."""
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), method="bilinear", antialias=True)
    labels = tf.image.resize(labels, (size, size), method="nearest")
    return image, labels


def jitter(image, labels, seed, crop_size: int, flip: bool, flip_perm: tf.Tensor):
    """pix2pix's random jitter on a pair already resized to scale_size: one draw for photo and mask.

    `seed` is a (2,) int tensor; the crop and the flip use stateless ops seeded from it, so a run
    is reproducible from --seed.
    """
    stacked = tf.concat([image, tf.cast(labels, tf.float32)], axis=-1)   # (scale, scale, 4)
    stacked = tf.image.stateless_random_crop(stacked, (crop_size, crop_size, 4), seed=seed)
    image, labels = stacked[..., :3], tf.cast(stacked[..., 3:], tf.int32)
    if flip:
        do_flip = tf.random.stateless_uniform((), seed=seed + 1) < 0.5
        image = tf.where(do_flip, tf.reverse(image, axis=[1]), image)
        # A mirrored left eye is a right eye: flip the pixels and swap the classes.
        labels = tf.where(do_flip, tf.gather(flip_perm, tf.reverse(labels, axis=[1])), labels)
    return image, labels


def make_dataset(files, colors, flip_perm, *, training: bool, image_size: int, scale_size: int,
                 batch_size: int, flip: bool = True, seed: int = 0, cache: bool = True,
                 repeat: bool = False, deterministic: bool | None = None) -> tf.data.Dataset:
    """Batched (image in [-1, 1] float32 (B, S, S, 3), labels int32 (B, S, S)) from AB files.

    Args:
        files: AB image paths (find_pair_files).
        colors: (num_classes, 3) uint8 palette of the mask half (parts.palette).
        flip_perm: class permutation applied by a horizontal flip (parts.flip_permutation).
        training: shuffle and jitter when True; plain resize to image_size when False.
        image_size, scale_size: crop size and the size resized to before cropping.
        batch_size: batch size; test batches keep the last partial batch.
        seed: seed of shuffling and jitter.
        cache: keep decoded pairs in memory when they fit (CACHE_LIMIT_BYTES).
        repeat: repeat forever (training loops that count steps).
    """
    paths = [str(p) for p in files]
    colors = tf.constant(np.asarray(colors, np.uint8))
    flip_perm = tf.constant(np.asarray(flip_perm, np.int32))
    autotune = tf.data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices(paths)
    # Decoded pairs are cached at the size they will be used at (scale_size for training).
    decoded_size = scale_size if training else image_size
    ds = ds.map(lambda p: resize_pair(*decode_pair(p, colors), decoded_size), num_parallel_calls=autotune,
                deterministic=deterministic)
    ds = ds.map(lambda im, lb: (im, tf.cast(lb, tf.uint8)))
    if cache and len(paths) * decoded_size ** 2 * 16 < CACHE_LIMIT_BYTES:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(len(paths), 2048), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda pair, s: jitter(pair[0], pair[1], s, image_size, flip, flip_perm),
            num_parallel_calls=autotune, deterministic=deterministic)
    elif repeat:
        ds = ds.repeat()
    ds = ds.map(lambda im, lb: (im / 127.5 - 1.0, tf.cast(lb[..., 0], tf.int32)), num_parallel_calls=autotune)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(autotune)


# Mask colours map to [-MASK_RANGE, MASK_RANGE], not [-1, 1]. Black at exactly -1 is the asymptote of the
# generator's tanh: L1 then pushes the background's pre-activations down without end, the shared output
# layer saturates for every pixel, and the parts never get a gradient again (measured: an all-black
# output after 30 epochs on the sample).
MASK_RANGE = 0.8


def colors_to_model_range(colors) -> tf.Tensor:
    """uint8 palette (C, 3) -> float32 colours in [-MASK_RANGE, MASK_RANGE], as the generator outputs them."""
    return tf.constant((np.asarray(colors, np.float32) / 127.5 - 1.0) * MASK_RANGE)


def labels_to_image(labels: tf.Tensor, colors) -> tf.Tensor:
    """Class ids (..., H, W) -> their palette colours as pix2pix's target image (..., H, W, 3)."""
    return tf.gather(colors_to_model_range(colors), labels)


def image_to_class_scores(image: tf.Tensor, colors, temperature: float = 0.05) -> tf.Tensor:
    """pix2pix output (..., 3) -> class probabilities by distance to each palette colour.

    The class of a pixel is its nearest palette colour; the softmax over negative squared distances
    (scaled by `temperature`) turns that into per-class scores that sum to 1.
    """
    diff = image[..., None, :] - colors_to_model_range(colors)
    return tf.nn.softmax(-tf.reduce_sum(diff * diff, axis=-1) / temperature, axis=-1)
