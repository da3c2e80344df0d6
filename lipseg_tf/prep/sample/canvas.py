"""Drawing primitives of the synthetic faces: point lists, the face's frame, and the painter that draws
the photo and the part label map from the same points."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from lipseg_tf.prep.parts import CELEBAMASK_PARTS

REF = 512  # size of the annotations, and of the reference coordinates all geometry is built in
PART_ID = {name: i + 1 for i, name in enumerate(CELEBAMASK_PARTS)}


def ellipse(centre_x: float, centre_y: float, radius_x: float, radius_y: float, n: int = 40) -> np.ndarray:
    """(n, 2) points around an axis-aligned ellipse."""
    angle = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([centre_x + radius_x * np.cos(angle), centre_y + radius_y * np.sin(angle)], axis=1)


def superellipse(centre_x: float, centre_y: float, radius_x: float, radius_y: float, power: float,
                 n: int = 48) -> np.ndarray:
    """(n, 2) points around |x/rx|^power + |y/ry|^power = 1: a rounded rectangle for power > 2."""
    angle = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    cos, sin = np.cos(angle), np.sin(angle)
    exponent = 2.0 / power
    return np.stack([centre_x + radius_x * np.sign(cos) * np.abs(cos) ** exponent,
                     centre_y + radius_y * np.sign(sin) * np.abs(sin) ** exponent], axis=1)


class Frame:
    """Local (x right, y down) -> reference image coordinates: rotate by theta, then move to (cx, cy)."""

    def __init__(self, cx: float, cy: float, theta: float):
        self.cx, self.cy = cx, cy
        self.cos, self.sin = math.cos(theta), math.sin(theta)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x, y = points[:, 0], points[:, 1]
        return np.stack([self.cx + x * self.cos - y * self.sin, self.cy + x * self.sin + y * self.cos], axis=1)


def rgb(color) -> tuple[int, int, int]:
    """A colour as PIL wants it: three ints clipped to 0-255."""
    red, green, blue = (min(255, max(0, int(round(float(value))))) for value in color)
    return red, green, blue


def mix(color_a, color_b, weight: float) -> np.ndarray:
    """color_a blended towards color_b by weight (0: color_a, 1: color_b)."""
    return np.asarray(color_a, dtype=np.float64) * (1.0 - weight) + np.asarray(color_b, dtype=np.float64) * weight


class Painter:
    """Draws the photo (supersampled RGB canvas) and the label map (512 px, one id per part) together."""

    def __init__(self, size: int, supersampling: int):
        canvas_size = size * supersampling
        self.supersampling = supersampling
        self.scale = canvas_size / REF  # canvas pixels per reference pixel
        self.canvas = Image.new("RGB", (canvas_size, canvas_size))
        self.draw = ImageDraw.Draw(self.canvas)
        self.label = Image.new("L", (REF, REF), 0)
        self.label_draw = ImageDraw.Draw(self.label)

    def xy(self, points: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> list[float]:
        """Reference points -> flat canvas coordinates (PIL puts integer coordinates at pixel centres)."""
        canvas_points = np.asarray(points, dtype=np.float64) * self.scale - 0.5
        canvas_points[:, 0] -= dx
        canvas_points[:, 1] -= dy
        return canvas_points.ravel().tolist()

    def width(self, reference_width: float) -> int:
        """A line width in canvas pixels (at least 1) for one in reference pixels."""
        return max(1, int(reference_width * self.scale))

    def shape(self, points: np.ndarray, color, part: str | None = None) -> None:
        """A filled polygon in the photo and, for a part, in the label map."""
        self.draw.polygon(self.xy(points), fill=rgb(color))
        if part is not None:
            self.label_draw.polygon((np.asarray(points) - 0.5).ravel().tolist(), fill=PART_ID[part])

    def line(self, points: np.ndarray, color, width: float) -> None:
        """A photo-only polyline; width in reference pixels."""
        self.draw.line(self.xy(points), fill=rgb(color), width=max(1, int(round(width * self.scale))),
                       joint="curve")

    def clipped(self, clip: np.ndarray, paint: Callable[[ImageDraw.ImageDraw, Callable], None]) -> None:
        """Photo-only details drawn inside the polygon `clip` (iris inside the eye, teeth inside the mouth).

        paint(draw, xy) draws on a crop of the canvas; xy maps reference points to the crop's coordinates.
        """
        corners = np.asarray(clip, dtype=np.float64) * self.scale - 0.5
        size = self.canvas.size[0]
        x0, y0 = max(0, int(corners[:, 0].min()) - 1), max(0, int(corners[:, 1].min()) - 1)
        x1, y1 = min(size, int(corners[:, 0].max()) + 3), min(size, int(corners[:, 1].max()) + 3)
        if x1 <= x0 or y1 <= y0:
            return
        patch = self.canvas.crop((x0, y0, x1, y1))
        inside = Image.new("L", patch.size, 0)
        ImageDraw.Draw(inside).polygon((corners - (x0, y0)).ravel().tolist(), fill=255)
        paint(ImageDraw.Draw(patch), lambda points: self.xy(points, x0, y0))
        self.canvas.paste(patch, (x0, y0), inside)
