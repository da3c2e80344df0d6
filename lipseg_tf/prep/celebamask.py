"""The CelebAMask-HQ folder layout and its official train/val/test split.

    <root>/CelebA-HQ-img/<id>.jpg
    <root>/CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png   (one file per visible part)
    <root>/CelebA-HQ-to-CelebA-mapping.txt                             (idx orig_idx orig_file)
"""

from __future__ import annotations

from pathlib import Path

from lipseg_tf.errors import UserError

IMAGE_DIR = "CelebA-HQ-img"
ANNO_DIR = "CelebAMask-HQ-mask-anno"
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
SPLITS = ("train", "val", "test")
SYNTHETIC_MARKER = "SYNTHETIC.txt"  # written by lipseg_tf.prep.sample into the root of its synthetic datasets
# Official CelebA partition: image numbers 1..162770 train, ..182637 val, the rest test.
TRAIN_LAST, VAL_LAST = 162770, 182637


def image_path(root: str | Path, image_id: int) -> Path:
    return Path(root) / IMAGE_DIR / f"{image_id}.jpg"


def part_path(root: str | Path, image_id: int, part: str) -> Path:
    return Path(root) / ANNO_DIR / str(image_id // 2000) / f"{image_id:05d}_{part}.png"


def find_image_ids(root: str | Path) -> list[int]:
    """Ids of the photos in <root>/CelebA-HQ-img, sorted; UserError when the folder is missing or empty."""
    folder = Path(root) / IMAGE_DIR
    if not Path(root).is_dir():
        raise UserError(f"{root}: folder not found (expected a CelebAMask-HQ root)")
    if not folder.is_dir():
        raise UserError(f"{folder}: folder not found (expected the CelebAMask-HQ photos here)")
    ids = sorted(int(p.stem) for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                 and p.stem.isdigit())
    if not ids:
        raise UserError(f"{folder}: no <id>.jpg photos found")
    return ids


def split_of_celeba_number(number: int) -> str:
    """Official CelebA split of an original CelebA image number (1-based)."""
    if number <= TRAIN_LAST:
        return "train"
    return "val" if number <= VAL_LAST else "test"


def read_mapping(path: str | Path) -> dict[int, tuple[int, str]]:
    """CelebA-HQ-to-CelebA-mapping.txt -> {idx: (orig_idx, orig_file)}; UserError naming a bad line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found (expected CelebA-HQ-to-CelebA-mapping.txt)")
    mapping: dict[int, tuple[int, str]] = {}
    lines = path.read_text().splitlines()
    if not lines or lines[0].split()[:1] != ["idx"]:
        raise UserError(f"{path}: expected the header 'idx orig_idx orig_file' on line 1")
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise UserError(f"{path}: line {number}: expected 'idx orig_idx orig_file', got {line.strip()!r}")
        mapping[int(fields[0])] = (int(fields[1]), fields[2])
    return mapping


def read_partition(path: str | Path) -> dict[str, str]:
    """list_eval_partition.txt (`000001.jpg 0`) -> {orig_file: split}."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found (expected CelebA's list_eval_partition.txt)")
    result = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise UserError(f"{path}: line {number}: expected '<file> 0|1|2', got {line.strip()!r}")
        result[fields[0]] = SPLITS[int(fields[1])]
    return result


def official_splits(root: str | Path, ids, partition: str | Path | None = None) -> dict[int, str]:
    """Split of every id by the mapping file (and list_eval_partition.txt when given).

    Every id must have a mapping row: a missing row is an error naming the id, since guessing would leak
    test faces into training.
    """
    mapping_path = Path(root) / MAPPING_FILE
    mapping = read_mapping(mapping_path)
    by_file = read_partition(partition) if partition else None
    splits = {}
    for image_id in ids:
        if image_id not in mapping:
            raise UserError(f"{mapping_path}: no row for image id {image_id} (expected one per photo)")
        orig_idx, orig_file = mapping[image_id]
        if by_file is not None:
            if orig_file not in by_file:
                raise UserError(f"{partition}: no row for {orig_file} (CelebA-HQ id {image_id})")
            splits[image_id] = by_file[orig_file]
        else:
            # orig_idx is 0-based; CelebA file numbers (000001.jpg) are 1-based.
            splits[image_id] = split_of_celeba_number(orig_idx + 1)
    return splits


def is_synthetic(folder: str | Path) -> bool:
    """Whether a folder (or its parent) is a synthetic dataset from lipseg_tf.sample."""
    folder = Path(folder)
    return (folder / SYNTHETIC_MARKER).is_file() or (folder.parent / SYNTHETIC_MARKER).is_file()
