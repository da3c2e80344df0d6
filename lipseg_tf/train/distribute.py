"""Training on several devices or machines with TensorFlow's own tf.distribute.

    --strategy default      one device: TensorFlow's default strategy
    --strategy mirrored     MirroredStrategy: one replica per GPU of this machine (the CPU when none)
    --strategy multiworker  MultiWorkerMirroredStrategy: every machine named in the TF_CONFIG variable
                            runs the same command; gradients are all-reduced across all their GPUs

--batch_size is per replica: the global batch is batch_size * replicas. Each replica's loss is divided
by the global batch (tf.nn.compute_average_loss), and the optimizer sums the replicas' gradients, so
a step is the same as one step on one device at the global batch. BatchNorm layers synchronise their
batch statistics across replicas for the same reason. Each input pipeline (one per worker) reads its
own share of the pairs.

Only the chief writes the run folder (checkpoints, TensorBoard logs, samples, options.json). Every
worker must take part in saving a checkpoint, so the others save into `workertemp_<task id>` inside the
run folder, which is deleted when training ends (the recipe of TensorFlow's multi-worker guide).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import keras
import tensorflow as tf

from lipseg_tf.errors import UserError
from lipseg_tf.train.config import STRATEGIES

log = logging.getLogger("lipseg_tf")

TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')


def check_tf_config(text: str | None) -> dict | None:
    """The parsed TF_CONFIG of a multi-worker run, or None when unset; UserError when malformed."""
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"TF_CONFIG: not valid JSON ({err}); expected e.g. {TF_CONFIG_EXAMPLE}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not all(isinstance(v, list) and v for v in cluster.values()) \
            or not ({"worker", "chief"} & set(cluster)):
        raise UserError(f"TF_CONFIG: expected a \"cluster\" with a \"worker\" list of host:port addresses, "
                        f"e.g. {TF_CONFIG_EXAMPLE}")
    if not isinstance(task, dict) or task.get("type") not in cluster \
            or not isinstance(task.get("index"), int) or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise UserError(f"TF_CONFIG: expected a \"task\" naming this machine's place in the cluster "
                        f"({', '.join(sorted(cluster))}), e.g. {TF_CONFIG_EXAMPLE}")
    return config


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy of --strategy.

    MultiWorkerMirroredStrategy must be created before TensorFlow runs anything else in the process
    (it configures the collective ops at start-up): create the strategy first.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    elif name == "multiworker":
        if check_tf_config(os.environ.get("TF_CONFIG")) is None:
            log.warning("--strategy multiworker without TF_CONFIG: training as a single worker")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        raise UserError(f"--strategy: unknown strategy {name!r}, valid: {', '.join(STRATEGIES)}")
    log.info("%s strategy: %d replicas", name, strategy.num_replicas_in_sync)
    return strategy


def task(strategy: tf.distribute.Strategy) -> tuple[str | None, int]:
    """(task type, index) of this process in a multi-worker cluster; (None, 0) on one machine."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one process that writes the run folder: the `chief` task, else worker 0."""
    task_type, task_id = task(strategy)
    if task_type is None:
        return True
    if "chief" in strategy.cluster_resolver.cluster_spec().jobs:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


@contextlib.contextmanager
def write_dir(run_dir: str | Path, strategy: tf.distribute.Strategy) -> Iterator[Path]:
    """The folder this process writes to: the run folder on the chief; a temporary one elsewhere.

    A non-chief worker gets `<run_dir>/workertemp_<task id>`, deleted when the block ends.
    """
    run_dir = Path(run_dir)
    if is_chief(strategy):
        yield run_dir
        return
    task_type, task_id = task(strategy)
    temp = run_dir / f"workertemp_{task_type}{task_id}"
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def synchronize_batchnorm(model: keras.Model, strategy: tf.distribute.Strategy) -> keras.Model:
    """Make every BatchNormalization layer of model use the global batch's statistics across replicas.

    With one replica nothing changes. Keras reads the layer's `synchronized` flag when it runs, and the
    flag adds no variable, so checkpoints stay interchangeable between strategies.
    """
    if strategy.num_replicas_in_sync > 1:
        for layer in model._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    return model


def distribute_dataset(strategy: tf.distribute.Strategy, batch_size: int,
                       make_dataset: Callable[[int, tf.distribute.InputContext], tf.data.Dataset]):
    """The dataset of each replica: make_dataset(per-replica batch, input context), one per worker.

    batch_size is the per-replica batch; make_dataset shards its input by the context's
    input_pipeline_id. Under the default strategy this is make_dataset's plain dataset.
    """
    global_batch = batch_size * strategy.num_replicas_in_sync
    return strategy.distribute_datasets_from_function(
        lambda context: make_dataset(context.get_per_replica_batch_size(global_batch), context))
