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

Left and right follow the real CelebAMask-HQ: `l_eye`, `l_brow` and `l_ear` are the person's own left,
which lies on the image's RIGHT side (larger x), the `r_` ones on the image's left; MediaPipe's FaceMesh
names its eyes the same way. So a model trained on these faces learns the real dataset's convention. (Some
real annotations have a pair the other way round; g_mask.py counts them, and --fix-sides relabels
them by position. Here the rule is exact.)

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
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from lipseg_tf.errors import UserError
from lipseg_tf.prep import celebamask, parallel
from lipseg_tf.prep.imageio import save_image, write_text
from lipseg_tf.prep.sample.face import render_face

log = logging.getLogger("lipseg_tf")

# CelebA has 202599 images: 0-based orig_idx ranges of the official splits.
CELEBA_TOTAL = 202599
SPLIT_RANGES = {"train": (0, celebamask.TRAIN_LAST), "val": (celebamask.TRAIN_LAST, celebamask.VAL_LAST),
                "test": (celebamask.VAL_LAST, CELEBA_TOTAL)}
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


# ------------------------------------------------------------------------------------------------ faces

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
               "l_eye/l_brow/l_ear are the person's left, on the image's right side, as in CelebAMask-HQ.\n")
    jobs = [(str(out), seed, i, size) for i in range(count)]
    parallel.map_progress(_write_face_job, jobs, workers, desc="synthetic faces", unit="face")
    # The mapping last: a folder with a mapping file is a complete dataset.
    write_text(out / celebamask.MAPPING_FILE,
               "idx orig_idx orig_file\n" + "".join(f"{i} {o} {f}\n" for i, o, f in rows))
    log.info("wrote %d synthetic faces (train/val/test %d/%d/%d) to %s", count, counts["train"], counts["val"],
             counts["test"], out)
    return counts
