"""A fit-like training loop for a compiled Keras segmenter under MultiWorkerMirroredStrategy.

Keras 3's Model.fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585: it reduces the
input batches and the metric values with calls that strategy does not accept), so unet.py trains with
this loop there. It keeps fit's contract: the compiled loss, the same optimizer, the same callbacks
(checkpoints, TensorBoard, CSV) called at the start and end of training and of every epoch, and the same
logs per epoch: loss (mean of the step losses), accuracy (pixels right), val_loss and val_accuracy.
Each replica's loss is averaged over the global batch; the optimizer sums the replicas' gradients.
"""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

log = logging.getLogger("lipseg_tf")
SUM = tf.distribute.ReduceOp.SUM


def fit(model: keras.Model, strategy: tf.distribute.Strategy, train_ds, *, epochs: int, initial_epoch: int,
        steps_per_epoch: int, validation_data=None, callbacks=(), verbose: bool = True,
        eager: bool = False) -> dict[str, list[float]]:
    """Train model (compiled: model.loss gives (B,) per-example losses, model.optimizer updates) on
    the distributed dataset train_ds; returns the history {name: [value per epoch]}. eager: steps
    without tf.function (for debugging, as fit's run_eagerly)."""
    loss_fn, optimizer = model.loss, model.optimizer

    def accuracy_counts(labels, probabilities):
        right = tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32), tf.cast(labels, tf.int32))
        return tf.reduce_sum(tf.cast(right, tf.float32)), tf.cast(tf.size(right), tf.float32)

    def replica_train_step(images, labels):
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            loss = tf.nn.compute_average_loss(loss_fn(labels, probabilities))
            scaled_loss = optimizer.scale_loss(loss)      # loss scaling under mixed_float16
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))
        return (loss, *accuracy_counts(labels, probabilities))

    def replica_val_step(images, labels):
        probabilities = model(images, training=False)
        per_example = tf.cast(loss_fn(labels, probabilities), tf.float32)
        return (tf.reduce_sum(per_example), tf.cast(tf.size(per_example), tf.float32),
                *accuracy_counts(labels, probabilities))

    def train_step(iterator):
        return [strategy.reduce(SUM, v, axis=None) for v in strategy.run(replica_train_step, args=next(iterator))]

    def val_step(batch):
        return [strategy.reduce(SUM, v, axis=None) for v in strategy.run(replica_val_step, args=batch)]

    if not eager:
        train_step, val_step = tf.function(train_step), tf.function(val_step)

    callbacks = keras.callbacks.CallbackList(list(callbacks), model=model, epochs=epochs, steps=steps_per_epoch)
    history: dict[str, list[float]] = {}
    iterator = iter(train_ds)
    logs: dict[str, float] = {}
    callbacks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callbacks.on_epoch_begin(epoch)
        loss_sum = right = pixels = 0.0
        for _ in range(steps_per_epoch):
            loss, step_right, step_pixels = (float(v) for v in train_step(iterator))
            loss_sum, right, pixels = loss_sum + loss, right + step_right, pixels + step_pixels
        logs = {"loss": loss_sum / steps_per_epoch, "accuracy": right / max(pixels, 1.0)}
        if validation_data is not None:
            sums = [0.0] * 4
            for batch in validation_data:
                sums = [a + float(b) for a, b in zip(sums, val_step(batch))]
            logs.update(val_loss=sums[0] / max(sums[1], 1.0), val_accuracy=sums[2] / max(sums[3], 1.0))
        callbacks.on_epoch_end(epoch, logs)
        for name, value in logs.items():
            history.setdefault(name, []).append(value)
        if verbose:
            log.info("epoch %d/%d: %s", epoch + 1, epochs, ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    callbacks.on_train_end(logs)
    return history
