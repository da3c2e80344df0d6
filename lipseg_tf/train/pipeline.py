"""tf.data over a folder of AB pair images (photo left, mask right).

Each element is (image, labels): the photo as float32 in [-1, 1] (H, W, 3) and its mask as int32 class
ids (H, W). The mask half is decoded to class ids by the nearest palette colour *before* any resizing,
so augmentation moves labels, never blends them. Training jitter is pix2pix's: resize to scale_size
(the mask by nearest neighbour), one random crop applied to the stacked photo and mask, and a random
horizontal flip that also swaps the left/right classes; `augment="face"` adds train/augment.py's scale,
rotation, shift, colour, blur and JPEG draws for real photos. Test mode resizes to image_size and nothing else.

The pairs come from a folder of AB PNGs or from TFRecord shards of the same PNG bytes (prep/records.py,
`process.py --format tfrecord`); find_pairs tells which. Decoding runs in parallel, decoded pairs are
cached in memory (as uint8 at their file size) when they fit, and batches are prefetched, so on a GPU
the training step, not the input, sets the pace.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from lipseg_tf.errors import UserError
from lipseg_tf.prep import pairs, records
from lipseg_tf.prep.imageio import check_regular_file, image_to_rgb, load_rgb
from lipseg_tf.prep.pairs import META_FILE, read_pairs_meta
from lipseg_tf.prep.parts import describe_palette
from lipseg_tf.train.augment import AUGMENTS, face_augment

log = logging.getLogger("lipseg_tf")
# Decoded pairs are cached in memory when they take less than this fraction of the memory available.
CACHE_MEMORY_FRACTION = 0.5
CACHE_FALLBACK_BYTES = 2 << 30   # the budget where the available memory cannot be read
SHUFFLE_BUFFER = 2048
# Pairs whose masks are checked against the palette before training (check_mask_colors).
MASK_CHECK_PAIRS = 16


def find_pair_files(input_dir: str | Path, split: str | None = None) -> list[Path]:
    """The AB PNG files to read: <input_dir>/<split>/ when that folder exists, else <input_dir>/ itself.

    Every file is checked to be twice as wide as high (header read only); UserError names the first
    file that is not, or the folder when it holds no PNG.
    """
    folder = Path(input_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: folder not found (expected a folder of AB pair images)")
    if split and (folder / split).is_dir():
        folder = folder / split
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg") and not p.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: no AB pair images found (expected <id>.png files, "
                        f"photo left and mask right{', or a ' + split + '/ subfolder' if split else ''})")
    for path in files:
        check_regular_file(path)   # a FIFO named like a pair would hang the header read
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception as err:
            raise UserError(f"{path}: unreadable image ({err})") from None
        if width != 2 * height:
            raise UserError(f"{path}: AB pair must be twice as wide as high, got {width}x{height}")
        _check_png_end(path)
    return files


PNG_END = b"IEND\xaeB`\x82"   # the last chunk of every PNG and its CRC


def _check_png_end(path: Path) -> None:
    """UserError naming a PNG that does not end with its IEND chunk: a truncated file, caught before
    training rather than as a nameless decode error in the middle of it (reads 8 bytes a file)."""
    if path.suffix.lower() != ".png":
        return
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - len(PNG_END)))
        if handle.read() != PNG_END:
            raise UserError(f"{path}: truncated PNG (no IEND chunk at its end); expected a whole AB pair image")


@dataclasses.dataclass(frozen=True)
class PairSource:
    """A split's AB pairs: PNG files, or TFRecord shards holding the same PNG bytes (prep/records.py)."""

    format: str                  # "png" or "tfrecord"
    files: tuple[Path, ...]      # the PNG files, or the shards
    count: int                   # pairs
    pair_size: int               # height of an AB pair; each half is pair_size x pair_size

    @property
    def folder(self) -> Path:
        return self.files[0].parent


def _image_height(path: Path) -> int:
    with Image.open(path) as image:  # header only
        return image.size[1]


def _has_images(folder: Path, split: str | None) -> bool:
    if split and (folder / split).is_dir():
        folder = folder / split
    return any(p.suffix.lower() in (".png", ".jpg", ".jpeg") and not p.name.startswith(".")
               for p in folder.iterdir())


def has_split(input_dir: str | Path, split: str) -> bool:
    """True when input_dir holds a <split>/ folder of AB images or <split>-*.tfrecord shards."""
    folder = Path(input_dir)
    return (folder / split).is_dir() or records.has_split(folder, split)


def find_pairs(input_dir: str | Path, split: str | None = None) -> PairSource:
    """The AB pairs of a split in input_dir, PNG or TFRecord, whichever the folder holds.

    TFRecord shards (`<split>-NNNNN-of-NNNNN.tfrecord`) are used when there are no AB images for the
    split, or when pairs.json says process.py last wrote TFRecords; otherwise find_pair_files. The first
    record of every shard is checked to be an AB pair; UserError names the shard that is not.
    """
    folder = Path(input_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: folder not found (expected a folder of AB pair images or TFRecord shards)")
    shards = records.find_shards(folder, split)
    meta = read_pairs_meta(folder) or {}
    if meta.get("complete") is False:  # process.py writes it complete only at its end
        raise UserError(f"{folder}: process.py did not finish writing these pairs ({META_FILE} says "
                        "\"complete\": false; run it again)")
    if shards and (meta.get("format") == "tfrecord" or not _has_images(folder, split)):
        return _record_source(shards, split, meta)
    files = find_pair_files(folder, split)
    return PairSource("png", tuple(files), len(files), _image_height(files[0]))


def _check_record_meta(folder: Path, meta: dict) -> None:
    """UserError unless a pairs.json vouches for the shards."""
    if not meta:
        raise UserError(f"{folder}: TFRecord shards without {META_FILE} (expected the {META_FILE} that "
                        "process.py --format tfrecord writes when it has finished; run it again)")


def _record_source(shards: list[Path], split: str | None, meta: dict) -> PairSource:
    size = None
    for shard in shards:
        first = records.first_record(shard)
        records.check_framing(shard)
        if first is None:  # an empty shard (every pair of its block failed in process.py) reads as none
            continue
        pair_id, ab = first
        try:
            with Image.open(io.BytesIO(ab)) as image:
                width, height = image.size
        except Exception as err:
            raise UserError(f"{shard}: record {pair_id}: unreadable AB image ({err})") from None
        if width != 2 * height:
            raise UserError(f"{shard}: record {pair_id}: AB pair must be twice as wide as high, "
                            f"got {width}x{height}")
        size = size or height
    _check_record_meta(shards[0].parent, meta)
    records.check_shard_set(shards)
    # pairs.json counts the records of each split; without it they are counted by reading them.
    if meta.get("format") == "tfrecord" and split and (meta.get("shards") or {}).get(split) == len(shards):
        count = int(meta["splits"][split])
    else:
        count = records.count_records(shards)
    if not count or size is None:
        raise UserError(f"{shards[0].parent}: the TFRecord shards {shards[0].name} ... hold no AB pair "
                        "(expected records written by process.py --format tfrecord)")
    return PairSource("tfrecord", tuple(shards), count, size)


def name_bad_pair(files) -> str | None:
    """One line naming the first pair of files that does not decode whole (a corrupt PNG, a damaged
    record), None when all do. For a decode error met during training, which TensorFlow reports without
    the file: read every pair once more with PIL, only then."""
    source = as_source(files)
    if source.format == "png":
        for path in source.files:
            try:
                with Image.open(path) as image:
                    image.load()
            except Exception as err:  # PIL raises several types for corrupt data
                return f"{path}: unreadable image ({err}); expected a whole AB pair image"
        return None
    for shard in source.files:
        whole = 0
        try:
            for record in tf.data.TFRecordDataset(str(shard)):
                with Image.open(io.BytesIO(records.parse(record)[1].numpy())) as image:
                    image.load()
                whole += 1
        except Exception as err:  # tf.errors.DataLossError for a damaged record, PIL's for a bad image
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return f"{shard}: record {whole + 1}: unreadable ({message}); expected whole AB pairs"
    return None


def check_mask_colors(source: PairSource, classes, where: str = "", count: int = MASK_CHECK_PAIRS) -> None:
    """The masks of the first `count` pairs against the palette they will be decoded with (classes):
    UserError naming the first whose part pixels are mostly no colour of it (prep/pairs.py's
    check_mask_colors: masks of another style or other parts, a grey AB image), a warning naming those
    with a few. Reads `count` pairs, once, before training. where: where the classes came from."""
    few = []
    for name, ab in _first_pairs(source, count):
        share = pairs.check_mask_colors(name, pairs.split_pair(ab)[1], classes.parts, classes.style, where)
        if share:
            few.append(f"{name} ({100 * share:.2g}%)")
    if few:
        log.warning("%d of the first %d pairs have mask pixels of no colour of %s%s, read as the nearest: %s",
                    len(few), count, describe_palette(classes.parts, classes.style), where, ", ".join(few))


def classes_source(input_dir: str | Path) -> str:
    """' (<its pairs.json>)' when a trainer takes input_dir's classes from pairs.json, else the flags."""
    folder = Path(input_dir)
    found = next((p for p in (folder / META_FILE, folder.parent / META_FILE) if p.is_file()), None)
    return f" ({found})" if found else " (--style and --parts: no pairs.json)"


def _first_pairs(source: PairSource, count: int):
    """(name, AB image (H, 2H, 3) uint8) of the first `count` pairs: the file, or shard and record id."""
    if source.format == "png":
        for path in source.files[:count]:
            yield path, load_rgb(path)
        return
    for record in tf.data.TFRecordDataset([str(p) for p in source.files]).take(count):
        pair_id, ab = (t.numpy() for t in records.parse(record))
        with Image.open(io.BytesIO(ab)) as image:
            yield f"{source.folder} record {pair_id.decode()}", image_to_rgb(image)


def as_source(files) -> PairSource:
    """files itself when a PairSource, else the PairSource of these AB image paths."""
    if isinstance(files, PairSource):
        return files
    paths = tuple(Path(p) for p in files)
    return PairSource("png", paths, len(paths), _image_height(paths[0]) if paths else 0)


def pair_names(files) -> list[str]:
    """Names of the pairs in the order make_dataset(training=False) yields them: file stems or record ids."""
    source = as_source(files)
    if source.format == "png":
        return [p.stem for p in source.files]
    ids = tf.data.TFRecordDataset([str(p) for p in source.files]).map(lambda r: records.parse(r)[0])
    return [pair_id.decode() for pair_id in ids.as_numpy_iterator()]


def cache_budget_bytes() -> int:
    """Memory the decoded-pair cache may take: a fraction of what the machine has available now."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * CACHE_MEMORY_FRACTION)
    except (OSError, ValueError, IndexError):
        pass
    return CACHE_FALLBACK_BYTES


def decode_pair(path: tf.Tensor, colors: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """AB file -> (photo uint8 (H, W, 3), class ids uint8 (H, W, 1)) by the nearest palette colour."""
    return decode_pair_bytes(tf.io.read_file(path), colors)


def decode_pair_bytes(contents: tf.Tensor, colors: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Encoded AB image -> (photo uint8 (H, W, 3), class ids uint8 (H, W, 1)), as decode_pair."""
    ab = tf.io.decode_image(contents, channels=3, expand_animations=False)
    width = tf.shape(ab)[1] // 2
    image, mask_rgb = ab[:, :width], ab[:, width:2 * width]
    diff = tf.cast(mask_rgb[:, :, None, :], tf.int32) - tf.cast(colors[None, None], tf.int32)
    labels = tf.argmin(tf.reduce_sum(diff * diff, axis=-1), axis=-1, output_type=tf.int32)
    return image, tf.cast(labels[..., None], tf.uint8)


def resize_pair(image, labels, size: int):
    """Photo resized with antialiasing, labels with nearest neighbour (no new values)."""
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), method="bilinear", antialias=True)
    labels = tf.image.resize(labels, (size, size), method="nearest")
    return image, labels


def jitter(image, labels, seed, crop_size: int, flip: bool, flip_perm: tf.Tensor):
    """pix2pix's random jitter on a pair already resized to scale_size: one draw for photo and mask.

    `seed` is a (2,) int tensor; the crop and the flip use stateless ops seeded from it, so a run
    is reproducible from --seed.
    """
    stacked = tf.concat([image, tf.cast(labels, tf.float32)], axis=-1)   # (scale, scale, 4)
    stacked = tf.image.stateless_random_crop(stacked, (crop_size, crop_size, 4), seed=seed)
    image, labels = stacked[..., :3], tf.cast(stacked[..., 3:], tf.int32)
    if flip:
        do_flip = tf.random.stateless_uniform((), seed=seed + 1) < 0.5
        image = tf.where(do_flip, tf.reverse(image, axis=[1]), image)
        # A mirrored left eye is a right eye: flip the pixels and swap the classes.
        labels = tf.where(do_flip, tf.gather(flip_perm, tf.reverse(labels, axis=[1])), labels)
    return image, labels


def make_dataset(files, colors, flip_perm, *, training: bool, image_size: int, scale_size: int,
                 batch_size: int, flip: bool = True, seed: int = 0, cache: bool = True,
                 repeat: bool = False, deterministic: bool | None = None,
                 input_context: tf.distribute.InputContext | None = None,
                 drop_remainder: bool | None = None, augment: str = "none") -> tf.data.Dataset:
    """Batched (image in [-1, 1] float32 (B, S, S, 3), labels int32 (B, S, S)) from AB pairs.

    Args:
        files: a PairSource (find_pairs), or AB image paths (find_pair_files).
        colors: (num_classes, 3) uint8 palette of the mask half (parts.palette).
        flip_perm: class permutation applied by a horizontal flip (parts.flip_permutation).
        training: shuffle and jitter when True; plain resize to image_size when False.
        image_size, scale_size: crop size and the size resized to before cropping.
        batch_size: batch size (per replica under a tf.distribute strategy); test batches keep the
            last partial batch.
        seed: seed of shuffling and jitter.
        cache: keep decoded pairs in memory when they fit (cache_budget_bytes).
        repeat: repeat forever (training loops that count steps).
        deterministic: order of the parallel maps; None is tf.data's default (in order).
        input_context: this input pipeline's place among several (tf.distribute): it reads only its
            own share of the pairs.
        drop_remainder: drop a last partial batch (default: when training).
        augment: "none" (pix2pix's jitter only) or "face" (train/augment.py as well), when training.
    """
    if augment not in AUGMENTS:
        raise UserError(f"--augment: unknown {augment!r}, valid: {', '.join(AUGMENTS)}")
    source = as_source(files)
    colors = tf.constant(np.asarray(colors, np.uint8))
    flip_perm = tf.constant(np.asarray(flip_perm, np.int32))
    autotune = tf.data.AUTOTUNE
    pipelines, pipeline_id = ((input_context.num_input_pipelines, input_context.input_pipeline_id)
                              if input_context is not None else (1, 0))
    ds, count = _decoded_pairs(source, colors, training, seed, deterministic, pipelines, pipeline_id)
    # Cached as decoded at the file's size, photo and class ids in uint8 (4 bytes a pixel); resizing
    # to the training size happens after the cache, so 30,000 pairs at 256 px take ~8 GB, not ~40.
    if cache and count * source.pair_size ** 2 * 4 < cache_budget_bytes():
        ds = ds.cache()
    if training:
        ds = ds.shuffle(max(1, min(count, SHUFFLE_BUFFER)), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        seeds = tf.data.Dataset.random(seed=seed + pipeline_id).batch(2)

        def train_pair(pair, pair_seed):
            image, labels = jitter(*resize_pair(pair[0], pair[1], scale_size), pair_seed, image_size, flip,
                                   flip_perm)
            if augment == "face":
                image, labels = face_augment(image, labels, pair_seed, image_size)
            return image, labels

        ds = tf.data.Dataset.zip((ds, seeds)).map(train_pair, num_parallel_calls=autotune,
                                                  deterministic=deterministic)
    else:
        ds = ds.map(lambda im, lb: resize_pair(im, lb, image_size), num_parallel_calls=autotune,
                    deterministic=deterministic)
        if repeat:
            ds = ds.repeat()
    ds = ds.map(lambda im, lb: (im / 127.5 - 1.0, tf.cast(lb[..., 0], tf.int32)), num_parallel_calls=autotune,
                deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=training if drop_remainder is None else drop_remainder)
    return ds.prefetch(autotune)


def _decoded_pairs(source: PairSource, colors, training: bool, seed: int, deterministic: bool | None,
                   pipelines: int, pipeline_id: int) -> tuple[tf.data.Dataset, int]:
    """(photo uint8, class ids uint8) at the file's size, this pipeline's share; and about how many."""
    autotune = tf.data.AUTOTUNE
    if source.format == "png":
        paths = [str(p) for p in source.files][pipeline_id::pipelines]
        ds = tf.data.Dataset.from_tensor_slices(paths)
        return ds.map(lambda p: decode_pair(p, colors), num_parallel_calls=autotune,
                      deterministic=deterministic), len(paths)
    shards = [str(p) for p in source.files]
    by_shard = len(shards) >= pipelines          # each pipeline reads whole shards of its own
    if by_shard:
        shards = shards[pipeline_id::pipelines]
    count = -(-source.count * len(shards) // len(source.files)) if by_shard else -(-source.count // pipelines)
    if training:
        files = tf.data.Dataset.from_tensor_slices(shards).shuffle(len(shards), seed=seed,
                                                                   reshuffle_each_iteration=True)
        ds = files.interleave(tf.data.TFRecordDataset, cycle_length=min(len(shards), 16),
                              num_parallel_calls=autotune, deterministic=deterministic)
    else:  # in file order, as pair_names lists them
        ds = tf.data.TFRecordDataset(shards)
        if pipelines == 1:  # known length: Keras then runs validation without an "ran out of data" warning
            ds = ds.apply(tf.data.experimental.assert_cardinality(source.count))
    if not by_shard:
        ds = ds.shard(pipelines, pipeline_id)
    ds = ds.map(lambda record: decode_pair_bytes(records.parse(record)[1], colors), num_parallel_calls=autotune,
                deterministic=deterministic)
    return ds, count


# Mask colours map to [-MASK_RANGE, MASK_RANGE], not [-1, 1]. Black at exactly -1 is the asymptote of the
# generator's tanh: L1 then pushes the background's pre-activations down without end, the shared output
# layer saturates for every pixel, and the parts never get a gradient again (measured: an all-black
# output after 30 epochs on the sample).
MASK_RANGE = 0.8


def colors_to_model_range(colors) -> tf.Tensor:
    """uint8 palette (C, 3) -> float32 colours in [-MASK_RANGE, MASK_RANGE], as the generator outputs them."""
    return tf.constant((np.asarray(colors, np.float32) / 127.5 - 1.0) * MASK_RANGE)


def labels_to_image(labels: tf.Tensor, colors) -> tf.Tensor:
    """Class ids (..., H, W) -> their palette colours as pix2pix's target image (..., H, W, 3)."""
    return tf.gather(colors_to_model_range(colors), labels)


def image_to_class_scores(image: tf.Tensor, colors, temperature: float = 0.05) -> tf.Tensor:
    """pix2pix output (..., 3) -> class probabilities by distance to each palette colour.

    The class of a pixel is its nearest palette colour; the softmax over negative squared distances
    (scaled by `temperature`) turns that into per-class scores that sum to 1.
    """
    diff = image[..., None, :] - colors_to_model_range(colors)
    return tf.nn.softmax(-tf.reduce_sum(diff * diff, axis=-1) / temperature, axis=-1)
