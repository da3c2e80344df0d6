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


def _read_lines(path: Path, what: str) -> list[str]:
    """The lines of a UTF-8 text file (a byte-order mark, as Windows editors write, is dropped); UserError
    naming it when it is missing or not UTF-8 text."""
    if not path.is_file():
        raise UserError(f"{path}: file not found (expected {what})")
    try:
        return path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                        f"expected {what}") from None


def read_mapping_rows(path: str | Path) -> tuple[dict[int, tuple[int, str]], dict[int, str]]:
    """CelebA-HQ-to-CelebA-mapping.txt -> ({idx: (orig_idx, orig_file)}, {idx: problem}).

    An idx listed twice with different rows is left out of the mapping and its problem named: which
    CelebA image (and so which split) it is can't be told. UserError naming a malformed line.
    """
    path = Path(path)
    lines = _read_lines(path, "CelebA-HQ-to-CelebA-mapping.txt")
    mapping: dict[int, tuple[int, str]] = {}
    first_line: dict[int, int] = {}
    conflicts: dict[int, str] = {}
    if not lines or lines[0].split()[:1] != ["idx"]:
        raise UserError(f"{path}: expected the header 'idx orig_idx orig_file' on line 1")
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise UserError(f"{path}: line {number}: expected 'idx orig_idx orig_file', got {line.strip()!r}")
        idx, row = int(fields[0]), (int(fields[1]), fields[2])
        if idx in first_line and mapping.get(idx, row) != row or idx in conflicts:
            conflicts.setdefault(idx, f"{path}: image id {idx} listed twice with different rows (lines "
                                      f"{first_line[idx]} and {number}), skipped")
            mapping.pop(idx, None)
            continue
        first_line.setdefault(idx, number)
        mapping[idx] = row
    return mapping, conflicts


def read_mapping(path: str | Path) -> dict[int, tuple[int, str]]:
    """CelebA-HQ-to-CelebA-mapping.txt -> {idx: (orig_idx, orig_file)} (read_mapping_rows)."""
    return read_mapping_rows(path)[0]


def read_partition(path: str | Path) -> dict[str, str]:
    """list_eval_partition.txt (`000001.jpg 0`) -> {orig_file: split}; a file listed twice with different
    splits maps to None."""
    path = Path(path)
    result: dict[str, str | None] = {}
    for number, line in enumerate(_read_lines(path, "CelebA's list_eval_partition.txt"), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise UserError(f"{path}: line {number}: expected '<file> 0|1|2', got {line.strip()!r}")
        split = SPLITS[int(fields[1])]
        result[fields[0]] = split if result.get(fields[0], split) == split else None
    return result


def split_problems(root: str | Path, ids, partition: str | Path | None = None) -> tuple[dict[int, str],
                                                                                           dict[int, str]]:
    """({id: split}, {id: problem}) by the mapping file (and list_eval_partition.txt when given).

    Every id must have a mapping row: a missing row is an error naming the id, since guessing would leak
    test faces into training. An id whose rows disagree (listed twice) gets no split and a problem.
    """
    mapping_path = Path(root) / MAPPING_FILE
    mapping, conflicts = read_mapping_rows(mapping_path)
    by_file = read_partition(partition) if partition else None
    splits, problems = {}, {}
    for image_id in ids:
        if image_id in conflicts:
            problems[image_id] = conflicts[image_id]
            continue
        if image_id not in mapping:
            raise UserError(f"{mapping_path}: no row for image id {image_id} (expected one per photo)")
        orig_idx, orig_file = mapping[image_id]
        if by_file is not None:
            if orig_file not in by_file:
                raise UserError(f"{partition}: no row for {orig_file} (CelebA-HQ id {image_id})")
            if by_file[orig_file] is None:
                problems[image_id] = f"{partition}: {orig_file} listed twice with different splits, skipped"
                continue
            splits[image_id] = by_file[orig_file]
        else:
            # orig_idx is 0-based; CelebA file numbers (000001.jpg) are 1-based.
            splits[image_id] = split_of_celeba_number(orig_idx + 1)
    return splits, problems


def official_splits(root: str | Path, ids, partition: str | Path | None = None) -> dict[int, str]:
    """Split of every id by the mapping file (split_problems); ids listed ambiguously are left out."""
    return split_problems(root, ids, partition)[0]


def is_synthetic(folder: str | Path) -> bool:
    """Whether a folder (or its parent) is a synthetic dataset from lipseg_tf.sample."""
    folder = Path(folder)
    return (folder / SYNTHETIC_MARKER).is_file() or (folder.parent / SYNTHETIC_MARKER).is_file()
