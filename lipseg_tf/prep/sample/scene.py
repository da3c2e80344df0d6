"""What surrounds a synthetic face: the cluttered background, the neck and the clothes."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from lipseg_tf.prep.sample.canvas import REF, Frame, Painter, ellipse, mix, rgb
from lipseg_tf.prep.sample.geometry import Colours, FaceGeometry


def paint_background(rng: np.random.Generator, painter: Painter, colours: Colours) -> None:
    """A gradient between four random corners (often muted), with 3-14 shapes or stripes over it, some in
    skin or lip colours; half the time drawn small and blown up, out of focus."""
    size = painter.canvas.size[0]
    corners = rng.uniform(0, 255, (2, 2, 3))
    if rng.random() < 0.5:  # muted, like most photo backgrounds
        corners = mix(corners, corners.mean(axis=(0, 1)), rng.uniform(0.3, 0.8))
    soft = rng.random() < 0.5
    work_size = size // 4 if soft else size  # soft: drawn small, then blown up (out of focus)
    base = Image.fromarray(corners.astype(np.uint8)).resize((work_size, work_size), Image.BILINEAR)
    draw = ImageDraw.Draw(base)
    for _ in range(int(rng.integers(3, 15))):
        _background_shape(rng, draw, work_size / REF, colours)
    if soft:  # bilinear up to the photo size, then nearest up to the canvas: the final reduce() undoes it
        base = base.resize((size // painter.supersampling,) * 2, Image.BILINEAR).resize((size, size), Image.NEAREST)
    painter.canvas.paste(base, (0, 0))


def _background_color(rng: np.random.Generator, colours: Colours) -> tuple[int, int, int]:
    """Skin-like 17% of the time, lip-like 15%, anything otherwise: the model must not rely on colour."""
    draw_kind = rng.random()
    if draw_kind < 0.17:
        return rgb(np.asarray(colours.skin) + rng.normal(0, 12, 3))
    if draw_kind < 0.32:
        return rgb(np.asarray(colours.lip) + rng.normal(0, 12, 3))
    return rgb(rng.uniform(0, 255, 3))


def _background_shape(rng: np.random.Generator, draw: ImageDraw.ImageDraw, scale: float, colours: Colours) -> None:
    """One ellipse, rectangle, polygon or set of stripes; scale: drawing pixels per reference pixel."""
    kind = rng.random()
    centre = rng.uniform(-60, REF + 60, 2)
    if kind < 0.3:
        radius_x, radius_y = rng.uniform(10, 130, 2)
        points = Frame(*centre, rng.uniform(0, np.pi))(ellipse(0, 0, radius_x, radius_y, 32))
        draw.polygon((points * scale).ravel().tolist(), fill=_background_color(rng, colours))
    elif kind < 0.55:
        half_x, half_y = rng.uniform(10, 160, 2)
        corners = np.array([(-half_x, -half_y), (half_x, -half_y), (half_x, half_y), (-half_x, half_y)])
        points = Frame(*centre, rng.uniform(0, np.pi))(corners)
        draw.polygon((points * scale).ravel().tolist(), fill=_background_color(rng, colours))
    elif kind < 0.75:
        points = centre + rng.uniform(-140, 140, (int(rng.integers(3, 7)), 2))
        draw.polygon((points * scale).ravel().tolist(), fill=_background_color(rng, colours))
    else:  # stripes
        angle, spacing = rng.uniform(0, np.pi), rng.uniform(12, 60)
        width = max(1, int(rng.uniform(0.2, 0.6) * spacing * scale))
        fill = _background_color(rng, colours)
        along = np.array([math.cos(angle), math.sin(angle)])
        across = np.array([-along[1], along[0]])
        for stripe in range(int(rng.integers(3, 10))):
            middle = centre + across * spacing * stripe
            segment = np.stack([middle - along * 900, middle + along * 900]) * scale
            draw.line(segment.ravel().tolist(), fill=fill, width=width)


def paint_neck_and_clothes(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry) -> None:
    """The neck (part `neck`), then clothes (`cloth`) with a V, round or high neckline, sometimes striped."""
    half_width, half_height, body = geometry.half_width, geometry.half_height, geometry.body
    neck_half = half_width * rng.uniform(0.5, 0.66)
    neck = np.array([(-neck_half, 0.2 * half_height), (neck_half, 0.2 * half_height),
                     (neck_half * 1.12, 3 * half_height), (-neck_half * 1.12, 3 * half_height)])
    painter.shape(body(neck), geometry.colours.skin * rng.uniform(0.72, 0.9), "neck")
    shoulder = half_height * rng.uniform(1.02, 1.4)
    drop = half_height * rng.uniform(0.1, 0.45)
    neckline = rng.random()
    cloth_points = [(-3 * half_width, shoulder + 2.2 * drop), (-2.2 * half_width, shoulder + drop),
                    (-neck_half * 1.25, shoulder)]
    if neckline < 0.4:  # V neck
        cloth_points += [(0, shoulder + half_height * rng.uniform(0.2, 0.6))]
    elif neckline < 0.8:  # round neck
        cloth_points += [(x, shoulder + half_height * 0.18 * math.cos(x / (neck_half * 1.25) * math.pi / 2))
                         for x in np.linspace(-neck_half * 1.1, neck_half * 1.1, 7)]
    else:  # high collar
        cloth_points += [(-neck_half * 1.15, shoulder - half_height * 0.15),
                         (neck_half * 1.15, shoulder - half_height * 0.15)]
    cloth_points += [(neck_half * 1.25, shoulder), (2.2 * half_width, shoulder + drop),
                     (3 * half_width, shoulder + 2.2 * drop), (3 * half_width, 4 * half_height),
                     (-3 * half_width, 4 * half_height)]
    cloth = body(np.array(cloth_points))
    painter.shape(cloth, rng.uniform(0, 255, 3), "cloth")
    if rng.random() < 0.35:  # a pattern on the clothes
        stripe_color = rng.uniform(0, 255, 3)
        step = rng.uniform(8, 30)

        def pattern(draw, xy):
            for stripe in range(-40, 40):
                x = geometry.centre_x + stripe * step
                draw.line(xy(np.array([(x, 0), (x + rng.uniform(-150, 150), REF)])), fill=rgb(stripe_color),
                          width=painter.width(step * 0.4))
        painter.clipped(cloth, pattern)
