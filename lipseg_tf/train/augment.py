"""Photometric and geometric augmentation for real face photos (`--augment face`).

pix2pix's jitter (resize, random crop, flip: pipeline.jitter) is all the synthetic faces need. Real photos
reach a model through a face detector and an alignment that are never exact, in any light, blurred, and
JPEG-compressed; `face_augment` shows the network that variety. One draw per pair, applied to photo and
mask together:

    geometry  one affine transform about the centre: scale 0.9-1.1, rotation +-10 degrees, shift +-5 %
              of the side; the photo is sampled bilinearly, the labels by nearest neighbour (never
              blended), and both are filled with background (grey photo) where the transform leaves
              the frame
    colour    brightness +-0.15, contrast 0.7-1.3, saturation 0.7-1.3, hue +-0.03
    blur      a Gaussian blur of sigma 0.4-1.2 pixels on 20 % of the photos
    JPEG      re-encoding at quality 30-90 on 30 % of the photos

Every draw is a stateless op seeded from the pair's seed, so a run stays reproducible from --seed.
"""

from __future__ import annotations

import math

import tensorflow as tf

from lipseg_tf.train.config import AUGMENTS

__all__ = ["AUGMENTS", "face_augment", "geometry", "photometric", "blur", "affine_matrix"]
MAX_SCALE = 0.10
MAX_ROTATION_DEG = 10.0
MAX_SHIFT = 0.05
BLUR_PROBABILITY = 0.2
JPEG_PROBABILITY = 0.3
FILL_GREY = 127.5


def _uniform(seed, offset: int, low: float, high: float) -> tf.Tensor:
    return tf.random.stateless_uniform((), seed=seed + offset, minval=low, maxval=high)


def affine_matrix(scale, angle, shift_x, shift_y, size: int) -> tf.Tensor:
    """The (8,) output-to-input projective transform of ImageProjectiveTransformV3 for a similarity
    about the image centre: output = R(angle) * scale * (input - c) + c + shift (shift in pixels)."""
    centre = (size - 1) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # Inverse map: input = R(-angle) / scale * (output - c - shift) + c.
    ox, oy = centre + shift_x, centre + shift_y
    a0, a1 = cos, sin
    b0, b1 = -sin, cos
    a2 = centre - a0 * ox - a1 * oy
    b2 = centre - b0 * ox - b1 * oy
    zero = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zero, zero])


def _warp(image, transform, interpolation: str, fill: float):
    """image (H, W, C) float32 through an (8,) transform, same size."""
    size = tf.shape(image)[:2]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=size,
        fill_value=tf.constant(fill, tf.float32), interpolation=interpolation, fill_mode="CONSTANT")[0]


def geometry(image, labels, seed, size: int):
    """One random scale/rotation/shift for photo (S, S, 3) float and labels (S, S, 1) int32 together."""
    scale = _uniform(seed, 10, 1.0 - MAX_SCALE, 1.0 + MAX_SCALE)
    angle = _uniform(seed, 11, -MAX_ROTATION_DEG, MAX_ROTATION_DEG) * (math.pi / 180.0)
    shift_x = _uniform(seed, 12, -MAX_SHIFT, MAX_SHIFT) * size
    shift_y = _uniform(seed, 13, -MAX_SHIFT, MAX_SHIFT) * size
    transform = affine_matrix(scale, angle, shift_x, shift_y, size)
    image = _warp(image, transform, "BILINEAR", FILL_GREY)
    labels = tf.cast(_warp(tf.cast(labels, tf.float32), transform, "NEAREST", 0.0), tf.int32)
    return image, labels


def _gaussian_kernel(sigma, radius: int = 3) -> tf.Tensor:
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / tf.reduce_sum(kernel)
    return kernel


def blur(image, sigma):
    """A separable Gaussian blur of (H, W, 3) float32."""
    kernel = _gaussian_kernel(sigma)
    horizontal = tf.tile(kernel[None, :, None, None], [1, 1, 3, 1])
    vertical = tf.tile(kernel[:, None, None, None], [1, 1, 3, 1])
    out = tf.nn.depthwise_conv2d(image[None], horizontal, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(out, vertical, [1, 1, 1, 1], "SAME")[0]


def photometric(image, seed):
    """Colour jitter, sometimes blur, sometimes JPEG: photo (S, S, 3) float in [0, 255] -> the same."""
    image = image / 255.0
    image = tf.image.stateless_random_brightness(image, 0.15, seed=seed + 20)
    image = tf.image.stateless_random_contrast(image, 0.7, 1.3, seed=seed + 21)
    image = tf.image.stateless_random_saturation(image, 0.7, 1.3, seed=seed + 22)
    image = tf.image.stateless_random_hue(image, 0.03, seed=seed + 23)
    image = tf.clip_by_value(image, 0.0, 1.0)
    sigma = _uniform(seed, 24, 0.4, 1.2)
    image = tf.cond(_uniform(seed, 25, 0.0, 1.0) < BLUR_PROBABILITY, lambda: blur(image, sigma), lambda: image)
    quality = tf.cast(_uniform(seed, 26, 30.0, 90.0), tf.int32)
    image = tf.cond(_uniform(seed, 27, 0.0, 1.0) < JPEG_PROBABILITY,
                    lambda: tf.image.adjust_jpeg_quality(image, quality), lambda: image)
    image.set_shape([None, None, 3])
    return image * 255.0


def face_augment(image, labels, seed, size: int):
    """`--augment face` on one training pair after pipeline.jitter: photo (S, S, 3) float32 in [0, 255],
    labels (S, S, 1) int32, seed (2,) int64 -> the same shapes and types."""
    image, labels = geometry(image, labels, seed, size)
    return photometric(image, seed), labels
