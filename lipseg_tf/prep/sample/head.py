"""The head of a synthetic face: hair behind it and the fringe over it, the ears, the face itself and the
nose."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lipseg_tf.prep.sample.canvas import Painter, ellipse, mix, rgb
from lipseg_tf.prep.sample.geometry import SIDES, FaceGeometry

NO_HAIR, SHORT_HAIR, LONG_HAIR = 0, 1, 2


@dataclass(frozen=True)
class HairCap:
    """The hair over the skull: an ellipse (face frame) centred `rise` above the face centre."""
    style: int  # NO_HAIR, SHORT_HAIR or LONG_HAIR
    rise: float
    radius_x: float
    radius_y: float


def paint_hair(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry) -> HairCap:
    """Hair behind the head (part `hair`): none, a cap (sometimes cropped close) or a cap with long hair
    falling below it, with strands drawn over it. Returns the cap, for the fringe."""
    half_width, half_height = geometry.half_width, geometry.half_height
    style = rng.choice(3, p=[0.08, 0.47, 0.45])
    rise = half_height * rng.uniform(0.08, 0.2)
    radius_x, radius_y = half_width * rng.uniform(1.05, 1.2), half_height * rng.uniform(0.95, 1.08)
    if style == SHORT_HAIR and rng.random() < 0.3:  # cropped close
        radius_x, radius_y, rise = (half_width * rng.uniform(1.01, 1.05), half_height * rng.uniform(0.92, 0.98),
                                    half_height * rng.uniform(0.02, 0.08))
    cap = HairCap(style, rise, radius_x, radius_y)
    hair_shapes = []
    if style != NO_HAIR:
        hair_shapes.append(ellipse(0, -rise, radius_x, radius_y, 48))
    if style == LONG_HAIR:
        length = half_height * rng.uniform(1.1, 2.3)
        spread = radius_x * rng.uniform(1.0, 1.18)
        xs = np.linspace(spread, -spread, 12)
        ends = length + rng.normal(0, half_height * 0.06, 12)
        top = -rise + radius_y * 0.3
        hair_shapes.append(np.concatenate([[(-radius_x * 0.95, top), (radius_x * 0.95, top)],
                                           np.stack([xs, ends], 1)]))
    for shape in hair_shapes:
        painter.shape(geometry.face(shape), geometry.colours.hair, "hair")
    for shape in hair_shapes:
        painter.clipped(geometry.face(shape),
                        lambda draw, xy: _strands(rng, draw, xy, painter, geometry, cap, geometry.colours.hair))
    return cap


def _strands(rng: np.random.Generator, draw, xy, painter: Painter, geometry: FaceGeometry, cap: HairCap,
             color) -> None:
    """40 slightly bent strands, lighter and darker than `color`, running down over the hair."""
    half_width, half_height = geometry.half_width, geometry.half_height
    for _ in range(40):
        start_x = rng.uniform(-cap.radius_x, cap.radius_x)
        start_y = rng.uniform(-cap.rise - cap.radius_y, half_height * 0.5)
        bend = rng.uniform(-0.3, 0.3)
        t = np.linspace(0, 1, 6)[:, None]
        points = np.concatenate([start_x + bend * half_width * t ** 2,
                                 start_y + t * half_height * rng.uniform(0.3, 0.9)], 1)
        draw.line(xy(geometry.face(points)), fill=rgb(color * rng.uniform(0.6, 1.4)),
                  width=painter.width(rng.uniform(0.5, 2.0)))


def paint_fringe(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry, cap: HairCap,
                 eye_top: float) -> None:
    """On 30% of the faces with hair, a fringe over the forehead: the part of the cap below a random level,
    with a wavy, maybe slanted lower edge that stays above the eyes (it may cover the brows)."""
    if cap.style == NO_HAIR or rng.random() >= 0.3:
        return
    half_width, half_height = geometry.half_width, geometry.half_height
    limit = eye_top - geometry.eye.width * 0.12
    level = rng.uniform(-0.75 * half_height, limit)
    alpha = math.asin(min(1.0, max(0.0, -(level + cap.rise) / cap.radius_y)))
    half = cap.radius_x * math.cos(alpha)
    xs = np.linspace(half, -half, 15)
    edge = level + rng.uniform(0.02, 0.08) * half_height * np.sin(xs / half_width * rng.uniform(4, 9)
                                                                  + rng.uniform(0, 6))
    edge = np.minimum(edge + rng.uniform(-0.15, 0.15) * half_height * xs / half_width, limit)
    arc_angle = np.linspace(np.pi + alpha, 2 * np.pi - alpha, 20)
    arc = np.stack([cap.radius_x * np.cos(arc_angle), -cap.rise + cap.radius_y * np.sin(arc_angle)], 1)
    fringe = geometry.face(np.concatenate([arc, np.stack([xs, edge], 1)]))
    hair = geometry.colours.hair
    painter.shape(fringe, hair * rng.uniform(0.9, 1.1), "hair")
    painter.clipped(fringe, lambda draw, xy: _strands(rng, draw, xy, painter, geometry, cap, hair * 1.05))


def paint_ears(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry) -> None:
    """On 60% of the faces, two ears (l_ear, r_ear) behind the face, each with its inner fold."""
    if rng.random() >= 0.6:
        return
    half_width, half_height, skin = geometry.half_width, geometry.half_height, geometry.colours.skin
    ear_y = geometry.eye.y + half_height * rng.uniform(0.05, 0.18)
    radius_x, radius_y = half_width * rng.uniform(0.12, 0.17), half_height * rng.uniform(0.2, 0.28)
    for side, prefix in SIDES:
        points = ellipse(side * half_width * rng.uniform(0.93, 1.0), ear_y, radius_x, radius_y, 28)
        painter.shape(geometry.face(points), skin * rng.uniform(0.82, 0.95), prefix + "ear")
        fold = ellipse(side * (half_width * 0.97 + radius_x * 0.35), ear_y, radius_x * 0.45, radius_y * 0.6, 20)
        painter.line(geometry.face(np.concatenate([fold, fold[:1]])), skin * 0.7, radius_x * 0.15)


def paint_face(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry) -> tuple[np.ndarray, np.ndarray]:
    """The face outline (part `skin`), shaded by a few nested copies shifted towards a light, and sometimes
    blush. Returns the outline (face frame) and the light's offset."""
    half_width, half_height, skin = geometry.half_width, geometry.half_height, geometry.colours.skin
    angle = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    chin = rng.uniform(0.1, 0.26)
    x, y = half_width * np.cos(angle), half_height * np.sin(angle)
    x = x * np.where(y > 0, 1 - chin * (y / half_height) ** 2, 1 - 0.06 * (y / half_height) ** 2)
    outline = np.stack([x, y], 1)
    painter.shape(geometry.face(outline), skin * rng.uniform(0.8, 0.9), "skin")
    light = rng.uniform(-1, 1, 2) * np.array([half_width, half_height]) * 0.12
    for i, (shrink, gain) in enumerate(((0.94, 0.93), (0.85, 0.97), (0.7, 1.0))):
        painter.shape(geometry.face(outline * shrink + light * (i + 1) / 3), skin * gain)
    if rng.random() < 0.5:  # blush
        for side in (-1, 1):
            cheek = ellipse(side * half_width * 0.5, half_height * 0.22, half_width * 0.2, half_height * 0.12, 24)
            painter.shape(geometry.face(cheek), mix(skin, geometry.colours.lip, rng.uniform(0.05, 0.18)))
    return outline, light


def paint_nose(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry, light: np.ndarray) -> None:
    """The nose (part `nose`): a shaded side away from the light, nostrils and a highlight on the tip."""
    eye, face, skin = geometry.eye, geometry.face, geometry.colours.skin
    nose_y = eye.y + (geometry.mouth.y - eye.y) * rng.uniform(0.55, 0.7)
    nose_w = eye.width * rng.uniform(0.75, 1.05)
    bridge = eye.y - eye.height * 0.2
    top_w = nose_w * rng.uniform(0.22, 0.35)
    nose = np.array([(-top_w / 2, bridge), (top_w / 2, bridge), (nose_w * 0.32, nose_y - nose_w * 0.35),
                     (nose_w / 2, nose_y - nose_w * 0.05), (nose_w * 0.42, nose_y + nose_w * 0.12),
                     (0, nose_y + nose_w * 0.2), (-nose_w * 0.42, nose_y + nose_w * 0.12),
                     (-nose_w / 2, nose_y - nose_w * 0.05), (-nose_w * 0.32, nose_y - nose_w * 0.35)])
    painter.shape(face(nose), skin * rng.uniform(0.9, 1.02), "nose")
    shade_side = 1 if light[0] < 0 else -1

    def nose_detail(draw, xy):
        side_points = np.array([(shade_side * top_w * 0.4, bridge), (shade_side * nose_w * 0.45, nose_y)])
        draw.line(xy(face(side_points)), fill=rgb(skin * 0.78), width=painter.width(nose_w * 0.12))
        for side in (-1, 1):
            nostril = ellipse(side * nose_w * 0.2, nose_y + nose_w * 0.08, nose_w * 0.1, nose_w * 0.05, 16)
            draw.polygon(xy(face(nostril)), fill=rgb(skin * 0.45))
        tip = ellipse(-shade_side * nose_w * 0.05, nose_y - nose_w * 0.12, nose_w * 0.12, nose_w * 0.09, 16)
        draw.polygon(xy(face(tip)), fill=rgb(np.minimum(skin * 1.08 + 8, 255)))
    painter.clipped(face(nose), nose_detail)
