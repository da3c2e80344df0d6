"""Widen a trained U-Net: a wider network (larger --ngf) that computes what the narrow one does.

Net2WiderNet (Chen, Goodfellow and Shlens, "Net2Net", 2016), the zero-padding form: every weight of the
narrow network keeps its place in the wide one, each new channel keeps the wide network's own random
initial weights into it, and the weights from new channels into the old ones are zero. The old channels
therefore compute exactly the narrow network's values and the output is the narrow network's, while the
new channels, fed by random weights, carry gradients from the first step: training adds capacity to a
network that already scores what the narrow one scored, instead of starting over (hours on 2 cores).

Layout of networks.build_unet's channels: a stage's old channels are its first ones; a decoder stage's
first convolution reads [upsampled, skip] concatenated, so its old inputs are the first ones of each half.
"""

from __future__ import annotations

import keras
import numpy as np

from lipseg_tf.errors import UserError


def _input_map(layer_name: str, narrow_in: int, wide_in: int) -> np.ndarray:
    """Where the narrow layer's input channels sit among the wide layer's."""
    if narrow_in == wide_in:
        return np.arange(wide_in)
    if layer_name.startswith("decoder_stage") and layer_name.endswith("_conv1"):   # reads [up, skip]
        half_narrow, half_wide = narrow_in // 2, wide_in // 2
        return np.concatenate([np.arange(half_narrow), half_wide + np.arange(half_narrow)])
    return np.arange(narrow_in)


def _widen_kernel(name: str, old: np.ndarray, new: np.ndarray, transposed: bool) -> np.ndarray:
    """new (the wide layer's initial kernel) with old in its place and zeros from new inputs to old
    outputs. Kernels are (kh, kw, in, out); a transposed convolution's are (kh, kw, out, in)."""
    if transposed:
        return np.swapaxes(_widen_kernel(name, np.swapaxes(old, 2, 3), np.swapaxes(new, 2, 3), False), 2, 3)
    kernel = new.copy()
    inputs = _input_map(name, old.shape[2], new.shape[2])
    outputs = np.arange(old.shape[3])
    kernel[:, :, :, outputs] = 0.0
    kernel[np.ix_(np.arange(old.shape[0]), np.arange(old.shape[1]), inputs, outputs)] = old
    return kernel


def widen_unet(narrow: keras.Model, wide: keras.Model) -> None:
    """Fill `wide` (build_unet, same classes and depth, base_filters >= narrow's) from `narrow`'s weights so
    that both compute the same probabilities; UserError when their layers do not pair up."""
    narrow_layers = {layer.name: layer for layer in narrow.layers if layer.weights}
    wide_layers = [layer for layer in wide.layers if layer.weights]
    if sorted(narrow_layers) != sorted(layer.name for layer in wide_layers):
        raise UserError("widen: the two U-Nets have different layers (another --depth?)")
    for layer in wide_layers:
        old_layer = narrow_layers[layer.name]
        values = []
        for old, new in zip((w.numpy() for w in old_layer.weights), (w.numpy() for w in layer.weights)):
            if old.ndim != new.ndim or any(o > n for o, n in zip(old.shape, new.shape)):
                raise UserError(f"widen: {layer.name} has weights {old.shape}, which do not fit in {new.shape} "
                                "(expected a narrower U-Net of the same depth and classes)")
            if old.ndim == 4:
                values.append(_widen_kernel(layer.name, old, new, isinstance(layer, keras.layers.Conv2DTranspose)))
            else:   # biases and BatchNorm's gamma, beta, moving mean and variance: one value per channel
                value = new.copy()
                value[:old.shape[0]] = old
                values.append(value)
        layer.set_weights(values)
