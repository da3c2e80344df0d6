"""What several test files share: tiny AB pair datasets drawn in memory, and their colours; the template
network whose exported SavedModel (conftest.py's template_model) answers the framing's reference parts.

Test files import from here (conftest.py builds its fixtures on it); no test file imports another.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lipseg_tf.prep.parts import DEFAULT_PARTS, flip_permutation, palette
from lipseg_tf.serve import align

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


TEMPLATE_SIZE = 64                 # the template models' crop
TEMPLATE_CROP = (0.2, 0.3, 0.6)    # the box of the framing the cropped template model was "trained" on


class TemplateNetwork:
    """Always the same probabilities: eye discs and lip bands at the framing's (and crop's) reference landmarks
    (l_eye on the image's right, as in CelebAMask-HQ)."""

    def __init__(self, size: int, framing: str = "sample", crop=None):
        import tensorflow as tf
        labels = np.zeros((size, size), np.int64)
        ref = align.reference_landmarks(framing, size, crop)
        rows, cols = np.indices((size, size)) + 0.5
        radius = 0.04 * size
        for k, (x, y) in ((1, ref[1]), (2, ref[0])):
            labels[(cols - x) ** 2 + (rows - y) ** 2 <= radius ** 2] = k
        mouth_y = ref[2:, 1].mean()
        between = (cols >= ref[2, 0]) & (cols <= ref[3, 0])
        labels[between & (rows >= mouth_y - radius) & (rows < mouth_y)] = 3
        labels[between & (rows >= mouth_y) & (rows < mouth_y + radius)] = 4
        probs = np.full((size, size, 5), 0.025, np.float32)
        np.put_along_axis(probs, labels[..., None], 0.9, axis=-1)
        self.labels = labels
        self.probabilities = tf.constant(probs)

    def __call__(self, images, training=False):
        import tensorflow as tf
        return tf.tile(self.probabilities[None], [tf.shape(images)[0], 1, 1, 1])


def export_template_model(out: Path, crop=None) -> Path:
    """Export the template network (TEMPLATE_SIZE, "sample" framing, cut to `crop`) as a SavedModel in out."""
    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.serve.savedmodel import Segmenter, export

    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    network = TemplateNetwork(TEMPLATE_SIZE, crop=crop)
    export(Segmenter(network, TEMPLATE_SIZE, classes, output="probabilities", crop=crop), classes, out,
           framing="sample")
    return out


def faceless_photo() -> np.ndarray:
    """A 300 x 400 photo with no face in it: colour ramps and one red block, for detectors to find nothing in."""
    x = np.linspace(0, 1, 400)
    photo = np.stack([np.outer(np.linspace(0, 1, 300), x) * 255, np.tile(x * 200, (300, 1)),
                      np.full((300, 400), 90)], axis=-1).astype(np.uint8)
    photo[100:200, 150:260] = (200, 60, 60)
    return photo
