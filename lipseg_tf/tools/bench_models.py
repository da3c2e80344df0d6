"""python -m lipseg_tf.tools.bench, its training and inference sections: one training step of the trainers'
own code per precision, batch and XLA setting, and the exported SavedModel against the Keras network called
eagerly. Each row beside its baseline, measured in the same run (tools/bench.py runs them and prints the table).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from lipseg_tf.prep.parts import DEFAULT_PARTS

log = logging.getLogger("lipseg_tf")

MODEL_WIDTHS = {"pix2pix": 64, "unet": 32}   # the trainers' default --ngf
ROW_KEYS = ("section", "name", "unit", "ours", "baseline", "ratio", "ours_setup", "baseline_setup", "skipped",
            "note", "details")


@dataclasses.dataclass
class Row:
    """One line of the table: our figure, the baseline's, and the speed-up (> 1: ours is faster)."""

    section: str
    name: str
    unit: str
    ours: float | None
    baseline: float | None
    ours_setup: str
    baseline_setup: str
    higher_is_better: bool = True
    skipped: str | None = None          # why the row was not measured
    note: str | None = None
    details: dict = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.ours or not self.baseline:
            return None
        return self.ours / self.baseline if self.higher_is_better else self.baseline / self.ours

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["ratio"] = self.ratio
        return {key: data[key] for key in ROW_KEYS}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result



def _train_step_fn(model_name: str, size: int, ngf: int, batch_size: int, precision_name: str, jit: bool,
                   batch) -> Callable[[], float]:
    """One training step of the trainers' own code at these settings, as a function returning a loss."""
    import keras
    import tensorflow as tf

    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.train import pix2pix, precision, unet
    from lipseg_tf.train.config import Pix2PixConfig, UnetConfig

    images, labels = batch
    images, labels = images[:batch_size], labels[:batch_size]
    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    keras.utils.set_random_seed(0)
    if model_name == "pix2pix":
        config = Pix2PixConfig(crop_size=size, ngf=ngf, ndf=ngf, precision=precision_name, jit=jit)
        model = pix2pix.Pix2Pix(config)
        inputs, targets = pix2pix.to_model_io(images, labels, classes, "AtoB")
        return lambda: float(model.train_step(inputs, targets)["gen_total"])
    config = UnetConfig(crop_size=size, ngf=ngf, depth=4 if size >= 32 else 2, precision=precision_name)
    with precision.policy(precision_name):
        network = unet.build(config, classes)
    optimizer = precision.scaled_optimizer(keras.optimizers.Adam(1e-3), precision_name)
    network.compile(optimizer=optimizer, loss=unet.make_loss(classes.num_classes, 1.0), jit_compile=jit)
    images, labels = tf.constant(images), tf.constant(labels)
    return lambda: float(np.asarray(network.train_on_batch(images, labels)).ravel()[0])


def _measure_steps(step: Callable[[], float], max_steps: int, budget_s: float) -> dict:
    """Compile/warm-up step, then up to max_steps timed steps (at least one) within budget_s."""
    first_s, _ = timed(step)
    times = []
    while len(times) < max_steps and (not times or sum(times) < budget_s):
        elapsed, _ = timed(step)
        times.append(elapsed)
    return {"first_step_s": first_s, "steps": len(times), "step_s": float(np.median(times))}


def _precision_note(precision_name: str, info: dict) -> str | None:
    if info["gpus"] or precision_name == "float32":
        return None
    unit = "fp16" if precision_name == "mixed_float16" else "bf16"
    if any(unit in flag for flag in info["cpu_16bit_math"]):
        return None
    missing = "no avx512_fp16/amx_fp16" if unit == "fp16" else "no avx512_bf16/amx_bf16"
    return f"this CPU has no {unit} math units ({missing}): emulated"


def bench_train(pairs_dir: Path, size: int, batch_sizes: Sequence[int], precisions: Sequence[str],
                jits: Sequence[bool], models: Sequence[str], ngf: int | None, max_steps: int, budget_s: float,
                info: dict) -> list[Row]:
    import tensorflow as tf

    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.train import pipeline

    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    source = pipeline.find_pairs(pairs_dir, "train")
    biggest = max(batch_sizes)
    # The same real pairs for every configuration; repeated when the sample is smaller than a batch.
    batch = next(iter(pipeline.make_dataset(source, classes.colors, classes.flip_perm, training=True, image_size=size,
                                            scale_size=round(size * 286 / 256), batch_size=biggest, repeat=True)))
    batch = tuple(t.numpy() for t in batch)
    rows = []
    for model_name in models:
        width = ngf or MODEL_WIDTHS[model_name]
        tutorial = None
        results = {}
        for batch_size in batch_sizes:
            baseline, baseline_details = None, {}
            for precision_name in precisions:
                for jit in jits:
                    setup = f"{precision_name}{', XLA' if jit else ''}"
                    log.info("train: %s %d px, batch %d, %s", model_name, size, batch_size, setup)
                    try:
                        measured = _measure_steps(_train_step_fn(model_name, size, width, batch_size, precision_name,
                                                                 jit, batch), max_steps, budget_s)
                    except (tf.errors.OpError, ValueError, NotImplementedError) as err:
                        message = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                        rows.append(Row("train", f"{model_name} {size}px batch {batch_size}: {setup}", "images/s",
                                        None, None, setup, "float32", skipped=f"not supported here: {message}"))
                        continue
                    images_per_s = batch_size / measured["step_s"]
                    results[(batch_size, precision_name, jit)] = images_per_s
                    if precision_name == "float32" and not jit:
                        baseline, baseline_details = images_per_s, measured
                        if batch_size == 1:
                            tutorial = images_per_s
                        continue
                    rows.append(Row("train", f"{model_name} {size}px batch {batch_size}: {setup}", "images/s",
                                    images_per_s, baseline, setup, "float32, no XLA, same batch",
                                    note=_precision_note(precision_name, info),
                                    details={**measured, "ngf": width}))
            if baseline is not None:
                rows.append(Row("train", f"{model_name} {size}px batch {batch_size}: float32", "images/s",
                                baseline, tutorial, "float32, no XLA", "float32, no XLA, batch 1",
                                details={**baseline_details, "ngf": width}))
        if results and tutorial:
            best = max(results, key=results.get)
            rows.append(Row("train", f"{model_name} {size}px: best measured setting", "images/s", results[best],
                            tutorial, f"batch {best[0]}, {best[1]}{', XLA' if best[2] else ''}",
                            "float32, batch 1, no XLA (the pix2pix tutorial's setting)", details={"ngf": width}))
    # Rows read in order: model, batch, setting.
    return rows


# ------------------------------------------------------------------------------------------- inference

def bench_inference(pairs_dir: Path, work: Path, size: int, models: Sequence[str], ngf: int | None, runs: int,
                    batch_size: int) -> list[Row]:
    import keras
    import tensorflow as tf

    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.serve import savedmodel
    from lipseg_tf.train import networks

    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    photos = np.stack([np.asarray(Image.open(p))[:, :size] for p in sorted((pairs_dir / "test").glob("*.png"))
                       + sorted((pairs_dir / "train").glob("*.png"))][:batch_size])
    photos = np.concatenate([photos] * (-(-batch_size // len(photos))))[:batch_size]
    rows = []
    for model_name in models:
        keras.utils.set_random_seed(0)
        width = ngf or MODEL_WIDTHS[model_name]
        if model_name == "pix2pix":
            network = networks.build_generator(size, width)
            segmenter = savedmodel.Segmenter(network, size, classes, output="image")
        else:
            network = networks.build_unet(classes.num_classes, width, 4 if size >= 32 else 2, size)
            segmenter = savedmodel.Segmenter(network, size, classes, output="probabilities")
        out_dir = work / "export" / model_name
        savedmodel.export(segmenter, classes, out_dir)
        serve = tf.saved_model.load(str(out_dir)).signatures["serving_default"]

        def saved_model(x):
            return serve(images=tf.constant(x))["labels"].numpy()

        def eager_keras(x):
            # No export: normalise, run the Keras network eagerly, decode, as a script would.
            images = tf.image.resize(tf.cast(x, tf.float32), (size, size), antialias=True) / 127.5 - 1.0
            return tf.argmax(segmenter.probabilities_at_model_size(images), axis=-1).numpy()

        latencies = {}
        for name, fn in (("ours", saved_model), ("baseline", eager_keras)):
            fn(photos[:1])
            fn(photos[:1])
            times = [timed(lambda: fn(photos[:1]))[0] * 1000 for _ in range(runs)]
            fn(photos)
            batch_times = [timed(lambda: fn(photos))[0] for _ in range(max(1, runs // 4))]
            latencies[name] = (np.percentile(times, 50), np.percentile(times, 95),
                               batch_size / float(np.median(batch_times)))
        ours, base = latencies["ours"], latencies["baseline"]
        setup = f"SavedModel, uint8 in, labels out ({model_name}, ngf {width})"
        baseline_setup = "same Keras network called eagerly"
        for index, (name, unit) in enumerate((("latency p50, batch 1", "ms"), ("latency p95, batch 1", "ms"))):
            rows.append(Row("inference", f"{model_name} {size}px {name}", unit, ours[index], base[index], setup,
                            baseline_setup, higher_is_better=False, details={"runs": runs}))
        rows.append(Row("inference", f"{model_name} {size}px images/s, batch {batch_size}", "images/s", ours[2],
                        base[2], setup, baseline_setup, details={"runs": max(1, runs // 4)}))
    return rows


# ------------------------------------------------------------------------------------------- report
