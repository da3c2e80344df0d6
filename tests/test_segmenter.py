"""The U-Net's start (a softmax that begins at the class frequencies) and its class-weighted loss."""

from __future__ import annotations

import numpy as np
import pytest

from lipseg_tf.train import networks, unet


@pytest.mark.parametrize("patch", [1, 2])
def test_prior_bias_makes_a_fresh_unet_predict_the_class_frequencies(patch):
    model = networks.build_unet(5, base_filters=4, depth=2, image_size=16, patch=patch)
    head = model.get_layer("logits_conv")
    head.kernel.assign(np.zeros(head.kernel.shape, np.float32))   # only the bias speaks
    frequencies = np.array([0.9, 0.04, 0.03, 0.02, 0.01])
    unet.set_prior_bias(model, frequencies)
    probabilities = model(np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32),
                          training=False).numpy()
    np.testing.assert_allclose(probabilities, np.broadcast_to(frequencies, probabilities.shape), rtol=1e-5)


def test_prior_bias_floors_an_absent_class():
    model = networks.build_unet(3, base_filters=4, depth=2, image_size=16)
    unet.set_prior_bias(model, np.array([0.99, 0.01, 0.0]))
    assert model.get_layer("logits_conv").bias.numpy()[2] == pytest.approx(np.log(1e-4))


def test_class_weights_scale_each_pixels_cross_entropy():
    labels = np.array([[[0, 1], [2, 0]]])                   # one 2x2 image, 3 classes
    probabilities = np.full((1, 2, 2, 3), 1 / 3, np.float32)
    plain = unet.make_loss(3, dice_weight=0.0)(labels, probabilities).numpy()
    weighted = unet.make_loss(3, dice_weight=0.0, class_weights=[1.0, 4.0, 2.0])(labels, probabilities).numpy()
    np.testing.assert_allclose(plain, [np.log(3)], rtol=1e-5)
    np.testing.assert_allclose(weighted, [np.log(3) * (1 + 4 + 2 + 1) / 4], rtol=1e-5)
