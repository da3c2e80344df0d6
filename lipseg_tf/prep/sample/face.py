"""render_face: one synthetic face, its photo and its part masks, drawn from one seeded generator."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lipseg_tf.prep.parts import CELEBAMASK_PARTS
from lipseg_tf.prep.sample import features, head, scene
from lipseg_tf.prep.sample.canvas import PART_ID, REF, Frame, Painter
from lipseg_tf.prep.sample.geometry import draw_geometry, eye_outline


def render_face(seed: int, image_id: int, size: int = 512, sunglasses: bool | None = None,
                open_mouth: bool | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw face `image_id` of dataset `seed`.

    Returns (photo, masks): photo is (size, size, 3) uint8; masks maps each visible part name to a
    (512, 512) uint8 array of 0 and 255. sunglasses / open_mouth force that feature on or off (for tests
    and demos); None leaves it to chance (~12% / ~40%). The same arguments always give the same arrays.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, image_id)))
    supersampling = 2 if size >= 256 else 4
    painter = Painter(size, supersampling)
    geometry = draw_geometry(rng, sunglasses, open_mouth)
    eyes = {side: eye_outline(geometry.eye, side) for side in (-1, 1)}
    eye_top = min(float(outline[:, 1].min()) for outline, _ in eyes.values())

    # Back to front; each step draws from rng in turn, so this order is part of the dataset.
    scene.paint_background(rng, painter, geometry.colours)
    hair_cap = head.paint_hair(rng, painter, geometry)
    scene.paint_neck_and_clothes(rng, painter, geometry)
    head.paint_ears(rng, painter, geometry)
    outline, light = head.paint_face(rng, painter, geometry)
    head.paint_nose(rng, painter, geometry, light)
    features.paint_brows(rng, painter, geometry, eyes)
    if not geometry.sunglasses:  # eyes behind sunglasses are hidden: not drawn, no eye files
        features.paint_eyes(rng, painter, geometry, eyes)
    features.paint_mouth(rng, painter, geometry)
    head.paint_fringe(rng, painter, geometry, hair_cap, eye_top)
    if geometry.sunglasses:
        features.paint_sunglasses(rng, painter, geometry)
    photo = _camera(rng, painter, size)
    return photo, _part_masks(np.asarray(painter.label), geometry.face, outline)


def _camera(rng: np.random.Generator, painter: Painter, size: int) -> np.ndarray:
    """The canvas as a camera sees it: downsampled (antialiased), sometimes blurred, lit by a gradient with
    a colour tint, plus noise. Returns (size, size, 3) uint8."""
    photo = painter.canvas.reduce(painter.supersampling)  # the mean of each block: antialiasing
    if rng.random() < 0.4:
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 2.0) * size / REF))
    slope_x, slope_y = rng.uniform(-0.5, 0.5, 2)
    exposure = rng.uniform(0.75, 1.15)
    tint = 1 + rng.uniform(-0.08, 0.08, 3)
    sigma = rng.uniform(1.5, 7.0)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    gain = exposure * (1 + slope_x * coords[None, :] + slope_y * coords[:, None])
    image = np.array(photo, dtype=np.float32)
    image *= gain[..., None]
    image *= tint.astype(np.float32)
    # Noise: the sum of two uniform bytes (triangular, close to gaussian), far cheaper than normal().
    count = size * size * 3
    noise = np.frombuffer(rng.bytes(count), np.uint8).astype(np.float32)
    noise += np.frombuffer(rng.bytes(count), np.uint8)
    noise -= 255.0
    noise *= np.float32(sigma / 104.2)  # the sum's standard deviation is 255 * sqrt(2 / 12) = 104.2
    image += noise.reshape(size, size, 3)
    image += 0.5
    np.clip(image, 0, 255, out=image)
    return image.astype(np.uint8)


def _part_masks(label: np.ndarray, face: Frame, outline: np.ndarray) -> dict[str, np.ndarray]:
    """Part name -> (512, 512) uint8 mask of 0 and 255, for each part visible in the label map. `skin` is
    the whole face outline (inner parts included, like CelebAMask-HQ's) minus hair falling over it."""
    outline_image = Image.new("L", (REF, REF), 0)
    ImageDraw.Draw(outline_image).polygon((face(outline) - 0.5).ravel().tolist(), fill=1)
    masks = {}
    for part in CELEBAMASK_PARTS:
        if part == "skin":
            region = (np.asarray(outline_image) > 0) & (label != PART_ID["hair"])
        else:
            region = label == PART_ID[part]
        if region.any():
            masks[part] = region.astype(np.uint8) * 255
    return masks
