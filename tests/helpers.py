"""What several test files share: tiny AB pair datasets drawn in memory, and their colours.

Test files import from here (conftest.py builds its fixtures on it); no test file imports another.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lipseg_tf.prep.parts import DEFAULT_PARTS, flip_permutation, palette

REPO = Path(__file__).resolve().parent.parent
COLORS = palette(DEFAULT_PARTS)            # background, l_eye, r_eye, u_lip, l_lip
FLIP = flip_permutation(DEFAULT_PARTS)
# Photo colour of each class id, far apart, so a photo pixel tells which class it was drawn as.
PHOTO_RGB = np.array([(128, 128, 128), (40, 200, 40), (40, 40, 200), (200, 40, 40), (200, 200, 40)])
# The four parts' boxes on a 64 px face: class id -> (top, left, height, width).
BOXES = {1: (14, 38, 10, 16), 2: (14, 10, 10, 16), 3: (38, 20, 7, 24), 4: (45, 20, 7, 24)}


def face_labels(rng: np.random.Generator, size: int = 64, jitter_parts: bool = True) -> np.ndarray:
    """Class ids (size, size): l_eye on the image's right (the person's left, as in CelebAMask-HQ), r_eye
    on its left, u_lip over l_lip, the face randomly offset by up to 4 px (of 64) and, with jitter_parts,
    each part by up to 2 px more."""
    labels = np.zeros((size, size), np.uint8)
    s = size / 64
    dy, dx = rng.integers(-4, 5, 2)
    for k, (y, x, h, w) in BOXES.items():
        ey, ex = rng.integers(-2, 3, 2) if jitter_parts else (0, 0)
        y0, x0 = int((y + dy + ey) * s), int((x + dx + ex) * s)
        labels[y0:y0 + int(h * s), x0:x0 + int(w * s)] = k
    return labels


def save_ab(path: Path, photo: np.ndarray, mask_rgb: np.ndarray) -> Path:
    """Write photo (left) and mask (right) side by side as one AB PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([photo, mask_rgb], axis=1).astype(np.uint8)).save(path)
    return path


def write_ab_pairs(root: Path, counts: dict[str, int], size: int = 64, seed: int = 0, noise: float = 12.0,
                   jitter_parts: bool = True) -> dict[Path, np.ndarray]:
    """AB PNGs <root>/<split>/<split>NNN.png whose noisy photo colour encodes the class (PHOTO_RGB);
    returns {path: class ids}."""
    rng = np.random.default_rng(seed)
    truth = {}
    for split, n in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            labels = face_labels(rng, size, jitter_parts)
            photo = np.clip(PHOTO_RGB[labels] + rng.normal(0, noise, (size, size, 3)), 0, 255)
            truth[save_ab(root / split / f"{split}{i:03d}.png", photo, COLORS[labels])] = labels
    return truth


def make_ab_dataset(root: Path, counts: dict[str, int], size: int = 64, seed: int = 0, noise: float = 12.0,
                    jitter_parts: bool = True) -> Path:
    """write_ab_pairs, returning root: the AB folder to give a trainer."""
    write_ab_pairs(root, counts, size, seed, noise, jitter_parts)
    return root
