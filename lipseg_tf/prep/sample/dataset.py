"""Built-in synthetic face dataset, written in the exact CelebAMask-HQ layout.

    python -m lipseg_tf.tools.sample --out DIR --count N --seed S [--size 512] [--workers K]

writes

    DIR/CelebA-HQ-img/<id>.jpg                                  photo, size x size, JPEG
    DIR/CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png one per visible part, always 512x512,
                                                                mode L, values 0 or 255
    DIR/CelebA-HQ-to-CelebA-mapping.txt                         idx orig_idx orig_file
    DIR/SYNTHETIC.txt                                           says the data is synthetic

so every tool that reads CelebAMask-HQ reads it unchanged. The data is drawn, not photographed: it
exists so the pipeline can be run and tested end to end without the real (licence-restricted) dataset.

Each face is one set of geometry (point lists in 512 px "reference" coordinates, rotated, scaled and
moved by one transform). The photo is drawn from it with PIL at 2-4x supersampling and downsampled
by block averaging (antialiased); the part annotations are drawn from the same points at 512 px, hard-edged,
so photo and masks align at any --size. Parts are painted in drawing order into one label map, so a
part's file holds only what is visible of it, and a part that ends up fully covered (or is hidden,
like the eyes behind sunglasses) gets no file at all. The `skin` file is the whole face outline
(eyes, brows, nose and lips included, like CelebAMask-HQ's skin) minus hair falling over it.

Left and right: `l_eye`, `l_brow` and `l_ear` are the ones on the image's LEFT side (smaller x), the
`r_` ones on the right. (The real CelebAMask-HQ labels are meant to be the person's own left, which
appears on the image right, but its annotations are not consistent; here the rule is simple and exact.)

Variation per face: cluttered background (gradients, shapes and stripes, sometimes in skin or lip
colours), hair (black to blond, red, grey; short, long or none; sometimes a fringe over the forehead),
neck and clothes; face size 45-65% of the image width, a few % position jitter, tilt +-15 degrees;
skin from very light to very dark; almond eyes with iris and pupil and a random gaze, sometimes nearly
closed; sunglasses on ~12% of faces (`eye_g`, no eye files); upper and lower lips as separate shapes,
~40% open mouths with a dark interior and teeth (`mouth`), lip colours from reds, pinks and browns,
sometimes barely different from the skin; then an illumination gradient, sometimes blur, noise and
JPEG quality 60-95.

Everything about a face comes from its own random generator, seeded by (seed, id): the same seed gives
byte-identical files, any worker count gives the same files, and a bigger --count gives a superset of
the same faces (the mapping file, which spreads the ids over the splits, is recomputed for the count).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lipseg_tf.errors import UserError
from lipseg_tf.prep import celebamask, parallel
from lipseg_tf.prep.imageio import save_image, write_text
from lipseg_tf.prep.parts import CELEBAMASK_PARTS

log = logging.getLogger("lipseg_tf")

REF = 512  # size of the annotations, and of the reference coordinates all geometry is built in
PART_ID = {name: i + 1 for i, name in enumerate(CELEBAMASK_PARTS)}
# CelebA has 202599 images: 0-based orig_idx ranges of the official splits.
CELEBA_TOTAL = 202599
SPLIT_RANGES = {"train": (0, celebamask.TRAIN_LAST), "val": (celebamask.TRAIN_LAST, celebamask.VAL_LAST),
                "test": (celebamask.VAL_LAST, CELEBA_TOTAL)}
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}

SKIN_RAMP = np.array([(255, 230, 212), (243, 204, 178), (230, 180, 148), (212, 160, 122), (186, 132, 95),
                      (156, 104, 70), (124, 82, 54), (94, 62, 42), (66, 45, 32)], dtype=np.float64)
LIP_BASES = np.array([(196, 58, 72), (214, 96, 118), (178, 84, 86), (152, 72, 62), (124, 52, 54),
                      (206, 118, 126), (146, 36, 62), (104, 58, 48), (222, 70, 90)], dtype=np.float64)
HAIR_COLORS = np.array([(22, 18, 16), (40, 30, 24), (70, 48, 32), (104, 72, 46), (142, 102, 64),
                        (204, 172, 112), (226, 200, 146), (150, 64, 32), (168, 164, 160)], dtype=np.float64)
HAIR_WEIGHTS = np.array([0.22, 0.18, 0.16, 0.12, 0.08, 0.08, 0.05, 0.06, 0.05])
IRIS_COLORS = np.array([(70, 44, 26), (40, 28, 20), (110, 76, 40), (70, 110, 150), (86, 118, 80),
                        (120, 120, 126)], dtype=np.float64)


# --------------------------------------------------------------------------------------------- geometry

def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _superellipse(cx: float, cy: float, rx: float, ry: float, power: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / power
    return np.stack([cx + rx * np.sign(c) * np.abs(c) ** e, cy + ry * np.sign(s) * np.abs(s) ** e], axis=1)


class _Frame:
    """Local (x right, y down) -> reference image coordinates: rotate by theta, then move to (cx, cy)."""

    def __init__(self, cx: float, cy: float, theta: float):
        self.cx, self.cy = cx, cy
        self.c, self.s = math.cos(theta), math.sin(theta)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        x, y = pts[:, 0], pts[:, 1]
        return np.stack([self.cx + x * self.c - y * self.s, self.cy + x * self.s + y * self.c], axis=1)


def _rgb(color) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, int(round(float(v))))) for v in color)
    return r, g, b


def _mix(a, b, t: float) -> np.ndarray:
    return np.asarray(a, dtype=np.float64) * (1.0 - t) + np.asarray(b, dtype=np.float64) * t


# ---------------------------------------------------------------------------------------------- painter

class _Painter:
    """Draws the photo (supersampled RGB canvas) and the label map (512 px, one id per part) together."""

    def __init__(self, size: int, ss: int):
        canvas_size = size * ss
        self.ss = ss
        self.k = canvas_size / REF
        self.canvas = Image.new("RGB", (canvas_size, canvas_size))
        self.draw = ImageDraw.Draw(self.canvas)
        self.label = Image.new("L", (REF, REF), 0)
        self.ldraw = ImageDraw.Draw(self.label)

    def xy(self, pts: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> list[float]:
        """Reference points -> flat canvas coordinates (PIL puts integer coordinates at pixel centres)."""
        p = np.asarray(pts, dtype=np.float64) * self.k - 0.5
        p[:, 0] -= dx
        p[:, 1] -= dy
        return p.ravel().tolist()

    def shape(self, pts: np.ndarray, color, part: str | None = None) -> None:
        """A filled polygon in the photo and, for a part, in the label map."""
        self.draw.polygon(self.xy(pts), fill=_rgb(color))
        if part is not None:
            self.ldraw.polygon((np.asarray(pts) - 0.5).ravel().tolist(), fill=PART_ID[part])

    def line(self, pts: np.ndarray, color, width: float) -> None:
        """A photo-only polyline; width in reference pixels."""
        self.draw.line(self.xy(pts), fill=_rgb(color), width=max(1, int(round(width * self.k))), joint="curve")

    def clipped(self, clip: np.ndarray, paint: Callable[[ImageDraw.ImageDraw, Callable], None]) -> None:
        """Photo-only details drawn inside the polygon `clip` (iris inside the eye, teeth inside the mouth).

        paint(draw, xy) draws on a crop of the canvas; xy maps reference points to the crop's coordinates.
        """
        p = np.asarray(clip, dtype=np.float64) * self.k - 0.5
        size = self.canvas.size[0]
        x0, y0 = max(0, int(p[:, 0].min()) - 1), max(0, int(p[:, 1].min()) - 1)
        x1, y1 = min(size, int(p[:, 0].max()) + 3), min(size, int(p[:, 1].max()) + 3)
        if x1 <= x0 or y1 <= y0:
            return
        patch = self.canvas.crop((x0, y0, x1, y1))
        mask = Image.new("L", patch.size, 0)
        ImageDraw.Draw(mask).polygon((p - (x0, y0)).ravel().tolist(), fill=255)
        paint(ImageDraw.Draw(patch), lambda pts: self.xy(pts, x0, y0))
        self.canvas.paste(patch, (x0, y0), mask)


# ------------------------------------------------------------------------------------------------ faces

def _background(rng: np.random.Generator, painter: _Painter, skin, lip) -> None:
    size = painter.canvas.size[0]
    corners = rng.uniform(0, 255, (2, 2, 3))
    if rng.random() < 0.5:  # muted, like most photo backgrounds
        corners = _mix(corners, corners.mean(axis=(0, 1)), rng.uniform(0.3, 0.8))
    soft = rng.random() < 0.5
    work = size // 4 if soft else size  # soft: drawn small, then blown up (out of focus)
    base = Image.fromarray(corners.astype(np.uint8)).resize((work, work), Image.BILINEAR)
    draw = ImageDraw.Draw(base)
    k = work / REF

    def color():
        u = rng.random()
        if u < 0.17:
            return _rgb(np.asarray(skin) + rng.normal(0, 12, 3))
        if u < 0.32:
            return _rgb(np.asarray(lip) + rng.normal(0, 12, 3))
        return _rgb(rng.uniform(0, 255, 3))

    for _ in range(int(rng.integers(3, 15))):
        kind = rng.random()
        cx, cy = rng.uniform(-60, REF + 60, 2)
        if kind < 0.3:
            rx, ry = rng.uniform(10, 130, 2)
            pts = _Frame(cx, cy, rng.uniform(0, np.pi))(_ellipse(0, 0, rx, ry, 32))
            draw.polygon((pts * k).ravel().tolist(), fill=color())
        elif kind < 0.55:
            rx, ry = rng.uniform(10, 160, 2)
            pts = _Frame(cx, cy, rng.uniform(0, np.pi))(np.array([(-rx, -ry), (rx, -ry), (rx, ry), (-rx, ry)]))
            draw.polygon((pts * k).ravel().tolist(), fill=color())
        elif kind < 0.75:
            pts = np.array([cx, cy]) + rng.uniform(-140, 140, (int(rng.integers(3, 7)), 2))
            draw.polygon((pts * k).ravel().tolist(), fill=color())
        else:  # stripes
            angle, gap = rng.uniform(0, np.pi), rng.uniform(12, 60)
            width = max(1, int(rng.uniform(0.2, 0.6) * gap * k))
            fill = color()
            d = np.array([math.cos(angle), math.sin(angle)])
            n = np.array([-d[1], d[0]])
            for j in range(int(rng.integers(3, 10))):
                c = np.array([cx, cy]) + n * gap * j
                seg = np.stack([c - d * 900, c + d * 900]) * k
                draw.line(seg.ravel().tolist(), fill=fill, width=width)
    if soft:  # bilinear up to the photo size, then nearest up to the canvas: the final reduce() undoes it
        base = base.resize((size // painter.ss,) * 2, Image.BILINEAR).resize((size, size), Image.NEAREST)
    painter.canvas.paste(base, (0, 0))


def render_face(seed: int, image_id: int, size: int = 512, sunglasses: bool | None = None,
                open_mouth: bool | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw face `image_id` of dataset `seed`.

    Returns (photo, masks): photo is (size, size, 3) uint8; masks maps each visible part name to a
    (512, 512) uint8 array of 0 and 255. sunglasses / open_mouth force that feature on or off (for tests
    and demos); None leaves it to chance (~12% / ~40%). The same arguments always give the same arrays.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, image_id)))
    ss = 2 if size >= 256 else 4
    painter = _Painter(size, ss)

    # -- the face's own parameters, all in reference pixels
    fw = rng.uniform(0.45, 0.65) * REF  # face width
    a = fw / 2
    b = a * rng.uniform(1.22, 1.40)
    cx = REF / 2 + rng.uniform(-0.035, 0.035) * REF
    cy = REF * 0.53 + rng.uniform(-0.03, 0.03) * REF
    theta = math.radians(rng.uniform(-15, 15))
    face = _Frame(cx, cy, theta)
    body = _Frame(cx, cy, theta * 0.3)

    pos = rng.uniform(0, len(SKIN_RAMP) - 1.001)
    skin = _mix(SKIN_RAMP[int(pos)], SKIN_RAMP[int(pos) + 1], pos - int(pos)) + rng.normal(0, 6, 3)
    skin_lum = float(skin.mean()) / 255.0
    lip_base = LIP_BASES[rng.integers(len(LIP_BASES))] * (0.55 + 0.5 * skin_lum)
    low_contrast = rng.random() < 0.2
    lip = _mix(skin, lip_base, rng.uniform(0.2, 0.38) if low_contrast else rng.uniform(0.45, 1.0))
    lip = lip + rng.normal(0, 5, 3)
    hair_color = HAIR_COLORS[rng.choice(len(HAIR_COLORS), p=HAIR_WEIGHTS)] * rng.uniform(0.85, 1.15)
    if rng.random() < 0.04:  # dyed
        hair_color = rng.uniform(30, 230, 3)

    # eyes (right-hand eye, local x > 0; the other is its mirror image)
    ex = a * rng.uniform(0.34, 0.42)
    ey = -b * rng.uniform(0.02, 0.14)
    ew = fw * rng.uniform(0.14, 0.20)
    closed = rng.random() < 0.08
    eh = ew * (rng.uniform(0.09, 0.17) if closed else rng.uniform(0.32, 0.50))
    up_frac = rng.uniform(0.55, 0.68)
    eye_tilt = math.radians(rng.uniform(-3, 8))
    eye_skew = rng.uniform(0.75, 1.15)
    gaze = np.array([rng.uniform(-0.18, 0.18) * ew, rng.uniform(-0.08, 0.08) * eh])
    iris_r = ew * rng.uniform(0.17, 0.22)
    iris_color = IRIS_COLORS[rng.integers(len(IRIS_COLORS))] * rng.uniform(0.8, 1.2)
    has_glasses = rng.random() < 0.12 if sunglasses is None else bool(sunglasses)
    is_open = rng.random() < 0.40
    is_open = is_open if open_mouth is None else bool(open_mouth)

    # mouth
    ym = b * rng.uniform(0.48, 0.58)
    mw = fw * rng.uniform(0.30, 0.45)
    smile = mw * rng.uniform(-0.03, 0.10)
    hu = mw * rng.uniform(0.10, 0.17)
    hl = mw * rng.uniform(0.14, 0.23)
    bow = rng.uniform(0.08, 0.35)
    gap = mw * rng.uniform(0.08, 0.24) if is_open else 0.0

    def almond(side: int) -> tuple[np.ndarray, np.ndarray]:
        """Eye outline in face coordinates and the centre of its corner-to-corner chord."""
        t = np.linspace(0.0, 1.0, 17)
        x = (t - 0.5) * ew  # t = 0 is the inner corner (towards the nose)
        top = -eh * up_frac * np.sin(np.pi * t ** eye_skew)
        bottom = eh * (1 - up_frac) * np.sin(np.pi * t ** (1 / eye_skew))
        pts = np.concatenate([np.stack([x, top], 1), np.stack([x, bottom], 1)[-2:0:-1]])
        c, s = math.cos(eye_tilt), math.sin(eye_tilt)
        pts = np.stack([pts[:, 0] * c + pts[:, 1] * s, -pts[:, 0] * s + pts[:, 1] * c], 1)  # outer corner up
        pts[:, 0] = side * (pts[:, 0] + ex)
        pts[:, 1] += ey
        return pts, np.array([side * ex, ey])

    eyes = {side: almond(side) for side in (-1, 1)}
    eye_top = min(float(pts[:, 1].min()) for pts, _ in eyes.values())

    _background(rng, painter, skin, lip)

    # -- hair behind the head
    hair_style = rng.choice(3, p=[0.08, 0.47, 0.45])  # none, short, long
    cap_dy = b * rng.uniform(0.08, 0.2)
    cap_rx, cap_ry = a * rng.uniform(1.05, 1.2), b * rng.uniform(0.95, 1.08)
    if hair_style == 1 and rng.random() < 0.3:  # cropped close
        cap_rx, cap_ry, cap_dy = a * rng.uniform(1.01, 1.05), b * rng.uniform(0.92, 0.98), b * rng.uniform(0.02, 0.08)
    hair_shapes = []
    if hair_style > 0:
        hair_shapes.append(_ellipse(0, -cap_dy, cap_rx, cap_ry, 48))
    if hair_style == 2:
        length = b * rng.uniform(1.1, 2.3)
        wx = cap_rx * rng.uniform(1.0, 1.18)
        xs = np.linspace(wx, -wx, 12)
        bottom = length + rng.normal(0, b * 0.06, 12)
        top = -cap_dy + cap_ry * 0.3
        hair_shapes.append(np.concatenate([[(-cap_rx * 0.95, top), (cap_rx * 0.95, top)],
                                           np.stack([xs, bottom], 1)]))
    for shape in hair_shapes:
        painter.shape(face(shape), hair_color, "hair")
    if hair_shapes:
        def strands(draw, xy, color=hair_color):
            for _ in range(40):
                x0 = rng.uniform(-cap_rx, cap_rx)
                y0 = rng.uniform(-cap_dy - cap_ry, b * 0.5)
                bend = rng.uniform(-0.3, 0.3)
                t = np.linspace(0, 1, 6)[:, None]
                pts = np.concatenate([x0 + bend * a * t ** 2, y0 + t * b * rng.uniform(0.3, 0.9)], 1)
                draw.line(xy(face(pts)), fill=_rgb(color * rng.uniform(0.6, 1.4)),
                          width=max(1, int(rng.uniform(0.5, 2.0) * painter.k)))
        for shape in hair_shapes:
            painter.clipped(face(shape), strands)

    # -- neck and clothes
    nw = a * rng.uniform(0.5, 0.66)
    neck = np.array([(-nw, 0.2 * b), (nw, 0.2 * b), (nw * 1.12, 3 * b), (-nw * 1.12, 3 * b)])
    painter.shape(body(neck), skin * rng.uniform(0.72, 0.9), "neck")
    shoulder = b * rng.uniform(1.02, 1.4)
    drop = b * rng.uniform(0.1, 0.45)
    neckline = rng.random()
    cloth_pts = [(-3 * a, shoulder + 2.2 * drop), (-2.2 * a, shoulder + drop), (-nw * 1.25, shoulder)]
    if neckline < 0.4:  # V neck
        cloth_pts += [(0, shoulder + b * rng.uniform(0.2, 0.6))]
    elif neckline < 0.8:  # round neck
        cloth_pts += [(x, shoulder + b * 0.18 * math.cos(x / (nw * 1.25) * math.pi / 2))
                      for x in np.linspace(-nw * 1.1, nw * 1.1, 7)]
    else:  # high collar
        cloth_pts += [(-nw * 1.15, shoulder - b * 0.15), (nw * 1.15, shoulder - b * 0.15)]
    cloth_pts += [(nw * 1.25, shoulder), (2.2 * a, shoulder + drop), (3 * a, shoulder + 2.2 * drop),
                  (3 * a, 4 * b), (-3 * a, 4 * b)]
    cloth = body(np.array(cloth_pts))
    cloth_color = rng.uniform(0, 255, 3)
    painter.shape(cloth, cloth_color, "cloth")
    if rng.random() < 0.35:  # a pattern on the clothes
        stripe_color = rng.uniform(0, 255, 3)
        step = rng.uniform(8, 30)

        def pattern(draw, xy):
            for j in range(-40, 40):
                x = cx + j * step
                draw.line(xy(np.array([(x, 0), (x + rng.uniform(-150, 150), REF)])), fill=_rgb(stripe_color),
                          width=max(1, int(step * 0.4 * painter.k)))
        painter.clipped(cloth, pattern)

    # -- ears (drawn behind the face)
    if rng.random() < 0.6:
        ear_y = ey + b * rng.uniform(0.05, 0.18)
        ear_rx, ear_ry = a * rng.uniform(0.12, 0.17), b * rng.uniform(0.2, 0.28)
        for side, part in ((-1, "l_ear"), (1, "r_ear")):
            pts = _ellipse(side * a * rng.uniform(0.93, 1.0), ear_y, ear_rx, ear_ry, 28)
            painter.shape(face(pts), skin * rng.uniform(0.82, 0.95), part)
            inner = _ellipse(side * (a * 0.97 + ear_rx * 0.35), ear_y, ear_rx * 0.45, ear_ry * 0.6, 20)
            painter.line(face(np.concatenate([inner, inner[:1]])), skin * 0.7, ear_rx * 0.15)

    # -- the face: outline (skin), shaded by a few nested, shifted copies
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    chin = rng.uniform(0.1, 0.26)
    fx, fy = a * np.cos(t), b * np.sin(t)
    fx = fx * np.where(fy > 0, 1 - chin * (fy / b) ** 2, 1 - 0.06 * (fy / b) ** 2)
    outline = np.stack([fx, fy], 1)
    painter.shape(face(outline), skin * rng.uniform(0.8, 0.9), "skin")
    light = rng.uniform(-1, 1, 2) * np.array([a, b]) * 0.12
    for i, (shrink, gain) in enumerate(((0.94, 0.93), (0.85, 0.97), (0.7, 1.0))):
        painter.shape(face(outline * shrink + light * (i + 1) / 3), skin * gain)
    if rng.random() < 0.5:  # blush
        for side in (-1, 1):
            painter.shape(face(_ellipse(side * a * 0.5, b * 0.22, a * 0.2, b * 0.12, 24)),
                          _mix(skin, lip, rng.uniform(0.05, 0.18)))

    # -- nose
    nose_y = ey + (ym - ey) * rng.uniform(0.55, 0.7)
    nose_w = ew * rng.uniform(0.75, 1.05)
    bridge = ey - eh * 0.2
    top_w = nose_w * rng.uniform(0.22, 0.35)
    nose = np.array([(-top_w / 2, bridge), (top_w / 2, bridge), (nose_w * 0.32, nose_y - nose_w * 0.35),
                     (nose_w / 2, nose_y - nose_w * 0.05), (nose_w * 0.42, nose_y + nose_w * 0.12),
                     (0, nose_y + nose_w * 0.2), (-nose_w * 0.42, nose_y + nose_w * 0.12),
                     (-nose_w / 2, nose_y - nose_w * 0.05), (-nose_w * 0.32, nose_y - nose_w * 0.35)])
    painter.shape(face(nose), skin * rng.uniform(0.9, 1.02), "nose")
    shade_side = 1 if light[0] < 0 else -1

    def nose_detail(draw, xy):
        side_pts = np.array([(shade_side * top_w * 0.4, bridge), (shade_side * nose_w * 0.45, nose_y)])
        draw.line(xy(face(side_pts)), fill=_rgb(skin * 0.78), width=max(1, int(nose_w * 0.12 * painter.k)))
        for side in (-1, 1):
            nostril = _ellipse(side * nose_w * 0.2, nose_y + nose_w * 0.08, nose_w * 0.1, nose_w * 0.05, 16)
            draw.polygon(xy(face(nostril)), fill=_rgb(skin * 0.45))
        tip = _ellipse(-shade_side * nose_w * 0.05, nose_y - nose_w * 0.12, nose_w * 0.12, nose_w * 0.09, 16)
        draw.polygon(xy(face(tip)), fill=_rgb(np.minimum(skin * 1.08 + 8, 255)))
    painter.clipped(face(nose), nose_detail)

    # -- eyebrows
    brow_gap = ew * rng.uniform(0.25, 0.5)
    brow_len = ew * rng.uniform(1.0, 1.3)
    brow_th = ew * rng.uniform(0.09, 0.2)
    brow_arch = ew * rng.uniform(0.05, 0.2)
    brow_color = _mix(skin, hair_color * 0.8, rng.uniform(0.55, 0.95))
    for side, part in ((-1, "l_brow"), (1, "r_brow")):
        t = np.linspace(0, 1, 12)
        x = ex - ew * 0.55 + t * brow_len
        y = eyes[side][0][:, 1].min() - brow_gap - brow_arch * np.sin(np.pi * t ** 0.7)
        th = brow_th * (1 - 0.6 * t)
        pts = np.concatenate([np.stack([x, y - th / 2], 1), np.stack([x, y + th / 2], 1)[::-1]])
        pts[:, 0] *= side
        painter.shape(face(pts), brow_color, part)

    # -- eyes (not drawn behind sunglasses: they are hidden)
    if not has_glasses:
        sclera = np.array([rng.uniform(215, 250)] * 3) - (0, rng.uniform(0, 10), rng.uniform(0, 14))
        sclera = sclera * (0.75 + 0.25 * max(skin_lum, 0.4))
        for side, part in ((-1, "l_eye"), (1, "r_eye")):
            pts, centre = eyes[side]
            # eyelid shading above the eye (skin)
            lid = np.concatenate([pts[:17], (pts[16:0:-1] + (0, -eh * 0.6))])
            painter.shape(face(lid), skin * rng.uniform(0.78, 0.92))
            painter.shape(face(pts), sclera, part)

            def eye_detail(draw, xy, pts=pts, centre=centre):
                c = centre + gaze
                draw.polygon(xy(face(_ellipse(c[0], c[1], iris_r, iris_r, 28))), fill=_rgb(iris_color))
                draw.polygon(xy(face(_ellipse(c[0], c[1], iris_r * 0.75, iris_r * 0.75, 24))),
                             fill=_rgb(iris_color * 0.75))
                pr = iris_r * 0.42
                draw.polygon(xy(face(_ellipse(c[0], c[1], pr, pr, 20))), fill=(12, 10, 10))
                hr = iris_r * 0.18
                draw.polygon(xy(face(_ellipse(c[0] + pr * 0.6, c[1] - pr * 0.6, hr, hr, 12))), fill=(245, 245, 245))
                draw.line(xy(face(pts[:17])), fill=_rgb(sclera * 0.7), width=max(1, int(eh * 0.25 * painter.k)))
            painter.clipped(face(pts), eye_detail)
            lash = _mix(hair_color, (10, 8, 8), 0.6)
            painter.line(face(pts[:17]), lash, max(1.2, ew * 0.05))

    # -- mouth: interior and teeth (open), then the two lips
    t = np.linspace(-1, 1, 25)
    line = -smile * t ** 2
    half_gap = gap / 2 * (1 - t ** 2) ** 0.7
    x = t * mw / 2
    upper_outer = line - half_gap - hu * np.sqrt(1 - t ** 2) * (1 + 0.25 * np.exp(-((np.abs(t) - 0.35) / 0.2) ** 2)
                                                              - bow * np.exp(-(t / 0.12) ** 2))
    upper_inner = line - half_gap
    lower_inner = line + half_gap
    lower_outer = lower_inner + hl * (1 - t ** 2) ** 0.55

    def mouth_pts(y_a, y_b):
        return face(np.concatenate([np.stack([x, y_a + ym], 1), np.stack([x, y_b + ym], 1)[::-1]]))

    chin_shadow = _ellipse(0, ym + float(lower_outer.max()) + hl * 0.35, mw * 0.3, hl * 0.45, 24)
    painter.shape(face(chin_shadow), skin * rng.uniform(0.84, 0.95))
    if is_open:
        interior = mouth_pts(upper_inner, lower_inner)
        dark = _mix((40, 10, 14), lip, rng.uniform(0.0, 0.3))
        painter.shape(interior, dark, "mouth")
        teeth_h = gap * rng.uniform(0.3, 0.6)
        lower_teeth = rng.random() < 0.35
        tongue = rng.random() < 0.4

        def teeth(draw, xy):
            white = np.array([rng.uniform(205, 245)] * 3) - (0, rng.uniform(0, 12), rng.uniform(5, 30))
            if tongue:
                draw.polygon(xy(face(_ellipse(0, ym + gap * 0.45, mw * 0.22, gap * 0.35, 24))),
                             fill=_rgb(_mix(lip, (200, 80, 90), 0.4)))
            tw = mw * rng.uniform(0.3, 0.4)
            band = np.array([(-tw, ym - gap), (tw, ym - gap), (tw, ym - gap / 2 + teeth_h),
                             (-tw, ym - gap / 2 + teeth_h)])
            draw.polygon(xy(face(band)), fill=_rgb(white))
            if lower_teeth:
                band = np.array([(-tw * 0.8, ym + gap), (tw * 0.8, ym + gap), (tw * 0.8, ym + gap / 2 - teeth_h * 0.6),
                                 (-tw * 0.8, ym + gap / 2 - teeth_h * 0.6)])
                draw.polygon(xy(face(band)), fill=_rgb(white * 0.92))
            for j in range(-3, 4):  # gaps between teeth
                xs = j * tw / 3.5
                draw.line(xy(face(np.array([(xs, ym - gap), (xs, ym - gap / 2 + teeth_h)]))),
                          fill=_rgb(white * 0.75), width=max(1, int(mw * 0.008 * painter.k)))
        painter.clipped(interior, teeth)
    upper, lower = mouth_pts(upper_outer, upper_inner), mouth_pts(lower_inner, lower_outer)
    painter.shape(upper, lip * rng.uniform(0.82, 0.97), "u_lip")
    painter.shape(lower, lip, "l_lip")

    def lip_light(draw, xy):
        y = ym + float(lower_inner.max()) + hl * 0.45
        draw.polygon(xy(face(_ellipse(mw * rng.uniform(-0.08, 0.08), y, mw * 0.16, hl * 0.22, 20))),
                     fill=_rgb(np.minimum(lip * 1.15 + 12, 255)))
    painter.clipped(lower, lip_light)
    if not is_open:
        painter.line(face(np.stack([x, line + ym], 1)), _mix(lip, (20, 5, 5), 0.55), max(1.0, mw * 0.015))

    # -- fringe over the forehead (above the eyes; may cover the brows)
    if hair_style > 0 and rng.random() < 0.3:
        limit = eye_top - ew * 0.12
        level = rng.uniform(-0.75 * b, limit)
        # the part of the hair cap below `level`, with a wavy, maybe slanted lower edge
        alpha = math.asin(min(1.0, max(0.0, -(level + cap_dy) / cap_ry)))
        half = cap_rx * math.cos(alpha)
        xs = np.linspace(half, -half, 15)
        edge = level + rng.uniform(0.02, 0.08) * b * np.sin(xs / a * rng.uniform(4, 9) + rng.uniform(0, 6))
        edge = np.minimum(edge + rng.uniform(-0.15, 0.15) * b * xs / a, limit)
        arc_t = np.linspace(np.pi + alpha, 2 * np.pi - alpha, 20)
        arc = np.stack([cap_rx * np.cos(arc_t), -cap_dy + cap_ry * np.sin(arc_t)], 1)
        fringe = face(np.concatenate([arc, np.stack([xs, edge], 1)]))
        painter.shape(fringe, hair_color * rng.uniform(0.9, 1.1), "hair")
        painter.clipped(fringe, lambda draw, xy: strands(draw, xy, hair_color * 1.05))

    # -- sunglasses
    if has_glasses:
        lens_w, lens_h = ew * rng.uniform(0.78, 0.95), ew * rng.uniform(0.45, 0.62)
        power = rng.uniform(2.0, 4.0)
        lens_color = rng.uniform(10, 60, 3)
        frame_color = rng.uniform(0, 80, 3) if rng.random() < 0.7 else rng.uniform(0, 255, 3)
        frame_w = ew * rng.uniform(0.04, 0.1)
        lenses = {side: face(_superellipse(side * ex, ey - eh * 0.1, lens_w, lens_h, power))
                  for side in (-1, 1)}
        bridge_pts = face(np.array([(-ex + lens_w * 0.9, ey - lens_h * 0.5), (ex - lens_w * 0.9, ey - lens_h * 0.5),
                                    (ex - lens_w * 0.9, ey - lens_h * 0.5 + frame_w * 1.5),
                                    (-ex + lens_w * 0.9, ey - lens_h * 0.5 + frame_w * 1.5)]))
        painter.shape(bridge_pts, frame_color, "eye_g")
        for side in (-1, 1):
            rim = face(_superellipse(side * ex, ey - eh * 0.1, lens_w + frame_w, lens_h + frame_w, power))
            painter.shape(rim, frame_color, "eye_g")
            painter.shape(lenses[side], lens_color, "eye_g")

            def reflection(draw, xy, side=side):
                pts = np.array([(side * ex - lens_w, ey), (side * ex - lens_w * 0.2, ey - lens_h),
                                (side * ex + lens_w * 0.1, ey - lens_h), (side * ex - lens_w * 0.7, ey + lens_h * 0.3)])
                draw.polygon(xy(face(pts)), fill=_rgb(lens_color + rng.uniform(15, 50)))
            painter.clipped(lenses[side], reflection)

    # -- camera: downsample, blur, illumination, noise
    photo = painter.canvas.reduce(ss)  # the mean of each ss x ss block: antialiasing
    if rng.random() < 0.4:
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 2.0) * size / REF))
    gx, gy = rng.uniform(-0.5, 0.5, 2)
    exposure = rng.uniform(0.75, 1.15)
    tint = 1 + rng.uniform(-0.08, 0.08, 3)
    sigma = rng.uniform(1.5, 7.0)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    gain = exposure * (1 + gx * coords[None, :] + gy * coords[:, None])
    img = np.array(photo, dtype=np.float32)
    img *= gain[..., None]
    img *= tint.astype(np.float32)
    # Noise: the sum of two uniform bytes (triangular, close to gaussian), far cheaper than normal().
    n = size * size * 3
    noise = np.frombuffer(rng.bytes(n), np.uint8).astype(np.float32)
    noise += np.frombuffer(rng.bytes(n), np.uint8)
    noise -= 255.0
    noise *= np.float32(sigma / 104.2)  # the sum's standard deviation is 255 * sqrt(2 / 12) = 104.2
    img += noise.reshape(size, size, 3)
    img += 0.5
    np.clip(img, 0, 255, out=img)
    photo = img.astype(np.uint8)

    # -- masks from the label map
    label = np.asarray(painter.label)
    outline_img = Image.new("L", (REF, REF), 0)
    ImageDraw.Draw(outline_img).polygon((face(outline) - 0.5).ravel().tolist(), fill=1)
    masks = {}
    for part in CELEBAMASK_PARTS:
        if part == "skin":
            region = (np.asarray(outline_img) > 0) & (label != PART_ID["hair"])
        else:
            region = label == PART_ID[part]
        if region.any():
            masks[part] = region.astype(np.uint8) * 255
    return photo, masks


def jpeg_quality(seed: int, image_id: int) -> int:
    """JPEG quality (60-95) of a face; its own stream so it does not depend on the drawing."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, image_id)))
    return int(rng.integers(60, 96))


def write_face(out: str | Path, seed: int, image_id: int, size: int = 512) -> list[str]:
    """Render one face and write its photo and part files; returns the names of the parts written."""
    photo, masks = render_face(seed, image_id, size)
    save_image(celebamask.image_path(out, image_id), photo, quality=jpeg_quality(seed, image_id))
    for part, mask in masks.items():
        save_image(celebamask.part_path(out, image_id, part), mask, compress_level=1)
    return list(masks)


def _write_face_job(job: tuple[str, int, int, int]) -> int:
    out, seed, image_id, size = job
    write_face(out, seed, image_id, size)
    return image_id


# ---------------------------------------------------------------------------------------------- mapping

def mapping_rows(count: int, seed: int) -> list[tuple[int, int, str]]:
    """(idx, orig_idx, orig_file) for ids 0..count-1: splits as close to 80/10/10 as possible.

    The split of each id comes from a seeded permutation (so the splits are interleaved), with every
    split non-empty once count >= 3; orig_idx values are distinct and drawn from the official CelebA
    range of that split, so celebamask.split_of_celeba_number(orig_idx + 1) gives the split back.
    """
    n_val, n_test = round(count * SPLIT_FRACTIONS["val"]), round(count * SPLIT_FRACTIONS["test"])
    if count >= 3:
        n_val, n_test = max(1, n_val), max(1, n_test)
    n_val, n_test = min(n_val, count), min(n_test, max(0, count - n_val))
    n_train = count - n_val - n_test
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    splits = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * n_test)
    splits = splits[rng.permutation(count)]
    orig = np.zeros(count, dtype=np.int64)
    for name, (lo, hi) in SPLIT_RANGES.items():
        where = np.flatnonzero(splits == name)
        orig[where] = lo + rng.choice(hi - lo, size=len(where), replace=False)
    return [(i, int(o), f"{int(o) + 1:06d}.jpg") for i, o in enumerate(orig)]


def split_counts(rows: Sequence[tuple[int, int, str]]) -> dict[str, int]:
    counts = dict.fromkeys(celebamask.SPLITS, 0)
    for _, orig_idx, _ in rows:
        counts[celebamask.split_of_celeba_number(orig_idx + 1)] += 1
    return counts


# -------------------------------------------------------------------------------------------------- api

def generate(out: str | Path, count: int, seed: int, size: int = 512, workers: int | None = None) -> dict[str, int]:
    """Write `count` synthetic faces to `out` in the CelebAMask-HQ layout; returns the split counts.

    workers: processes (None: every core; 1: in this process). The files do not depend on it.
    """
    if count < 1:
        raise UserError(f"--count: expected at least 1 face, got {count}")
    if seed < 0:
        raise UserError(f"--seed: expected a non-negative integer, got {seed}")
    if size < 32:
        raise UserError(f"--size: expected at least 32 pixels, got {size}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise UserError(f"--workers: expected at least 1, got {workers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    rows = mapping_rows(count, seed)
    counts = split_counts(rows)
    write_text(out / celebamask.SYNTHETIC_MARKER,
               "SYNTHETIC DATA - these are not photos of people and not the real CelebAMask-HQ.\n"
               f"Generated by lipseg_tf.tools.sample with --seed {seed} --count {count} --size {size}: drawn faces "
               "in the CelebAMask-HQ layout\n(photos, part annotations and a mapping file whose orig_idx "
               "values only pick the train/val/test split).\n"
               "l_eye/l_brow/l_ear are the ones on the image's left side.\n")
    jobs = [(str(out), seed, i, size) for i in range(count)]
    parallel.map_progress(_write_face_job, jobs, workers, desc="synthetic faces", unit="face")
    # The mapping last: a folder with a mapping file is a complete dataset.
    write_text(out / celebamask.MAPPING_FILE,
               "idx orig_idx orig_file\n" + "".join(f"{i} {o} {f}\n" for i, o, f in rows))
    log.info("wrote %d synthetic faces (train/val/test %d/%d/%d) to %s", count, counts["train"], counts["val"],
             counts["test"], out)
    return counts
