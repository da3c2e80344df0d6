"""One synthetic face's random parameters: its frame, colours, eyes and mouth, drawn in a fixed order."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lipseg_tf.prep.sample.canvas import REF, Frame, mix

SKIN_RAMP = np.array([(255, 230, 212), (243, 204, 178), (230, 180, 148), (212, 160, 122), (186, 132, 95),
                      (156, 104, 70), (124, 82, 54), (94, 62, 42), (66, 45, 32)], dtype=np.float64)
LIP_BASES = np.array([(196, 58, 72), (214, 96, 118), (178, 84, 86), (152, 72, 62), (124, 52, 54),
                      (206, 118, 126), (146, 36, 62), (104, 58, 48), (222, 70, 90)], dtype=np.float64)
HAIR_COLORS = np.array([(22, 18, 16), (40, 30, 24), (70, 48, 32), (104, 72, 46), (142, 102, 64),
                        (204, 172, 112), (226, 200, 146), (150, 64, 32), (168, 164, 160)], dtype=np.float64)
HAIR_WEIGHTS = np.array([0.22, 0.18, 0.16, 0.12, 0.08, 0.08, 0.05, 0.06, 0.05])
IRIS_COLORS = np.array([(70, 44, 26), (40, 28, 20), (110, 76, 40), (70, 110, 150), (86, 118, 80),
                        (120, 120, 126)], dtype=np.float64)
# The eyes, brows and ears in drawing order: side -1 (local x < 0) lies on the image's left. As in
# CelebAMask-HQ (and MediaPipe), l_ is the person's own left, which faces the camera on the image's RIGHT.
SIDES = ((-1, "r_"), (1, "l_"))


@dataclass(frozen=True)
class Colours:
    skin: np.ndarray
    skin_lum: float  # skin brightness, 0-1
    lip: np.ndarray
    hair: np.ndarray


@dataclass(frozen=True)
class EyeShape:
    """The eye on the positive-x side of the face frame; the other one is its mirror image."""
    x: float  # centre of its corner-to-corner chord, in the face frame
    y: float
    width: float
    height: float
    upper_fraction: float  # share of the height above the chord
    tilt: float  # radians, outer corner up
    skew: float  # < 1 puts the top of the upper lid towards the inner corner
    gaze: np.ndarray  # iris offset from the chord centre
    iris_radius: float
    iris_color: np.ndarray


@dataclass(frozen=True)
class MouthShape:
    y: float  # the line between the lips, below the face centre
    width: float
    smile: float  # how far the corners rise
    upper_height: float
    lower_height: float
    bow: float  # depth of the dip in the middle of the upper lip (Cupid's bow)
    gap: float  # opening between the lips; 0 when closed
    is_open: bool


@dataclass(frozen=True)
class FaceGeometry:
    """A face in reference pixels: an ellipse of half_width x half_height in its own frame (x right, y down,
    origin at the face centre), placed in the image by `face`; `body` is the neck's gentler rotation."""
    width: float
    half_width: float
    half_height: float
    centre_x: float
    face: Frame
    body: Frame
    colours: Colours
    eye: EyeShape
    mouth: MouthShape
    sunglasses: bool


def draw_geometry(rng: np.random.Generator, sunglasses: bool | None, open_mouth: bool | None) -> FaceGeometry:
    """A face's parameters, drawn from rng in the order the generator has always drawn them."""
    width = rng.uniform(0.45, 0.65) * REF
    half_width = width / 2
    half_height = half_width * rng.uniform(1.22, 1.40)
    centre_x = REF / 2 + rng.uniform(-0.035, 0.035) * REF
    centre_y = REF * 0.53 + rng.uniform(-0.03, 0.03) * REF
    theta = math.radians(rng.uniform(-15, 15))
    colours = _draw_colours(rng)
    eye = _draw_eye(rng, width, half_width, half_height)
    has_glasses = rng.random() < 0.12 if sunglasses is None else bool(sunglasses)
    is_open = rng.random() < 0.40
    is_open = is_open if open_mouth is None else bool(open_mouth)
    mouth = _draw_mouth(rng, width, half_height, is_open)
    return FaceGeometry(width, half_width, half_height, centre_x, Frame(centre_x, centre_y, theta),
                        Frame(centre_x, centre_y, theta * 0.3), colours, eye, mouth, has_glasses)


def _draw_colours(rng: np.random.Generator) -> Colours:
    position = rng.uniform(0, len(SKIN_RAMP) - 1.001)
    step = int(position)
    skin = mix(SKIN_RAMP[step], SKIN_RAMP[step + 1], position - step) + rng.normal(0, 6, 3)
    skin_lum = float(skin.mean()) / 255.0
    lip_base = LIP_BASES[rng.integers(len(LIP_BASES))] * (0.55 + 0.5 * skin_lum)
    low_contrast = rng.random() < 0.2
    lip = mix(skin, lip_base, rng.uniform(0.2, 0.38) if low_contrast else rng.uniform(0.45, 1.0))
    lip = lip + rng.normal(0, 5, 3)
    hair = HAIR_COLORS[rng.choice(len(HAIR_COLORS), p=HAIR_WEIGHTS)] * rng.uniform(0.85, 1.15)
    if rng.random() < 0.04:  # dyed
        hair = rng.uniform(30, 230, 3)
    return Colours(skin, skin_lum, lip, hair)


def _draw_eye(rng: np.random.Generator, face_width: float, half_width: float, half_height: float) -> EyeShape:
    x = half_width * rng.uniform(0.34, 0.42)
    y = -half_height * rng.uniform(0.02, 0.14)
    width = face_width * rng.uniform(0.14, 0.20)
    closed = rng.random() < 0.08
    height = width * (rng.uniform(0.09, 0.17) if closed else rng.uniform(0.32, 0.50))
    upper_fraction = rng.uniform(0.55, 0.68)
    tilt = math.radians(rng.uniform(-3, 8))
    skew = rng.uniform(0.75, 1.15)
    gaze = np.array([rng.uniform(-0.18, 0.18) * width, rng.uniform(-0.08, 0.08) * height])
    iris_radius = width * rng.uniform(0.17, 0.22)
    iris_color = IRIS_COLORS[rng.integers(len(IRIS_COLORS))] * rng.uniform(0.8, 1.2)
    return EyeShape(x, y, width, height, upper_fraction, tilt, skew, gaze, iris_radius, iris_color)


def _draw_mouth(rng: np.random.Generator, face_width: float, half_height: float, is_open: bool) -> MouthShape:
    y = half_height * rng.uniform(0.48, 0.58)
    width = face_width * rng.uniform(0.30, 0.45)
    smile = width * rng.uniform(-0.03, 0.10)
    upper_height = width * rng.uniform(0.10, 0.17)
    lower_height = width * rng.uniform(0.14, 0.23)
    bow = rng.uniform(0.08, 0.35)
    gap = width * rng.uniform(0.08, 0.24) if is_open else 0.0
    return MouthShape(y, width, smile, upper_height, lower_height, bow, gap, is_open)


def eye_outline(eye: EyeShape, side: int) -> tuple[np.ndarray, np.ndarray]:
    """An almond eye outline in face coordinates (17 upper-lid points from the inner corner, then the lower
    lid back) and the centre of its corner-to-corner chord; side +1 or -1 is the sign of its x."""
    t = np.linspace(0.0, 1.0, 17)
    x = (t - 0.5) * eye.width  # t = 0 is the inner corner (towards the nose)
    top = -eye.height * eye.upper_fraction * np.sin(np.pi * t ** eye.skew)
    bottom = eye.height * (1 - eye.upper_fraction) * np.sin(np.pi * t ** (1 / eye.skew))
    points = np.concatenate([np.stack([x, top], 1), np.stack([x, bottom], 1)[-2:0:-1]])
    cos, sin = math.cos(eye.tilt), math.sin(eye.tilt)
    points = np.stack([points[:, 0] * cos + points[:, 1] * sin, -points[:, 0] * sin + points[:, 1] * cos], 1)
    points[:, 0] = side * (points[:, 0] + eye.x)
    points[:, 1] += eye.y
    return points, np.array([side * eye.x, eye.y])
