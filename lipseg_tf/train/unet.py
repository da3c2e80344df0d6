"""U-Net segmenter training with Keras fit: photo -> softmax over background + parts.

Loss = class-weighted cross-entropy + dice_weight * soft Dice over the foreground classes. The
background covers ~98 % of a face photo: Dice weighs each small part equally, the cross-entropy's
class weights (balancing_weights) keep a rare part's pixels from being outvoted, and the softmax
starts at the class frequencies (set_prior_bias), so the first steps go into finding the parts.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.train import distribute, fitloop, networks, pipeline, precision
from lipseg_tf.train.balance import balancing_weights, class_frequencies
from lipseg_tf.train.checkpoints import CHECKPOINT_DIR, latest_checkpoint, resume_checkpoint
from lipseg_tf.train.config import RunConfig

log = logging.getLogger("lipseg_tf")


def soft_dice_loss(labels, probabilities, num_classes: int, smooth: float = 1.0):
    """Per-image 1 - mean soft Dice over the foreground classes; (B,) float32."""
    onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes)[..., 1:]
    probabilities = tf.cast(probabilities, tf.float32)[..., 1:]
    intersection = tf.reduce_sum(onehot * probabilities, axis=(1, 2))
    total = tf.reduce_sum(onehot, axis=(1, 2)) + tf.reduce_sum(probabilities, axis=(1, 2))
    dice = (2.0 * intersection + smooth) / (total + smooth)
    return 1.0 - tf.reduce_mean(dice, axis=-1)


def make_loss(num_classes: int, dice_weight: float, class_weights=None):
    """Keras loss(labels, probabilities) -> (B,) cross-entropy + dice_weight * Dice.

    class_weights: (num_classes,) weight of each class's pixels in the cross-entropy; None for all 1.
    """
    weights = None if class_weights is None else tf.constant(np.asarray(class_weights, np.float32))

    def ce_dice(labels, probabilities):
        ce = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        if weights is not None:
            ce = ce * tf.gather(weights, tf.cast(labels, tf.int32))
        return tf.reduce_mean(ce, axis=(1, 2)) + dice_weight * soft_dice_loss(labels, probabilities, num_classes)
    return ce_dice


def build(config: RunConfig, classes: ClassSpec) -> keras.Model:
    return networks.build_unet(classes.num_classes, config.ngf, config.depth, config.image_size)


def set_prior_bias(model: keras.Model, frequencies: np.ndarray, floor: float = 1e-4) -> None:
    """Start the softmax at the class frequencies: logits_conv's bias = log(frequency).

    With zero biases a fresh net predicts the classes about equally often, and Adam, whose steps are
    ~lr per weight, spends hundreds of steps learning that ~98 % of a face is background. Measured on
    the 128-px demo sample (ngf 8, lr 3e-3, seed 0): zero biases left cross-entropy at 0.50 after 240
    steps (the constant prior alone scores 0.10) and the run ended predicting background everywhere;
    with this start, Dice loss fell from 0.99 to 0.43 in 150 steps and the run reached mean F1 0.90.
    RetinaNet starts its rare classes at their prior for the same reason.
    """
    bias = np.log(np.maximum(frequencies, floor)).astype(np.float32)
    model.get_layer("logits_conv").bias.assign(bias)
    log.info("unet: output bias set to the class frequencies of the first training masks: %s",
             ", ".join(f"{f:.4f}" for f in frequencies))


class _SaveCheckpoint(keras.callbacks.Callback):
    """Saves model, optimizer and epoch through a CheckpointManager after every epoch."""

    def __init__(self, manager: tf.train.CheckpointManager, epoch: tf.Variable):
        super().__init__()
        self.manager = manager
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)


def train(config: RunConfig, classes: ClassSpec, train_files, val_files, strategy: tf.distribute.Strategy | None = None,
          write_dir: Path | None = None) -> dict:
    """Train with fit (resuming from the latest checkpoint in the run folder); returns the last logs.

    train_files, val_files: pipeline.PairSource or AB paths (val_files may be None). The model is built and
    compiled inside strategy.scope() under the precision policy config.precision; write_dir is where
    this process writes checkpoints and logs (distribute.write_dir), default the run folder.
    """
    run_dir = Path(config.output_dir)
    write_dir = Path(write_dir or run_dir)
    strategy = strategy or tf.distribute.get_strategy()
    source = pipeline.as_source(train_files)
    keras.utils.set_random_seed(config.seed)  # weights, dropout and shuffling all follow --seed
    with strategy.scope(), precision.policy(config.precision):
        model = distribute.synchronize_batchnorm(build(config, classes), strategy)
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    steps_per_epoch = max(1, source.count // global_batch)
    if config.max_steps:
        steps_per_epoch = min(steps_per_epoch, config.max_steps)
    # Counted on every start (resume included): the loss's class weights come from them too.
    frequencies = class_frequencies(source, classes, config)
    class_weights = balancing_weights(frequencies, config.class_balance) if config.class_balance else None
    # The learning rate decays to 5 % along a cosine over the planned steps: big early updates, and
    # a settled model at the end rather than one caught mid-oscillation.
    planned_steps = config.max_steps or steps_per_epoch * (config.max_epochs or 1)
    with strategy.scope():
        schedule = keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=planned_steps, alpha=0.05)
        optimizer = keras.optimizers.Adam(schedule, beta_1=config.beta1)
        # Under mixed_float16 fit updates through a LossScaleOptimizer; checkpoints hold the Adam inside.
        update = precision.scaled_optimizer(optimizer, config.precision)
        model.compile(optimizer=update, loss=make_loss(classes.num_classes, config.dice_weight, class_weights),
                      metrics=["accuracy"], run_eagerly=config.eager,
                      jit_compile=config.jit and not config.eager)
        update.build(model.trainable_variables)  # so a restore fills the slots instead of deferring
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch)
    manager = tf.train.CheckpointManager(checkpoint, str(write_dir / CHECKPOINT_DIR), config.max_checkpoints)
    resume_from = resume_checkpoint(config.checkpoint, run_dir)
    if resume_from:
        checkpoint.restore(resume_from).expect_partial()
        log.info("resumed from %s at epoch %d", resume_from, int(epoch.numpy()))
    else:
        set_prior_bias(model, frequencies)

    if config.max_steps:
        # Whole epochs, as many as the steps still to do need.
        remaining = config.max_steps - int(optimizer.iterations.numpy())
        epochs = int(epoch.numpy()) + max(0, math.ceil(remaining / steps_per_epoch))
    else:
        epochs = config.max_epochs or 1
    if int(epoch.numpy()) >= epochs:
        log.info("already trained %d epochs (%d steps); nothing to do", int(epoch.numpy()),
                 int(optimizer.iterations.numpy()))
        return {}
    deterministic = True if config.deterministic else None

    custom_loop = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    # Keras's fit fails on a last partial batch split over several replicas (one replica gets no example):
    # there, validation keeps whole global batches only.
    whole_val_batches = strategy.num_replicas_in_sync > 1 and not custom_loop

    def dataset_of(files, training: bool):
        """The per-replica dataset function of files (distribute.distribute_dataset)."""
        return lambda batch_size, context: pipeline.make_dataset(
            files, classes.colors, classes.flip_perm, training=training, image_size=config.image_size,
            scale_size=config.scale_size, batch_size=batch_size, flip=config.flip, seed=config.seed,
            cache=config.cache, repeat=training, deterministic=deterministic, input_context=context,
            drop_remainder=training or whole_val_batches)

    train_ds = distribute.distribute_dataset(strategy, config.batch_size, dataset_of(source, True))
    val_ds = None
    val_source = pipeline.as_source(val_files) if val_files else None
    if val_source and whole_val_batches and val_source.count < global_batch:
        log.warning("no validation: %d validation pairs make no whole global batch of %d",
                    val_source.count, global_batch)
    elif val_source:
        val_ds = distribute.distribute_dataset(strategy, config.batch_size, dataset_of(val_source, False))
    callbacks = [
        _SaveCheckpoint(manager, epoch),   # on every worker: all take part in saving, the chief's is kept
        keras.callbacks.TensorBoard(str(write_dir / "logs"), update_freq="epoch"),
        keras.callbacks.CSVLogger(str(write_dir / "log.csv"), append=True),
    ]
    verbose = (1 if sys.stderr.isatty() else 2) if distribute.is_chief(strategy) else 0
    if custom_loop:
        # Keras 3's fit fails under this strategy (keras-team/keras#20585): the same loop, by hand.
        history = fitloop.fit(model, strategy, train_ds, epochs=epochs, initial_epoch=int(epoch.numpy()),
                              steps_per_epoch=steps_per_epoch, validation_data=val_ds, callbacks=callbacks,
                              verbose=bool(verbose), eager=config.eager)
    else:
        history = model.fit(train_ds, epochs=epochs, initial_epoch=int(epoch.numpy()),
                            steps_per_epoch=steps_per_epoch, validation_data=val_ds, callbacks=callbacks,
                            verbose=verbose).history
    last = {k: float(v[-1]) for k, v in history.items()}
    log.info("unet: %d epochs; %s; checkpoint %s", int(epoch.numpy()),
             ", ".join(f"{k} {v:.4f}" for k, v in last.items()), manager.latest_checkpoint)
    return last


def load_model(config: RunConfig, classes: ClassSpec, run_dir: Path) -> keras.Model:
    """The trained U-Net of a run folder (its latest checkpoint)."""
    model = build(config, classes)
    tf.train.Checkpoint(model=model).restore(latest_checkpoint(run_dir)).expect_partial()
    return model
