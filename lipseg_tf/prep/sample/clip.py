"""Video clips with known masks: one rendered face (face.py; or any face photo and its labels, warp_clip)
moved, turned and scaled over a plain background by a changing similarity transform, its label map
warped the same way (nearest).

"move": across the frame and back once per `period` frames (4 s at 25 fps by default: a brisk head
movement, about 9 px a frame at 640 x 480), tilted up to +-20 degrees, 85-115 % of its size; "still": in
place. Both add independent sensor noise to every frame, so a still clip still changes frame to frame.
For predict.py's video tests and tools/bench_video.py; no TensorFlow.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from lipseg_tf.prep.parts import DEFAULT_PARTS
from lipseg_tf.prep.sample.face import render_face

MOTIONS = ("move", "still")
RENDER = 512              # the face is drawn at its masks' size
BACKGROUND = (96, 104, 112)


def _frame_to_face(t: float, motion: str, shape: tuple[int, int], face_side: float) -> tuple:
    """PIL's affine data at phase t (1 = one period): frame pixel -> rendered-face pixel."""
    height, width = shape
    if motion == "still":
        angle, scale, cx, cy = 0.0, 1.0, width / 2, height / 2
    else:
        wave = math.sin(2 * math.pi * t)
        angle = math.radians(20) * wave
        scale = 1 + 0.15 * math.sin(4 * math.pi * t)
        cx = width / 2 + 0.22 * width * wave
        cy = height / 2 + 0.08 * height * math.sin(4 * math.pi * t + 1)
    s = face_side / RENDER * scale
    c, n = math.cos(angle) / s, math.sin(angle) / s
    # face = R(-angle) (frame - centre) / s + RENDER / 2
    return (c, n, RENDER / 2 - c * cx - n * cy, -n, c, RENDER / 2 + n * cx - c * cy)


def render_clip(seed: int, image_id: int, frames: int, shape: tuple[int, int] = (480, 640),
                motion: str = "move", noise: float = 3.0, face_side: float | None = None, period: int = 100):
    """Face `image_id` of sample `seed` (no sunglasses, mouth closed) over `frames` frames of `shape` (H, W).

    face_side: the rendered face square's side in the frame (pixels; default 0.55 of the frame's
    height); noise: the standard deviation of the Gaussian sensor noise (0-255 scale).
    Returns (frames (N, H, W, 3) uint8, labels (N, H, W) uint8: class ids in DEFAULT_PARTS order after 0).
    """
    photo, masks = render_face(seed, image_id, RENDER, sunglasses=False, open_mouth=False)
    label_map = np.zeros((RENDER, RENDER), np.uint8)
    for k, part in enumerate(DEFAULT_PARTS, start=1):
        if part in masks:
            label_map[masks[part] > 0] = k
    return warp_clip(photo, label_map, frames, shape, motion, noise, face_side, period, seed * 1000 + image_id)


def warp_clip(photo: np.ndarray, labels: np.ndarray, frames: int, shape: tuple[int, int] = (480, 640),
              motion: str = "move", noise: float = 3.0, face_side: float | None = None, period: int = 100,
              seed: int = 0):
    """Any square face photo (S, S, 3) uint8 and its class ids (S, S) moved as render_clip moves its face
    (e.g. a real CelebA-HQ face and its mask) -> (frames (N, H, W, 3) uint8, labels (N, H, W) uint8)."""
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}, valid: {', '.join(MOTIONS)}")
    face_image = Image.fromarray(photo).resize((RENDER, RENDER), Image.Resampling.LANCZOS)
    label_image = Image.fromarray(labels).resize((RENDER, RENDER), Image.Resampling.NEAREST)
    height, width = shape
    side = face_side or 0.55 * height
    rng = np.random.default_rng(seed)
    images = np.empty((frames, height, width, 3), np.uint8)
    out_labels = np.empty((frames, height, width), np.uint8)
    for index in range(frames):
        data = _frame_to_face(index / period, motion, shape, side)
        image = face_image.transform((width, height), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR,
                                     fillcolor=BACKGROUND)
        out_labels[index] = np.asarray(label_image.transform((width, height), Image.Transform.AFFINE, data,
                                                             Image.Resampling.NEAREST, fillcolor=0))
        noisy = np.asarray(image, np.float32) + rng.normal(0, noise, (height, width, 3)) if noise else image
        images[index] = np.clip(np.asarray(noisy) + 0.5 * bool(noise), 0, 255).astype(np.uint8)
    return images, out_labels
