"""Numeric precision of training: float32, or Keras mixed precision (float16 / bfloat16 compute).

Under a mixed policy the layers compute in 16 bits and keep float32 weights; the networks' last
activations (tanh, softmax, the PatchGAN logits) are float32 layers (networks.py), and the losses are
computed in float32. float16 needs loss scaling, so its gradients do not underflow: every optimizer is
wrapped in a LossScaleOptimizer. bfloat16 has float32's exponent range and needs none.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import keras

from lipseg_tf.train.config import PRECISIONS


@contextlib.contextmanager
def policy(name: str) -> Iterator[None]:
    """Build layers under the Keras dtype policy `name`, then put the previous global policy back.

    Keras reads its policy from a global setting when a layer is created; restoring it keeps one run's
    precision from leaking into the next model built in the same process (tests, the benchmark).
    """
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}, valid: {', '.join(PRECISIONS)}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def scaled_optimizer(optimizer: keras.optimizers.Optimizer, name: str) -> keras.optimizers.Optimizer:
    """The optimizer to update with: wrapped in a dynamic LossScaleOptimizer for mixed_float16.

    Checkpoint the *inner* optimizer (the one passed in), so a run can resume under another precision;
    the loss scale itself is not saved and re-adapts within a few steps.
    """
    if name == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
