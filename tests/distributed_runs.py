"""Runs for tests/test_distribute.py that need a process of their own; each writes a JSON report.

    python tests/distributed_runs.py mirrored REPORT PAIRS RUNS
        Splits the CPU into two logical devices (possible only before TensorFlow starts), then compares the
        first steps under MirroredStrategy over both with the default strategy at the same global batch,
        for the pix2pix step (with a class-weighted L1) and the U-Net's fit; then trains both models
        through the command line under --strategy mirrored with --deterministic, pix2pix resuming once
        (with --l1_balance and --decay_epochs).
    python tests/distributed_runs.py worker REPORT PAIRS RUNS     (with TF_CONFIG set)
        One worker of a MultiWorkerMirroredStrategy cluster: trains pix2pix for 2 steps, resumes it to 3,
        then the U-Net for one epoch, all through train.run.train. Only the chief writes REPORT.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GLOBAL_BATCH = 4


def checkpoints(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*.index"))


def fixed_batch(seed: int):
    import numpy as np
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (GLOBAL_BATCH, 32, 32, 3)).astype("float32")
    return images, rng.uniform(-0.8, 0.8, (GLOBAL_BATCH, 32, 32, 3)).astype("float32"), \
        rng.integers(0, 5, (GLOBAL_BATCH, 32, 32)).astype("int32")


def distributed(strategy, *arrays):
    """The same global batch of arrays, split over the replicas, forever."""
    import tensorflow as tf

    from lipseg_tf.train import distribute

    def make(batch_size, context):
        ds = tf.data.Dataset.from_tensor_slices(arrays)
        return ds.shard(context.num_input_pipelines, context.input_pipeline_id).batch(batch_size).repeat()
    return distribute.distribute_dataset(strategy, GLOBAL_BATCH // strategy.num_replicas_in_sync, make)


def gan_steps(strategy) -> dict:
    import keras
    import numpy as np

    from lipseg_tf.train import pix2pix
    from lipseg_tf.train.config import Pix2PixConfig

    keras.utils.set_random_seed(0)
    # Dropout draws its masks per replica, so no two strategies can agree with it on: off for the comparison.
    model = pix2pix.Pix2Pix(Pix2PixConfig(crop_size=32, ngf=4, ndf=4, lr=1e-3, eager=True, dropout=0.0), strategy)
    images, targets, labels = fixed_batch(1)
    # with class-weighted L1 (--l1_balance), so the per-pixel weights are split and averaged alike
    weights = pix2pix.l1_pixel_weights(labels, np.array([0.7, 20.0, 20.0, 15.0, 15.0], np.float32)).numpy()
    batches = iter(distributed(strategy, images, targets, weights))
    losses = [{k: float(v) for k, v in model.train_step(*next(batches)).items()} for _ in range(2)]
    weights = [float(np.sum(v.numpy())) for v in model.generator.trainable_variables[:6]]
    return {"losses": losses, "generator_weights": weights, "replicas": strategy.num_replicas_in_sync}


def unet_steps(strategy) -> dict:
    import keras
    import numpy as np

    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.prep.parts import DEFAULT_PARTS
    from lipseg_tf.train import distribute, unet
    from lipseg_tf.train.config import UnetConfig

    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = distribute.synchronize_batchnorm(
            unet.build(UnetConfig(crop_size=32, ngf=4, depth=2), classes), strategy)
        model.compile(keras.optimizers.Adam(1e-2), loss=unet.make_loss(classes.num_classes, 1.0),
                      run_eagerly=True)
    images, _, labels = fixed_batch(2)
    history = model.fit(distributed(strategy, images, labels), steps_per_epoch=1, epochs=2, verbose=0).history
    weights = [float(np.sum(v.numpy())) for v in model.trainable_variables[:6]]
    return {"losses": history["loss"], "weights": weights, "replicas": strategy.num_replicas_in_sync}


def mirrored(report: Path, pairs: Path, runs: Path) -> None:
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from lipseg_tf.cli import runner
    from lipseg_tf.train.run import train

    result = {}
    mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name, steps in (("gan", gan_steps), ("unet", unet_steps)):
        result[name] = {"default": steps(tf.distribute.get_strategy()), "mirrored": steps(mirrored_strategy)}
    # Both trainers under --strategy mirrored over the two devices, resuming once. (MirroredStrategy()
    # itself would take only the one CPU: it spreads over GPUs.)
    common = ["--mode", "train", "--input_dir", str(pairs), "--crop_size", "32", "--ngf", "4", "--batch_size", "2",
              "--strategy", "mirrored", "--deterministic", "--seed", "3", "--eager"]
    for model, extra, stops in (("pix2pix", ["--ndf", "4", "--summary_freq", "1", "--l1_balance", "1",
                                             "--decay_epochs", "1"], ("2", "3")),
                                ("unet", ["--depth", "2"], ("2",))):
        run_dir = runs / model
        result[model + "_runs"] = []
        for max_steps in stops:
            args = runner.build_parser(model).parse_args(
                common + extra + ["--output_dir", str(run_dir), "--max_steps", max_steps])
            code = train(runner.config_from_args(model, args), mirrored_strategy)
            result[model + "_runs"].append({"code": code, "checkpoints": checkpoints(run_dir)})
        result[model + "_options"] = json.loads((run_dir / "options.json").read_text())
    report.write_text(json.dumps(result))


def worker(report: Path, pairs: Path, runs: Path) -> None:
    from lipseg_tf.cli import runner
    from lipseg_tf.train import distribute
    from lipseg_tf.train.run import train

    strategy = distribute.make_strategy("multiworker")   # before anything else runs in TensorFlow
    chief = distribute.is_chief(strategy)
    common = ["--mode", "train", "--input_dir", str(pairs), "--crop_size", "32", "--ngf", "4", "--batch_size", "2",
              "--strategy", "multiworker", "--seed", "3", "--eager"]
    result = {"replicas": strategy.num_replicas_in_sync, "pix2pix": []}
    for max_steps in ("2", "3"):
        args = runner.build_parser("pix2pix").parse_args(
            common + ["--output_dir", str(runs / "pix2pix"), "--ndf", "4", "--max_steps", max_steps])
        code = train(runner.config_from_args("pix2pix", args), strategy)
        result["pix2pix"].append({"code": code, "checkpoints": checkpoints(runs / "pix2pix")})
    args = runner.build_parser("unet").parse_args(common + ["--output_dir", str(runs / "unet"), "--depth", "2",
                                                            "--max_steps", "2"])
    code = train(runner.config_from_args("unet", args), strategy)
    result["unet"] = {"code": code, "checkpoints": checkpoints(runs / "unet")}
    if chief:
        report.write_text(json.dumps(result))


if __name__ == "__main__":
    from lipseg_tf.cli.common import setup_logging
    setup_logging()
    mode, report_path, pairs_dir, runs_dir = sys.argv[1:5]
    {"mirrored": mirrored, "worker": worker}[mode](Path(report_path), Path(pairs_dir), Path(runs_dir))
