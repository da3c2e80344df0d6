"""U-Net segmenter training with Keras fit: photo -> softmax over background + parts.

Loss = class-weighted cross-entropy + dice_weight * soft Dice over the foreground classes. The
background covers ~98 % of a face photo: Dice weighs each small part equally, the cross-entropy's
class weights (balancing_weights) keep a rare part's pixels from being outvoted, and the softmax
starts at the class frequencies (set_prior_bias), so the first steps go into finding the parts.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from lipseg_tf.errors import UserError
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.train import csv_log, distribute, fitloop, guards, networks, pipeline, precision, widen
from lipseg_tf.train.balance import balancing_weights, class_frequencies
from lipseg_tf.train.checkpoints import restore_networks, select_checkpoint
from lipseg_tf.train.config import OPTIONS_FILE, RunConfig

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
    return networks.build_unet(classes.num_classes, config.ngf, config.depth, config.crop_size, patch=config.patch,
                               head=config.head)


def set_prior_bias(model: keras.Model, frequencies: np.ndarray, floor: float = 1e-4) -> None:
    """Start the softmax at the class frequencies: logits_conv's bias = log(frequency).

    With zero biases a fresh net predicts the classes about equally often, and Adam, whose steps are
    ~lr per weight, spends hundreds of steps learning that ~98 % of a face is background. Measured on
    the 128-px demo sample (ngf 8, lr 3e-3, seed 0): zero biases left cross-entropy at 0.50 after 240
    steps (the constant prior alone scores 0.10) and the run ended predicting background everywhere;
    with this start, Dice loss fell from 0.99 to 0.43 in 150 steps and the run reached mean F1 0.90.
    RetinaNet starts its rare classes at their prior for the same reason. With a patch (build_unet's),
    every pixel of a position's patch gets the same start (depth_to_space orders the logits pixel by
    pixel, each pixel's classes together).
    """
    bias = np.log(np.maximum(frequencies, floor)).astype(np.float32)
    logits_bias = model.get_layer("logits_conv").bias
    logits_bias.assign(np.tile(bias, logits_bias.shape[0] // len(bias)))
    log.info("unet: output bias set to the class frequencies of the first training masks: %s",
             ", ".join(f"{f:.4f}" for f in frequencies))


class _Steps(keras.callbacks.Callback):
    """Counts the steps, validates every --eval_freq steps and at each epoch's end, saves ckpt-<step> at
    each epoch's end, and stops fit at exactly the last step of the plan (run.Session)."""

    def __init__(self, session, step: tf.Variable, checkpoints, validation, predict):
        super().__init__()
        self.session, self.step, self.checkpoints = session, step, checkpoints
        self.validation, self.predict = validation, predict

    def _validate(self, step: int) -> None:
        if self.validation is not None and self.validation.last_step != step:
            self.validation(step, self.predict, self.session.plan.epochs(step))

    def on_train_batch_end(self, batch, logs=None):
        self.step.assign_add(1)
        step = int(self.step.numpy())
        if self.session.due(step):
            self._validate(step)
        if step >= self.session.plan.total_steps:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.step.numpy())
        self._validate(step)
        if logs is not None and self.validation is not None:
            logs.update({f"val_{k}": v for k, v in self.validation.last.items() if v is not None})
        self.checkpoints.save(step)   # on every worker: all take part in saving, the chief's is kept


def _compile(session, model: keras.Model, class_weights) -> keras.optimizers.Optimizer:
    """Compile model under the strategy with Adam on a cosine schedule; returns the Adam (what checkpoints
    hold)."""
    config = session.config
    # The learning rate decays to 5 % along a cosine over the planned steps: big early updates, and
    # a settled model at the end rather than one caught mid-oscillation.
    schedule = keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=session.plan.total_steps, alpha=0.05)
    optimizer = keras.optimizers.Adam(schedule, beta_1=config.beta1)
    # Under mixed_float16 fit updates through a LossScaleOptimizer; checkpoints hold the Adam inside.
    update = precision.scaled_optimizer(optimizer, config.precision)
    model.compile(optimizer=update, loss=make_loss(session.classes.num_classes, config.dice_weight, class_weights),
                  run_eagerly=config.eager, jit_compile=config.jit and not config.eager)
    update.build(model.trainable_variables)  # so a restore fills the slots instead of deferring
    return optimizer


def _restored_step(step: tf.Variable, optimizer) -> int:
    """The step a checkpoint holds; a U-Net checkpoint written before ckpt-N counted steps (it kept
    `epoch`, not `step`) gives its optimizer's update count."""
    if int(step.numpy()) == 0 and int(optimizer.iterations.numpy()) > 0:
        step.assign(int(optimizer.iterations.numpy()))
    return int(step.numpy())


def train(session) -> dict:
    """Train with fit for exactly session.plan.total_steps steps (resuming from the run folder's latest
    checkpoint); returns the last epoch's logs. session: run.Session."""
    config, classes, strategy = session.config, session.classes, session.strategy
    session.seed()
    with strategy.scope(), precision.policy(config.precision):
        model = distribute.synchronize_batchnorm(build(config, classes), strategy)
    # Counted on every start (resume included): the loss's class weights come from them too.
    frequencies = class_frequencies(session.train_source, classes, config)
    class_weights = balancing_weights(frequencies, config.class_balance) if config.class_balance else None
    with strategy.scope():
        optimizer = _compile(session, model, class_weights)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    checkpoints, start = session.checkpoints(checkpoint, lambda: _restored_step(step, optimizer))
    if start == 0 and config.init_from:
        init_weights(model, Path(config.init_from), classes)
    elif start == 0:
        set_prior_bias(model, frequencies)
    if session.finished(start):
        return {}

    def replica_dataset(batch_size, context):
        return pipeline.make_dataset(
            session.train_source, classes.colors, classes.flip_perm, training=True, image_size=config.crop_size,
            scale_size=config.scale_size, batch_size=batch_size, flip=config.flip, seed=config.seed,
            cache=config.cache, repeat=True, deterministic=True if config.deterministic else None,
            input_context=context, augment=config.augment)

    train_ds = distribute.distribute_dataset(strategy, config.batch_size, replica_dataset)

    def predict(images):
        return model(images, training=False)

    callbacks = [
        guards.NonFiniteLoss(start, lambda: checkpoints.latest.latest_checkpoint),
        _Steps(session, step, checkpoints, session.validation(checkpoints),
               predict if config.eager else tf.function(predict, reduce_retracing=True)),
        keras.callbacks.TensorBoard(str(session.write_dir / "logs"), update_freq="epoch"),
        csv_log.CsvLogger(session.write_dir / "log.csv"),
    ]
    verbose = (1 if sys.stderr.isatty() else 2) if session.chief else 0
    initial_epoch, epochs = session.epochs_to_run(start)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3's fit fails under this strategy (keras-team/keras#20585): the same loop, by hand.
        history = fitloop.fit(model, strategy, train_ds, epochs=epochs, initial_epoch=initial_epoch,
                              steps_per_epoch=session.plan.steps_per_epoch, callbacks=callbacks,
                              verbose=bool(verbose), eager=config.eager)
    else:
        history = model.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch,
                            steps_per_epoch=session.plan.steps_per_epoch, callbacks=callbacks,
                            verbose=verbose, shuffle=False).history  # the dataset shuffles itself
    last = {k: float(v[-1]) for k, v in history.items()}
    log.info("unet: %d steps, epoch %.1f; %s; checkpoint %s", int(step.numpy()),
             session.plan.epochs(int(step.numpy())), ", ".join(f"{k} {v:.4f}" for k, v in last.items()),
             checkpoints.latest.latest_checkpoint)
    return last


def init_weights(model: keras.Model, source: Path, classes: ClassSpec) -> None:
    """Fill model's weights from an exported U-Net (its SavedModel's variables: the network is the
    export's `network`) or from a U-Net run folder's best checkpoint; UserError when source is neither or
    holds a network of another shape or other classes."""
    if (source / "saved_model.pb").is_file():
        meta_file = source / "classes.json"
        try:
            names = json.loads(meta_file.read_text()).get("classes")
        except (OSError, ValueError, AttributeError):
            names = None
        if names != list(classes.names):
            raise UserError(f"--init_from {source}: {meta_file} names the classes {names}, the training pairs "
                            f"have {list(classes.names)}")
        prefix, key = str(source / "variables" / "variables"), "network"
    elif (source / "checkpoints").is_dir():
        prefix, key = select_checkpoint(source, "best"), "model"
    else:
        raise UserError(f"--init_from {source}: expected an exported U-Net (a folder with saved_model.pb) or a "
                        "U-Net run folder (with checkpoints/)")
    ngf, width = first_filters(model), source_filters(prefix, classes.num_classes)
    wide = None
    if width is not None and width < ngf:   # a narrower network: restored as it is, then widened
        wide, model = model, networks.build_unet(classes.num_classes, width, unet_depth(model), model.input_shape[1],
                                                 patch=unet_patch(model), head=unet_head(model))
    try:
        unchanged = networks.restore_weights(model, key, prefix)
    except (ValueError, tf.errors.OpError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"--init_from {source}: its network does not fit --ngf/--depth/classes of this run "
                        f"({reason}; a narrower --ngf is widened, a wider one cannot be)") from None
    if unchanged:  # a trained weight is never exactly its initial value: these were not in the source
        raise UserError(f"--init_from {source}: holds no value for {unchanged[0]} (a network of another "
                        "shape?)")
    if wide is not None:
        widen.widen_unet(model, wide)
        log.info("unet: weights from %s (%s), ngf %d widened to %d (train/widen.py)", source, prefix, width, ngf)
    else:
        log.info("unet: weights from %s (%s)", source, prefix)


def first_filters(model: keras.Model) -> int:
    """A build_unet network's --ngf: the filters of its first convolution."""
    return int(model.get_layer("encoder_stage1_conv1").kernel.shape[-1])


def unet_depth(model: keras.Model) -> int:
    """A build_unet network's --depth: its poolings."""
    return sum(layer.name.startswith("encoder_stage") and layer.name.endswith("_pool") for layer in model.layers)


def unet_patch(model: keras.Model) -> int:
    """A build_unet network's --patch: the block of its SpaceToDepth layer "patches", 1 without one."""
    return next((layer.block for layer in model.layers if layer.name == "patches"), 1)


def unet_head(model: keras.Model) -> int:
    """A build_unet network's --head: the filters of its head's convolution of the photo, 0 without one."""
    return next((int(layer.kernel.shape[-1]) for layer in model.layers if layer.name == "head_fine_conv"), 0)


def source_filters(prefix: str, num_classes: int) -> int | None:
    """The --ngf of the U-Net of num_classes a checkpoint or an export's variables hold (networks.unet_shape_of),
    or None when they hold no such network."""
    try:
        shape = networks.unet_shape_of(tf.train.list_variables(prefix), num_classes)
    except (ValueError, tf.errors.OpError):
        return None
    return shape.ngf if shape else None


def load_model(config: RunConfig, classes: ClassSpec, run_dir: Path, select: str = "latest") -> keras.Model:
    """The trained U-Net of a run folder: its best checkpoint by validation mean F1, or its latest (`select`)."""
    model = build(config, classes)
    restore_networks(tf.train.Checkpoint(model=model), select_checkpoint(run_dir, select),
                     Path(run_dir) / OPTIONS_FILE, network_shape(config, classes))
    return model


def network_shape(config: RunConfig, classes: ClassSpec) -> str:
    """The options that shape the network, for a line about a checkpoint that does not fit them."""
    shape = networks.UnetShape(config.ngf, config.depth, config.patch, config.head)
    return f"{shape}, {classes.num_classes} classes"
