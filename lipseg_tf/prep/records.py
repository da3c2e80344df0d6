"""Sharded TFRecord files of AB pairs: what `process.py --format tfrecord` writes and the trainers read.

    <out>/<split>-00000-of-00004.tfrecord ... <split>-00003-of-00004.tfrecord

Each record is a tf.train.Example with two bytes features: `id` (the photo's id, e.g. b"12") and `ab`
(the AB pair encoded as PNG, byte for byte the file the PNG format writes). A split's pairs are spread
over its shards in id order, in contiguous blocks. A few large files stream faster than thousands of
small ones from a network disk or a bucket, and let each worker of a multi-worker run read its own
shards.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import tensorflow as tf

from lipseg_tf.errors import UserError

EXTENSION = ".tfrecord"
ID_KEY, AB_KEY = "id", "ab"
_SHARD_RE = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")


def shard_name(split: str, index: int, count: int) -> str:
    """'train-00001-of-00004.tfrecord'."""
    return f"{split}-{index:05d}-of-{count:05d}{EXTENSION}"


def serialize(pair_id: str, ab_png: bytes) -> bytes:
    """One record: a tf.train.Example holding the id and the encoded AB PNG."""
    feature = {ID_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(pair_id).encode()])),
               AB_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[ab_png]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Serialized record -> (id, encoded AB PNG), both tf.string scalars (usable inside tf.data)."""
    features = tf.io.parse_single_example(record, {ID_KEY: tf.io.FixedLenFeature([], tf.string),
                                                   AB_KEY: tf.io.FixedLenFeature([], tf.string)})
    return features[ID_KEY], features[AB_KEY]


def find_shards(folder: str | Path, split: str | None = None) -> list[Path]:
    """The TFRecord shards of `split` in folder (`<split>-NNNNN-of-NNNNN.tfrecord`), sorted.

    Without split, or when folder holds no shard named by a split at all, every *.tfrecord file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.suffix == EXTENSION and not p.name.startswith("."))
    named = {p: _SHARD_RE.match(p.name) for p in files}
    if split is not None and any(named.values()):
        return [p for p, match in named.items() if match and match["split"] == split]
    return files


def has_split(folder: str | Path, split: str) -> bool:
    """True when folder holds shards named for split (`<split>-NNNNN-of-NNNNN.tfrecord`)."""
    folder = Path(folder)
    return folder.is_dir() and any((m := _SHARD_RE.match(p.name)) and m["split"] == split
                                   for p in folder.iterdir())


def check_shard_set(shards: list[Path]) -> None:
    """UserError unless the named shards among these form whole sets: for `-of-N`, each of 0..N-1 there,
    and one N per split (a set written by an interrupted run, or beside an older one, is refused)."""
    sets: dict[str, dict[int, set[int]]] = {}
    for path in shards:
        if match := _SHARD_RE.match(path.name):
            sets.setdefault(match["split"], {}).setdefault(int(match["count"]), set()).add(int(match["index"]))
    for split, by_count in sets.items():
        folder = shards[0].parent
        if len(by_count) > 1:
            raise UserError(f"{folder}: {split} shards of {' and '.join(map(str, sorted(by_count)))} files "
                            "side by side (expected one set: run process.py --format tfrecord again)")
        count, indices = next(iter(by_count.items()))
        missing = sorted(set(range(count)) - indices)
        if missing:
            raise UserError(f"{folder / shard_name(split, missing[0], count)}: missing, {len(missing)} of "
                            f"{count} {split} shards are (expected the whole set: process.py --format tfrecord "
                            "was interrupted? run it again)")


def write_split(folder: Path, split: str, records, count: int, shards: int) -> list[Path]:
    """Write `count` serialized records (an iterable, in order) as `shards` shards of split.

    Each shard is written under a temporary name and renamed when complete, so a reader never sees a
    half-written shard. Shards of this split left by an earlier run with another shard count are
    deleted. Returns the shard paths (fewer than `shards` when count is smaller, none when it is 0).
    """
    shards = min(shards, count)
    paths = [folder / shard_name(split, i, shards) for i in range(shards)]
    # Contiguous blocks: shard i holds records [bounds[i], bounds[i + 1]).
    bounds = [i * count // shards for i in range(shards + 1)] if shards else [0]
    records = iter(records)
    for index, path in enumerate(paths):
        temp = path.with_name(f".tmp-{path.name}")
        try:
            with tf.io.TFRecordWriter(str(temp)) as writer:
                for _ in range(bounds[index + 1] - bounds[index]):
                    record = next(records, None)
                    if record is None:
                        break
                    writer.write(record)
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    for stale in find_shards(folder, split):
        if stale not in paths and _SHARD_RE.match(stale.name):
            stale.unlink()
    return paths


def check_framing(path: Path) -> int:
    """Records in a TFRecord file, counted by walking its length fields (a seek per record, no data read);
    UserError naming the file when it ends inside a record (a truncated copy or an interrupted write)."""
    size = path.stat().st_size
    position = records = 0
    with open(path, "rb") as handle:
        while position < size:
            header = handle.read(8)
            if len(header) < 8:
                break
            position += 12 + int.from_bytes(header, "little") + 4   # length, its CRC, data, the data's CRC
            if position > size:
                break
            handle.seek(position)
            records += 1
    if position != size:
        raise UserError(f"{path}: truncated TFRecord file (it ends inside record {records + 1}, "
                        f"{size} bytes); expected whole records written by process.py --format tfrecord")
    return records


def count_records(files) -> int:
    """Records in these TFRecord files (reads them through once)."""
    dataset = tf.data.TFRecordDataset([str(p) for p in files])
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def first_record(path: Path) -> tuple[str, bytes] | None:
    """(id, AB PNG bytes) of a shard's first record, None for an empty shard; UserError naming the
    file when it is not a TFRecord of AB pairs."""
    try:
        record = next(iter(tf.data.TFRecordDataset(str(path)).take(1)), None)
        if record is None:
            return None
        pair_id, ab = parse(record)
    except (tf.errors.OpError, ValueError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not a TFRecord of AB pairs ({message}); expected records with "
                        f"'{ID_KEY}' and '{AB_KEY}' bytes written by process.py --format tfrecord") from None
    return pair_id.numpy().decode(), ab.numpy()
