"""A fit-like training loop for a compiled Keras segmenter under MultiWorkerMirroredStrategy.

Keras 3's Model.fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585: it reduces the
input batches and the metric values with calls that strategy does not accept), so unet.py trains with
this loop there. It keeps fit's contract: the compiled loss, the same optimizer, the same callbacks
(steps, checkpoints, TensorBoard, CSV) called at the start and end of training, of every epoch and of
every step, stop_training, and the same logs per epoch: loss (mean of the step losses). Validation is
the trainers' own (validation.py), outside this loop.
Each replica's loss is averaged over the global batch; the optimizer sums the replicas' gradients.
"""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

log = logging.getLogger("lipseg_tf")
SUM = tf.distribute.ReduceOp.SUM


def fit(model: keras.Model, strategy: tf.distribute.Strategy, train_ds, *, epochs: int, initial_epoch: int,
        steps_per_epoch: int, callbacks=(), verbose: bool = True, eager: bool = False) -> dict[str, list[float]]:
    """Train model (compiled: model.loss gives (B,) per-example losses, model.optimizer updates) on
    the distributed dataset train_ds; returns the history {name: [value per epoch]}. As fit, a callback
    that sets model.stop_training ends the epoch after that step and the run after that epoch. eager:
    steps without tf.function (for debugging, as fit's run_eagerly)."""
    loss_fn, optimizer = model.loss, model.optimizer

    def replica_train_step(images, labels):
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            loss = tf.nn.compute_average_loss(loss_fn(labels, probabilities))
            scaled_loss = optimizer.scale_loss(loss)      # loss scaling under mixed_float16
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))
        return loss

    def train_step(iterator):
        return strategy.reduce(SUM, strategy.run(replica_train_step, args=next(iterator)), axis=None)

    if not eager:
        train_step = tf.function(train_step)

    callbacks = keras.callbacks.CallbackList(list(callbacks), model=model, epochs=epochs, steps=steps_per_epoch)
    history: dict[str, list[float]] = {}
    iterator = iter(train_ds)
    logs: dict[str, float] = {}
    model.stop_training = False
    callbacks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callbacks.on_epoch_begin(epoch)
        loss_sum, steps = 0.0, 0
        for batch in range(steps_per_epoch):
            callbacks.on_train_batch_begin(batch)
            loss = float(train_step(iterator))
            loss_sum, steps = loss_sum + loss, steps + 1
            callbacks.on_train_batch_end(batch, {"loss": loss})
            if model.stop_training:
                break
        logs = {"loss": loss_sum / max(steps, 1)}
        callbacks.on_epoch_end(epoch, logs)
        for name, value in logs.items():
            history.setdefault(name, []).append(value)
        if verbose:
            log.info("epoch %d/%d: %s", epoch + 1, epochs, ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    return history
