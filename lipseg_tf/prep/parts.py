"""CelebAMask-HQ part names, class ids and the colour palette of mask images.

Class ids: 0 is background, then the chosen parts in order (1, 2, ...). Every part has a fixed colour,
so a colour mask means the same thing whatever order the parts were chosen in.
"""

from __future__ import annotations

import numpy as np

from lipseg_tf.errors import UserError

# The 18 part names of CelebAMask-HQ, as in its file names `<id:05d>_<part>.png`.
CELEBAMASK_PARTS = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)
DEFAULT_PARTS = ("l_eye", "r_eye", "u_lip", "l_lip")
MASK_STYLES = ("color", "binary", "index")

# Fixed, well separated colours; the four default parts get the most distinct ones.
PART_COLORS = {
    "l_eye": (0, 255, 0),
    "r_eye": (0, 0, 255),
    "u_lip": (255, 0, 0),
    "l_lip": (255, 255, 0),
    "skin": (204, 153, 102),
    "nose": (255, 0, 255),
    "eye_g": (0, 255, 255),
    "l_brow": (128, 0, 255),
    "r_brow": (255, 128, 0),
    "l_ear": (0, 128, 128),
    "r_ear": (128, 128, 0),
    "mouth": (128, 0, 0),
    "hair": (0, 128, 0),
    "hat": (0, 0, 128),
    "ear_r": (255, 128, 255),
    "neck_l": (128, 255, 128),
    "neck": (128, 128, 255),
    "cloth": (128, 128, 128),
}
BACKGROUND_COLOR = (0, 0, 0)
BINARY_COLOR = (255, 255, 255)

# A horizontal flip turns a left part into the right one.
MIRROR = {"l_eye": "r_eye", "r_eye": "l_eye", "l_brow": "r_brow", "r_brow": "l_brow",
          "l_ear": "r_ear", "r_ear": "l_ear"}


def parse_parts(text: str | list[str] | tuple[str, ...], source: str = "--parts") -> tuple[str, ...]:
    """Parse a comma-separated part list (or a sequence); raise UserError naming the valid parts.

    source: where the list comes from, named first in the error (a file's "parts" field, e.g.
    "pairs/pairs.json: parts"; default the --parts flag)."""
    names = [str(p).strip() for p in text.split(",")] if isinstance(text, str) else [str(p) for p in text]
    names = [p for p in names if p]
    if not names:
        raise UserError(f"{source}: expected at least one part name, valid: " + ",".join(CELEBAMASK_PARTS))
    unknown = [p for p in names if p not in CELEBAMASK_PARTS]
    if unknown:
        raise UserError(f"{source}: unknown part {unknown[0]!r}, valid: " + ",".join(CELEBAMASK_PARTS))
    if len(set(names)) != len(names):
        raise UserError(f"{source}: a part is named twice in {','.join(names)}")
    return tuple(names)


def check_style(style, source: str = "--style") -> str:
    """style itself when it is one of MASK_STYLES; UserError naming source (a file's "style" field, e.g.
    "run/options.json: style"; default the --style flag) and the valid styles."""
    if style not in MASK_STYLES:
        raise UserError(f"{source}: mask style {style!r} unknown, valid: {', '.join(MASK_STYLES)}")
    return style


def class_names(parts, style: str = "color") -> tuple[str, ...]:
    """Names of the classes a mask of this style holds: background first."""
    if style == "binary":
        return ("background", "+".join(parts))
    return ("background",) + tuple(parts)


def palette(parts, style: str = "color") -> np.ndarray:
    """The (num_classes, 3) uint8 colour of each class id in a mask image of this style."""
    if style not in MASK_STYLES:
        raise UserError(f"mask style {style!r} unknown, valid: {', '.join(MASK_STYLES)}")
    if style == "color":
        colors = [BACKGROUND_COLOR] + [PART_COLORS[p] for p in parts]
    elif style == "binary":
        colors = [BACKGROUND_COLOR, BINARY_COLOR]
    else:  # index: the grey value is the class id
        colors = [(i, i, i) for i in range(len(parts) + 1)]
    return np.asarray(colors, dtype=np.uint8)


def flip_permutation(parts, style: str = "color") -> np.ndarray:
    """Class id -> class id after a horizontal flip (l_eye <-> r_eye and the other left/right pairs)."""
    return mirror_permutation(class_names(parts, style))


def mirror_permutation(names) -> np.ndarray:
    """flip_permutation from the class names themselves (as a model's classes.json lists them)."""
    index = {name: i for i, name in enumerate(names)}
    return np.asarray([index.get(MIRROR.get(name, name), i) for i, name in enumerate(names)], dtype=np.int32)


# A mask pixel farther than this (in any channel) from every palette colour is no class of the palette:
# the mask was made with another style or other parts, or the AB image is grey. Half the smallest gap
# between two palette colours where that is smaller (index masks: exact values).
PALETTE_TOLERANCE = 32
# A mask whose off-palette pixels are more than this share of its non-background pixels was not made with
# this palette (white binary masks read as colour ones: all of them; a part left out of pairs.json: that
# part's share); fewer are the antialiased edges of a re-saved mask.
MAX_OFF_PALETTE_SHARE = 0.05


def palette_tolerance(colors: np.ndarray) -> int:
    """PALETTE_TOLERANCE, or less where two palette colours are closer than twice that."""
    colors = np.asarray(colors, np.int32)
    gaps = np.abs(colors[:, None] - colors[None]).max(-1)[np.triu_indices(len(colors), 1)]
    return int(min(PALETTE_TOLERANCE, (gaps.min() - 1) // 2)) if gaps.size else PALETTE_TOLERANCE


def off_palette(mask: np.ndarray, colors: np.ndarray) -> tuple[float, int, tuple[int, int, int] | None]:
    """How far an RGB mask (H, W, 3) uint8 is from a palette (C, 3), class 0 background:
    (share of its non-background pixels that are no palette colour, their count, the most common of them).

    Counted over the mask's distinct colours, so a whole mask costs one np.unique."""
    mask = np.asarray(mask, np.uint8).reshape(-1, 3).astype(np.uint32)
    packed, counts = np.unique(mask[:, 0] << 16 | mask[:, 1] << 8 | mask[:, 2], return_counts=True)
    rgb = np.stack([packed >> 16, packed >> 8 & 255, packed & 255], axis=1).astype(np.int32)
    distance = np.abs(rgb[:, None] - np.asarray(colors, np.int32)[None]).max(-1)   # (colours, C)
    tolerance = palette_tolerance(colors)
    off = distance.min(-1) > tolerance
    background = ~off & (distance.argmin(-1) == 0)
    off_count, parts = int(counts[off].sum()), int(counts[~background].sum())
    if not off_count:
        return 0.0, 0, None
    common = tuple(int(v) for v in rgb[off][counts[off].argmax()])
    return off_count / parts, off_count, common


def describe_palette(parts, style: str) -> str:
    """'the color masks of l_eye,r_eye,u_lip,l_lip' (for a line naming a mask that does not fit them)."""
    return f"the {style} masks of {','.join(parts)}"
