"""The features of a synthetic face drawn over it: brows, eyes, mouth and sunglasses."""

from __future__ import annotations

import numpy as np

from lipseg_tf.prep.sample.canvas import Painter, ellipse, mix, rgb, superellipse
from lipseg_tf.prep.sample.geometry import SIDES, FaceGeometry

EyeOutlines = dict[int, tuple[np.ndarray, np.ndarray]]  # side (-1, +1) -> (outline, chord centre), face frame


def paint_brows(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry, eyes: EyeOutlines) -> None:
    """Two brows (l_brow, r_brow) arching over the eyes, thinning towards the outer end."""
    eye = geometry.eye
    gap = eye.width * rng.uniform(0.25, 0.5)
    length = eye.width * rng.uniform(1.0, 1.3)
    thickness = eye.width * rng.uniform(0.09, 0.2)
    arch = eye.width * rng.uniform(0.05, 0.2)
    color = mix(geometry.colours.skin, geometry.colours.hair * 0.8, rng.uniform(0.55, 0.95))
    for side, prefix in SIDES:
        t = np.linspace(0, 1, 12)
        x = eye.x - eye.width * 0.55 + t * length
        y = eyes[side][0][:, 1].min() - gap - arch * np.sin(np.pi * t ** 0.7)
        half = thickness * (1 - 0.6 * t) / 2
        points = np.concatenate([np.stack([x, y - half], 1), np.stack([x, y + half], 1)[::-1]])
        points[:, 0] *= side
        painter.shape(geometry.face(points), color, prefix + "brow")


def paint_eyes(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry, eyes: EyeOutlines) -> None:
    """Two eyes (l_eye, r_eye): a shaded lid above, the white, iris, pupil and highlight, lashes on top."""
    eye, face, skin = geometry.eye, geometry.face, geometry.colours.skin
    sclera = np.array([rng.uniform(215, 250)] * 3) - (0, rng.uniform(0, 10), rng.uniform(0, 14))
    sclera = sclera * (0.75 + 0.25 * max(geometry.colours.skin_lum, 0.4))
    for side, prefix in SIDES:
        outline, centre = eyes[side]
        upper_lid = outline[:17]
        lid_shadow = np.concatenate([upper_lid, (outline[16:0:-1] + (0, -eye.height * 0.6))])
        painter.shape(face(lid_shadow), skin * rng.uniform(0.78, 0.92))
        painter.shape(face(outline), sclera, prefix + "eye")

        def eye_detail(draw, xy, upper_lid=upper_lid, centre=centre):
            iris_x, iris_y = centre + eye.gaze
            radius = eye.iris_radius
            draw.polygon(xy(face(ellipse(iris_x, iris_y, radius, radius, 28))), fill=rgb(eye.iris_color))
            draw.polygon(xy(face(ellipse(iris_x, iris_y, radius * 0.75, radius * 0.75, 24))),
                         fill=rgb(eye.iris_color * 0.75))
            pupil = radius * 0.42
            draw.polygon(xy(face(ellipse(iris_x, iris_y, pupil, pupil, 20))), fill=(12, 10, 10))
            glint = radius * 0.18
            draw.polygon(xy(face(ellipse(iris_x + pupil * 0.6, iris_y - pupil * 0.6, glint, glint, 12))),
                         fill=(245, 245, 245))
            draw.line(xy(face(upper_lid)), fill=rgb(sclera * 0.7), width=painter.width(eye.height * 0.25))
        painter.clipped(face(outline), eye_detail)
        painter.line(face(upper_lid), mix(geometry.colours.hair, (10, 8, 8), 0.6), max(1.2, eye.width * 0.05))


def paint_mouth(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry) -> None:
    """A shadow under the lower lip, the open mouth's interior (part `mouth`) with teeth, then the lips
    (u_lip, l_lip), a highlight on the lower one and, when closed, the line between them."""
    mouth, face, lip = geometry.mouth, geometry.face, geometry.colours.lip
    t = np.linspace(-1, 1, 25)
    x = t * mouth.width / 2
    middle = -mouth.smile * t ** 2  # the line between the lips, corners raised by the smile
    half_gap = mouth.gap / 2 * (1 - t ** 2) ** 0.7
    upper_outer = middle - half_gap - mouth.upper_height * np.sqrt(1 - t ** 2) * (
        1 + 0.25 * np.exp(-((np.abs(t) - 0.35) / 0.2) ** 2) - mouth.bow * np.exp(-(t / 0.12) ** 2))
    upper_inner = middle - half_gap
    lower_inner = middle + half_gap
    lower_outer = lower_inner + mouth.lower_height * (1 - t ** 2) ** 0.55

    def between(upper_edge, lower_edge):
        return face(np.concatenate([np.stack([x, upper_edge + mouth.y], 1),
                                    np.stack([x, lower_edge + mouth.y], 1)[::-1]]))

    chin_shadow = ellipse(0, mouth.y + float(lower_outer.max()) + mouth.lower_height * 0.35, mouth.width * 0.3,
                          mouth.lower_height * 0.45, 24)
    painter.shape(face(chin_shadow), geometry.colours.skin * rng.uniform(0.84, 0.95))
    if mouth.is_open:
        _paint_mouth_interior(rng, painter, geometry, between(upper_inner, lower_inner))
    upper, lower = between(upper_outer, upper_inner), between(lower_inner, lower_outer)
    painter.shape(upper, lip * rng.uniform(0.82, 0.97), "u_lip")
    painter.shape(lower, lip, "l_lip")

    def lip_light(draw, xy):
        y = mouth.y + float(lower_inner.max()) + mouth.lower_height * 0.45
        highlight = ellipse(mouth.width * rng.uniform(-0.08, 0.08), y, mouth.width * 0.16, mouth.lower_height * 0.22,
                            20)
        draw.polygon(xy(face(highlight)), fill=rgb(np.minimum(lip * 1.15 + 12, 255)))
    painter.clipped(lower, lip_light)
    if not mouth.is_open:
        painter.line(face(np.stack([x, middle + mouth.y], 1)), mix(lip, (20, 5, 5), 0.55),
                     max(1.0, mouth.width * 0.015))


def _paint_mouth_interior(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry,
                          interior: np.ndarray) -> None:
    """The dark inside of an open mouth, sometimes a tongue, upper (and sometimes lower) teeth."""
    mouth, face, lip = geometry.mouth, geometry.face, geometry.colours.lip
    painter.shape(interior, mix((40, 10, 14), lip, rng.uniform(0.0, 0.3)), "mouth")
    teeth_height = mouth.gap * rng.uniform(0.3, 0.6)
    lower_teeth = rng.random() < 0.35
    tongue = rng.random() < 0.4
    top, bottom = mouth.y - mouth.gap, mouth.y + mouth.gap

    def teeth(draw, xy):
        white = np.array([rng.uniform(205, 245)] * 3) - (0, rng.uniform(0, 12), rng.uniform(5, 30))
        if tongue:
            draw.polygon(xy(face(ellipse(0, mouth.y + mouth.gap * 0.45, mouth.width * 0.22, mouth.gap * 0.35, 24))),
                         fill=rgb(mix(lip, (200, 80, 90), 0.4)))
        half = mouth.width * rng.uniform(0.3, 0.4)
        upper_edge = mouth.y - mouth.gap / 2 + teeth_height
        draw.polygon(xy(face(np.array([(-half, top), (half, top), (half, upper_edge), (-half, upper_edge)]))),
                     fill=rgb(white))
        if lower_teeth:
            lower_edge = mouth.y + mouth.gap / 2 - teeth_height * 0.6
            band = np.array([(-half * 0.8, bottom), (half * 0.8, bottom), (half * 0.8, lower_edge),
                             (-half * 0.8, lower_edge)])
            draw.polygon(xy(face(band)), fill=rgb(white * 0.92))
        for tooth in range(-3, 4):  # gaps between teeth
            gap_x = tooth * half / 3.5
            draw.line(xy(face(np.array([(gap_x, top), (gap_x, upper_edge)]))), fill=rgb(white * 0.75),
                      width=painter.width(mouth.width * 0.008))
    painter.clipped(interior, teeth)


def paint_sunglasses(rng: np.random.Generator, painter: Painter, geometry: FaceGeometry) -> None:
    """Sunglasses (part `eye_g`): a bridge, two rims and dark lenses with a reflection each."""
    eye, face = geometry.eye, geometry.face
    lens_w, lens_h = eye.width * rng.uniform(0.78, 0.95), eye.width * rng.uniform(0.45, 0.62)
    power = rng.uniform(2.0, 4.0)
    lens_color = rng.uniform(10, 60, 3)
    frame_color = rng.uniform(0, 80, 3) if rng.random() < 0.7 else rng.uniform(0, 255, 3)
    frame_w = eye.width * rng.uniform(0.04, 0.1)
    lens_y = eye.y - eye.height * 0.1
    lenses = {side: face(superellipse(side * eye.x, lens_y, lens_w, lens_h, power)) for side in (-1, 1)}
    inner_x, bridge_top = eye.x - lens_w * 0.9, eye.y - lens_h * 0.5
    bridge = face(np.array([(-inner_x, bridge_top), (inner_x, bridge_top), (inner_x, bridge_top + frame_w * 1.5),
                            (-inner_x, bridge_top + frame_w * 1.5)]))
    painter.shape(bridge, frame_color, "eye_g")
    for side in (-1, 1):
        rim = face(superellipse(side * eye.x, lens_y, lens_w + frame_w, lens_h + frame_w, power))
        painter.shape(rim, frame_color, "eye_g")
        painter.shape(lenses[side], lens_color, "eye_g")

        def reflection(draw, xy, centre_x=side * eye.x):
            streak = np.array([(centre_x - lens_w, eye.y), (centre_x - lens_w * 0.2, eye.y - lens_h),
                               (centre_x + lens_w * 0.1, eye.y - lens_h),
                               (centre_x - lens_w * 0.7, eye.y + lens_h * 0.3)])
            draw.polygon(xy(face(streak)), fill=rgb(lens_color + rng.uniform(15, 50)))
        painter.clipped(lenses[side], reflection)
