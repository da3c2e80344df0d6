"""Side-by-side benchmarks: each of our figures next to a baseline measured in the same run on the same data.

    python -m lipseg_tf.tools.bench [--count 64] [--size 256] [--sections g_mask,process,pipeline,train,inference]
                              [--batch-sizes 1,16] [--json bench.json]

Data: synthetic faces from lipseg_tf.prep.sample, written to a temporary folder (deleted at the end unless
--workdir names one). Sections and their baselines:

    g_mask     masks/s: g_mask with every worker              vs a plain loop in one process (read each
                                                                 part file, paint, write)
    process    pairs/s: process.py PNG pairs, TFRecord shards  vs a plain loop (read, resize, write)
    pipeline   AB pairs/s delivered by pipeline.make_dataset   vs the same decode/jitter/flip/batch without
               (parallel decode, cache, prefetch), PNG and       parallel map, cache or prefetch
               TFRecord
    train      images/s of a pix2pix and a U-Net training step  vs float32 without XLA at the same batch
               per precision and XLA
    inference  exported SavedModel: latency p50/p95 at batch 1, vs the same Keras network called eagerly
               images/s at batch 32                              (what one gets without export)

Ratio is always the speed-up, > 1 when ours is faster. A benchmark is not a test: nothing here asserts
anything; the figures depend on the machine and on what else runs on it, so compare ratios measured side
by side in one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from lipseg_tf.cli import common
from lipseg_tf.errors import UserError
from lipseg_tf.prep import celebamask
from lipseg_tf.prep.imageio import write_text
from lipseg_tf.prep.parts import DEFAULT_PARTS, palette
from lipseg_tf.tools.bench_models import Row, bench_inference, bench_train, timed
from lipseg_tf.train.config import PRECISIONS

log = logging.getLogger("lipseg_tf")

SECTIONS = ("g_mask", "process", "pipeline", "train", "inference")
MODELS = ("pix2pix", "unet")
# ------------------------------------------------------------------------------------------- machine

def machine_info() -> dict:
    """CPU, cores, accelerators and library versions: where the figures come from."""
    import keras
    import tensorflow as tf

    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        gpus.append({"name": details.get("device_name", gpu.name),
                     "compute_capability": details.get("compute_capability")})
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus,
            "cpu_16bit_math": sorted(flags & {"avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16"}),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


# ------------------------------------------------------------------------------------------- data

def make_sample(work: Path, count: int, photo_size: int, workers: int | None) -> Path:
    from lipseg_tf.prep import sample
    root = work / "sample"
    if not (root / celebamask.MAPPING_FILE).is_file():
        sample.generate(root, count, seed=0, size=photo_size, workers=workers)
    return root


def _plain_mask(root: Path, image_id: int, out: Path, colors: np.ndarray) -> None:
    """The baseline g_mask: read each part file, paint its class, check the left/right sides as g_mask
    does (masks.swapped_sides: the same work, so the ratio measures the workers and the I/O), write the
    colour mask."""
    from lipseg_tf.prep import masks

    labels = np.zeros((512, 512), np.uint8)
    part_masks = {}
    for class_id, part in enumerate(DEFAULT_PARTS, start=1):
        path = celebamask.part_path(root, image_id, part)
        if path.is_file():
            part_masks[part] = np.asarray(Image.open(path).convert("L")) >= 128
            labels[part_masks[part]] = class_id
    masks.swapped_sides(part_masks)
    Image.fromarray(colors[labels]).save(out / f"{image_id}.png")


def bench_g_mask(root: Path, work: Path, workers: int | None) -> list[Row]:
    from lipseg_tf.prep import masks

    ids = celebamask.find_image_ids(root)
    ours_dir, plain_dir = work / "masks", work / "masks-plain"
    shutil.rmtree(ours_dir, ignore_errors=True)
    ours_s, _ = timed(lambda: masks.run_g_mask(root, ours_dir, workers=workers, force=True))
    plain_dir.mkdir(parents=True, exist_ok=True)
    colors = palette(DEFAULT_PARTS)
    plain_s, _ = timed(lambda: [_plain_mask(root, i, plain_dir, colors) for i in ids])
    same = all(np.array_equal(np.asarray(Image.open(ours_dir / f"{i}.png")),
                              np.asarray(Image.open(plain_dir / f"{i}.png"))) for i in ids[:8])
    n_workers = workers or os.cpu_count()
    return [Row("g_mask", "masks/s", "masks/s", len(ids) / ours_s, len(ids) / plain_s,
                f"g_mask.py, {n_workers} workers", "plain loop, 1 process",
                details={"masks": len(ids), "outputs_identical": same})]


def _plain_pair(job: tuple[Path, Path, Path], size: int) -> None:
    """The baseline process step: read photo and mask, resize, put side by side, write."""
    photo_path, mask_path, out = job
    photo = Image.open(photo_path).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    mask = Image.open(mask_path).convert("RGB").resize((size, size), Image.Resampling.NEAREST)
    Image.fromarray(np.concatenate([np.asarray(photo), np.asarray(mask)], axis=1)).save(out)


def ensure_masks(root: Path, work: Path, workers: int | None) -> Path:
    from lipseg_tf.prep import masks
    if not (work / "masks" / "masks.json").is_file():
        masks.run_g_mask(root, work / "masks", workers=workers)
    return work / "masks"


def bench_process(root: Path, work: Path, size: int, workers: int | None) -> list[Row]:
    from lipseg_tf.prep import pairs

    masks_dir = ensure_masks(root, work, workers)
    ids = celebamask.find_image_ids(root)
    shutil.rmtree(work / "pairs", ignore_errors=True)
    png_s, counts = timed(lambda: pairs.run_process(work / "pairs", masks_dir, data_dir=root, size=size,
                                                     workers=workers, force=True))
    shutil.rmtree(work / "records", ignore_errors=True)
    rec_s, _ = timed(lambda: pairs.run_process(work / "records", masks_dir, data_dir=root, size=size,
                                                workers=workers, output_format="tfrecord", shards=4))
    plain = work / "pairs-plain"
    plain.mkdir(parents=True, exist_ok=True)
    jobs = [(celebamask.image_path(root, i), masks_dir / f"{i}.png", plain / f"{i}.png") for i in ids]
    plain_s, _ = timed(lambda: [_plain_pair(job, size) for job in jobs])
    n, n_workers = len(ids), workers or os.cpu_count()
    return [Row("process", "pairs/s, PNG", "pairs/s", n / png_s, n / plain_s,
                f"process.py, {n_workers} workers", "plain loop, 1 process", details={"pairs": n}),
            Row("process", "pairs/s, TFRecord", "pairs/s", n / rec_s, n / plain_s,
                f"process.py --format tfrecord --shards 4, {n_workers} workers", "plain loop (PNG), 1 process",
                details={"pairs": n})]


def ensure_pairs(root: Path, work: Path, size: int, workers: int | None) -> tuple[Path, Path]:
    from lipseg_tf.prep import pairs
    masks_dir = ensure_masks(root, work, workers)
    if not (work / "pairs" / "pairs.json").is_file():
        pairs.run_process(work / "pairs", masks_dir, data_dir=root, size=size, workers=workers)
    if not (work / "records" / "pairs.json").is_file():
        pairs.run_process(work / "records", masks_dir, data_dir=root, size=size, workers=workers,
                          output_format="tfrecord", shards=4)
    return work / "pairs", work / "records"


# ------------------------------------------------------------------------------------------- input pipeline

def naive_dataset(files, colors, flip_perm, image_size: int, scale_size: int, batch_size: int, seed: int = 0):
    """pipeline.make_dataset's training pipeline (same decode, resize, jitter, flip) with none of its speed-ups:
    no parallel map, no cache, no prefetch."""
    import tensorflow as tf

    from lipseg_tf.train import pipeline

    colors = tf.constant(np.asarray(colors, np.uint8))
    flip_perm = tf.constant(np.asarray(flip_perm, np.int32))
    ds = tf.data.Dataset.from_tensor_slices([str(p) for p in files])
    ds = ds.map(lambda p: pipeline.decode_pair(p, colors))
    ds = ds.shuffle(len(files), seed=seed).repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        lambda pair, s: pipeline.jitter(*pipeline.resize_pair(pair[0], pair[1], scale_size), s, image_size, True,
                                        flip_perm))
    ds = ds.map(lambda im, lb: (im / 127.5 - 1.0, tf.cast(lb[..., 0], tf.int32)))
    return ds.batch(batch_size, drop_remainder=True)


def _delivery_rate(dataset, steps: int, batch_size: int) -> float:
    """Pairs/s a consumer that does nothing else gets from dataset over `steps` batches."""
    iterator = iter(dataset)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * batch_size / (time.perf_counter() - start)


def bench_pipeline(pairs_dir: Path, records_dir: Path, size: int, batch_size: int, epochs: int) -> list[Row]:
    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.train import pipeline

    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    scale = round(size * 286 / 256)
    rows = []
    png = pipeline.find_pairs(pairs_dir, "train")
    batch_size = max(1, min(batch_size, png.count))
    steps = max(1, epochs * png.count // batch_size)
    naive = _delivery_rate(naive_dataset(png.files, classes.colors, classes.flip_perm, size, scale, batch_size),
                           steps, batch_size)
    for label, source in (("PNG", png), ("TFRecord", pipeline.find_pairs(records_dir, "train"))):
        ours = _delivery_rate(pipeline.make_dataset(source, classes.colors, classes.flip_perm, training=True,
                                                    image_size=size, scale_size=scale, batch_size=batch_size,
                                                    repeat=True), steps, batch_size)
        rows.append(Row("pipeline", f"AB pairs/s delivered, {label}", "pairs/s", ours, naive,
                        f"make_dataset: parallel decode, cache, prefetch ({label})",
                        "no parallel map, no cache, no prefetch (PNG)",
                        details={"pairs": png.count, "batch_size": batch_size, "epochs": epochs}))
    return rows


# ------------------------------------------------------------------------------------------- training

def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table: measure, ours, baseline, speed-up, and what each side was."""
    lines = ["| section | measure | unit | ours | baseline | speed-up | ours is | baseline is |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio else ("skipped: " + row.skipped if row.skipped else "-")
        note = f" ({row.note})" if row.note else ""
        lines.append(f"| {row.section} | {row.name} | {row.unit} | {_fmt(row.ours)} | {_fmt(row.baseline)} | "
                     f"{ratio} | {row.ours_setup}{note} | {row.baseline_setup} |")
    return "\n".join(lines)


def _csv(text: str, valid: Sequence[str] | None, flag: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UserError(f"{flag}: expected a comma-separated list, got {text!r}")
    if valid is not None:
        unknown = [item for item in items if item not in valid]
        if unknown:
            raise UserError(f"{flag}: unknown {', '.join(unknown)}; valid: {', '.join(valid)}")
    return items


def _positive_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(item) for item in _csv(text, None, flag)]
    except ValueError:
        raise UserError(f"{flag}: expected whole numbers like 1,16, got {text!r}") from None
    if any(v < 1 for v in values):
        raise UserError(f"{flag}: expected numbers >= 1, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lipseg_tf.tools.bench", description=__doc__.split("\n\n")[0],
        epilog="On a GPU: python -m lipseg_tf.tools.bench --count 512 --size 256 --batch-sizes 1,16 "
               "--json bench-gpu.json",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--json", default="bench.json", help="where to write the results as JSON")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"which to run, of {','.join(SECTIONS)}")
    parser.add_argument("--count", type=int, default=64,
                        help="synthetic faces to generate (the data of every section)")
    parser.add_argument("--photo-size", type=int, default=512,
                        help="side of the synthetic photos (annotations are 512)")
    parser.add_argument("--size", type=int, default=256, help="pair size = crop the networks see (a power of two)")
    parser.add_argument("--workers", type=int, default=None, help="processes for g_mask/process (default every core)")
    parser.add_argument("--pipeline-batch", type=int, default=16, help="batch size of the input pipeline section")
    parser.add_argument("--pipeline-epochs", type=int, default=3, help="passes over the pairs the pipeline delivers")
    parser.add_argument("--models", default=",".join(MODELS), help="networks for train and inference")
    parser.add_argument("--ngf", type=int, default=None,
                        help="network width for train and inference (default the trainers': pix2pix 64, U-Net 32)")
    parser.add_argument("--batch-sizes", default="1,16", help="training batch sizes")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="training precisions")
    parser.add_argument("--jit", default="off,on", help="training without (off) and/or with (on) XLA")
    parser.add_argument("--train-steps", type=int, default=5,
                        help="timed training steps per setting, after one warm-up")
    parser.add_argument("--step-budget", type=float, default=60.0,
                        help="seconds of timed steps per setting; at least one step is timed")
    parser.add_argument("--inference-runs", type=int, default=20, help="timed calls at batch 1")
    parser.add_argument("--inference-batch", type=int, default=32, help="batch of the inference throughput row")
    parser.add_argument("--workdir", default=None, help="keep the generated data here (default: a temporary folder)")
    return parser


def run(args: argparse.Namespace) -> dict:
    """Run the chosen sections; returns the JSON document (also written to args.json)."""
    sections = _csv(args.sections, SECTIONS, "--sections")
    models = _csv(args.models, MODELS, "--models")
    precisions = _csv(args.precisions, PRECISIONS, "--precisions")
    jits = [j == "on" for j in _csv(args.jit, ("off", "on"), "--jit")]
    batch_sizes = _positive_ints(args.batch_sizes, "--batch-sizes")
    if args.size < 32 or args.size & (args.size - 1):
        raise UserError(f"--size: expected a power of two >= 32, got {args.size}")
    if args.count < 3:
        raise UserError(f"--count: expected at least 3 faces (one per split), got {args.count}")
    info = machine_info()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="lipseg-bench-"))
    rows: list[Row] = []
    timings = {}
    start = time.perf_counter()
    try:
        root = make_sample(work, args.count, args.photo_size, args.workers)
        for section in sections:
            log.info("bench: %s", section)
            section_start = time.perf_counter()
            if section == "g_mask":
                rows += bench_g_mask(root, work, args.workers)
            elif section == "process":
                rows += bench_process(root, work, args.size, args.workers)
            elif section == "pipeline":
                pairs_dir, records_dir = ensure_pairs(root, work, args.size, args.workers)
                rows += bench_pipeline(pairs_dir, records_dir, args.size, args.pipeline_batch, args.pipeline_epochs)
            elif section == "train":
                pairs_dir, _ = ensure_pairs(root, work, args.size, args.workers)
                rows += bench_train(pairs_dir, args.size, batch_sizes, precisions, jits, models, args.ngf,
                                    args.train_steps, args.step_budget, info)
            else:
                pairs_dir, _ = ensure_pairs(root, work, args.size, args.workers)
                rows += bench_inference(pairs_dir, work, args.size, models, args.ngf, args.inference_runs,
                                        args.inference_batch)
            timings[section] = time.perf_counter() - section_start
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    info["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    document = {"machine": info, "settings": settings, "seconds": {**timings, "total": time.perf_counter() - start},
                "rows": [row.to_json() for row in rows]}
    write_text(args.json, json.dumps(document, indent=2) + "\n")
    print(format_table(rows))
    gpu = ", ".join(g["name"] for g in info["gpus"]) or "no GPU"
    print(f"\n{info['cpu']} ({info['cores']} cores), {gpu}; TensorFlow {info['tensorflow']}, Keras {info['keras']}; "
          f"{args.count} synthetic faces, {args.size} px; total {document['seconds']['total']:.0f} s -> {args.json}")
    return document


def main(argv: Sequence[str] | None = None) -> int:
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    common.setup_logging()
    sys.exit(common.run(main))
