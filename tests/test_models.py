"""models: the pix2pix generator and PatchGAN at the paper's size, tiny variants, and the U-Net segmenter."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lipseg_tf.errors import UserError
from lipseg_tf.train import networks


def stages(model, prefix):
    """The stage blocks (Sequential) whose names start with prefix, in order."""
    return [layer for layer in model.layers if layer.name.startswith(prefix) and isinstance(layer, keras.Sequential)]


@pytest.fixture(scope="module")
def generator_256():
    return networks.build_generator(256, 64)


def test_generator_at_256_maps_images_to_images(generator_256):
    assert generator_256.input_shape == (None, 256, 256, 3)
    assert generator_256.output_shape == (None, 256, 256, 3)


def test_generator_has_8_encoder_and_7_decoder_stages_with_paper_widths(generator_256):
    encoders = stages(generator_256, "encoder_stage")
    decoders = stages(generator_256, "decoder_stage")
    assert [e.name for e in encoders] == [f"encoder_stage{i}" for i in range(1, 9)]
    assert [d.name for d in decoders] == [f"decoder_stage{i}" for i in range(1, 8)]
    assert [e.output.shape[-1] for e in encoders] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert [e.output.shape[1] for e in encoders] == [128, 64, 32, 16, 8, 4, 2, 1]
    assert [d.output.shape[1] for d in decoders] == [2, 4, 8, 16, 32, 64, 128]
    # no BatchNorm in the first encoder stage nor in the 1x1 innermost one (the paper's code), the rest have it
    has_bn = [any(isinstance(layer, keras.layers.BatchNormalization) for layer in e.layers) for e in encoders]
    assert has_bn == [False] + [True] * 6 + [False]


def test_generator_dropout_only_in_first_three_decoder_stages(generator_256):
    dropout = [[layer.rate for layer in d.layers if isinstance(layer, keras.layers.Dropout)]
               for d in stages(generator_256, "decoder_stage")]
    assert dropout == [[0.5], [0.5], [0.5], [], [], [], []]
    assert not any(isinstance(layer, keras.layers.Dropout) for e in stages(generator_256, "encoder_stage")
                   for layer in e.layers)


def test_generator_dropout_rate_is_an_option_and_changes_no_weights():
    paper, none = networks.build_generator(32, 4), networks.build_generator(32, 4, dropout=0.0)
    rates = [layer.rate for layer in paper._flatten_layers() if isinstance(layer, keras.layers.Dropout)]
    assert rates == [0.5, 0.5, 0.5]
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in none._flatten_layers())
    # the same weights, so either loads the other's checkpoint; without dropout training calls agree
    assert [w.shape for w in paper.weights] == [w.shape for w in none.weights]
    none.set_weights(paper.get_weights())
    image = tf.random.uniform((1, 32, 32, 3), -1.0, 1.0, seed=3)
    np.testing.assert_allclose(none(image, training=False), paper(image, training=False), atol=1e-6)
    np.testing.assert_array_equal(none(image, training=True), none(image, training=True))


def test_patchgan_at_256_gives_30x30_logits():
    disc = networks.build_discriminator(256, 64)
    assert disc.output_shape == (None, 30, 30, 1)
    assert [i.shape[1:] for i in disc.inputs] == [(256, 256, 3), (256, 256, 3)]


@pytest.mark.parametrize("size", [32, 64])
def test_tiny_generator_and_patchgan_run(size):
    gen = networks.build_generator(size, 4)
    levels = int(np.log2(size))
    assert len(stages(gen, "encoder_stage")) == levels
    assert len(stages(gen, "decoder_stage")) == levels - 1
    image = tf.random.uniform((2, size, size, 3), -1.0, 1.0, seed=1)
    out = gen(image, training=False).numpy()
    assert out.shape == (2, size, size, 3)
    assert np.all(np.abs(out) <= 1.0)                       # tanh output
    disc = networks.build_discriminator(size, 4)
    logits = disc([image, tf.constant(out)], training=False)
    # two stride-2 layers fewer than 256 px: size / 8 - 2 patches per side
    assert logits.shape == (2, size // 8 - 2, size // 8 - 2, 1)


def test_generator_in_inference_mode_is_deterministic():
    gen = networks.build_generator(32, 4)
    image = tf.random.uniform((1, 32, 32, 3), -1.0, 1.0, seed=2)
    np.testing.assert_array_equal(gen(image, training=False), gen(image, training=False))
    # while training, dropout makes two calls differ
    assert not np.array_equal(gen(image, training=True), gen(image, training=True))


def test_unet_is_fully_convolutional_and_outputs_a_softmax():
    unet = networks.build_unet(5, base_filters=4, depth=2, image_size=None)
    assert unet.output_shape == (None, None, None, 5)
    rng = np.random.default_rng(0)
    for height, width in [(16, 16), (32, 48), (8, 12)]:         # any size divisible by 2 ** 2
        image = rng.uniform(-1, 1, (2, height, width, 3)).astype(np.float32)
        probs = unet(image, training=False).numpy()
        assert probs.shape == (2, height, width, 5)
        assert np.all(probs >= 0)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_unet_fixed_size_and_stage_names():
    unet = networks.build_unet(3, base_filters=4, depth=3, image_size=32)
    assert unet.input_shape == (None, 32, 32, 3)
    assert unet.output_shape == (None, 32, 32, 3)
    names = {layer.name for layer in unet.layers}
    assert {"encoder_stage1_conv1", "encoder_stage3_pool", "bottleneck_conv2", "decoder_stage3_conv2"} <= names
    assert "encoder_stage4_conv1" not in names
    assert unet.get_layer("bottleneck_conv2").output.shape == (None, 4, 4, 32)   # 32 / 2**3, 4 * 2**3


def test_patches_round_trip_and_keep_each_pixel_s_channels_together():
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (2, 8, 12, 3)).astype(np.float32)
    patches = networks.SpaceToDepth(2)(image).numpy()
    assert patches.shape == (2, 4, 6, 12)
    # position (1, 2) holds pixels (2..3, 4..5), row by row, each pixel's 3 channels together
    np.testing.assert_array_equal(patches[0, 1, 2], image[0, 2:4, 4:6].reshape(-1))
    np.testing.assert_array_equal(networks.DepthToSpace(2)(patches).numpy(), image)


def test_unet_with_patches_runs_its_stages_at_a_fraction_of_the_side_and_answers_every_pixel():
    unet = networks.build_unet(5, base_filters=4, depth=2, image_size=32, patch=2)
    assert unet.output_shape == (None, 32, 32, 5)
    assert unet.get_layer("encoder_stage1_conv1").output.shape == (None, 16, 16, 4)
    assert unet.get_layer("bottleneck_conv2").output.shape == (None, 4, 4, 16)
    assert unet.get_layer("logits_conv").output.shape == (None, 16, 16, 20)
    image = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    probs = unet(image, training=False).numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # the four pixels of a patch get answers of their own
    assert np.abs(probs[:, 0::2, 0::2] - probs[:, 1::2, 1::2]).max() > 1e-4
    fully_convolutional = networks.build_unet(5, 4, 2, None, patch=4)
    assert fully_convolutional(image[:, :16, :], training=False).shape == (2, 16, 32, 5)


def test_a_unet_with_a_head_runs_its_stages_at_the_patch_and_its_head_at_half_of_it():
    unet = networks.build_unet(5, base_filters=6, depth=2, image_size=32, patch=4, head=4)
    assert unet.output_shape == (None, 32, 32, 5)
    assert unet.get_layer("encoder_stage1_conv1").output.shape == (None, 8, 8, 6)
    assert unet.get_layer("head_fine_conv").input.shape == (None, 16, 16, 12)   # the photo's 2x2 patches
    assert unet.get_layer("head_conv").output.shape == (None, 16, 16, 8)
    assert unet.get_layer("logits_conv").output.shape == (None, 16, 16, 20)
    image = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    probs = unet(image, training=False).numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # each 2x2 patch of a 4x4 one gets answers of its own, and so does each pixel of it
    assert np.abs(probs[:, 0:32:4, 0:32:4] - probs[:, 2:32:4, 2:32:4]).max() > 1e-4
    assert np.abs(probs[:, 0::2, 0::2] - probs[:, 1::2, 1::2]).max() > 1e-4
    full_side = networks.build_unet(5, 4, 2, 32, patch=2, head=4)          # a head at patch 1: no patches
    assert full_side.get_layer("head_fine_conv").input.shape == (None, 32, 32, 3)
    with pytest.raises(UserError, match="head 4 needs a patch of 2 or 4"):
        networks.build_unet(5, 4, 2, 32, patch=1, head=4)


@pytest.mark.parametrize("ngf, patch, head", [(6, 1, 0), (24, 1, 0), (8, 2, 0), (24, 4, 16), (16, 4, 8), (8, 4, 4)])
def test_the_shape_of_a_unet_is_read_from_its_checkpoint(tmp_path, ngf, patch, head):
    """--init_from's width and reexport's network: the first convolution's filters, though a deeper stage of
    ngf 6 or 24 also takes 12 or 48 channels, the inputs of patch 2 or 4, and a head's convolution of the
    photo takes them too."""
    from lipseg_tf.train import unet

    network = networks.build_unet(5, ngf, 2, 32, patch=patch, head=head)
    prefix = tf.train.Checkpoint(model=network).write(str(tmp_path / "ckpt"))
    assert unet.source_filters(prefix, 5) == ngf
    shape = networks.unet_shape_of(tf.train.list_variables(prefix), 5)
    assert shape == networks.UnetShape(ngf, 2, patch, head)
    assert networks.unet_shape_of(tf.train.list_variables(prefix), 3) is None   # not of these classes


@pytest.mark.parametrize("build, message", [
    (lambda: networks.build_unet(5, 4, depth=2, image_size=36, patch=2), r"divisible by 8 \(patch 2, depth 2\)"),
    (lambda: networks.build_unet(5, 4, depth=2, image_size=32, patch=3), "patch 3 unknown, valid: 1, 2, 4"),
    (lambda: networks.build_generator(100, 4), "power of two"),
    (lambda: networks.build_generator(4, 4), "power of two >= 8"),
    (lambda: networks.build_generator(0, 4), "power of two"),
    (lambda: networks.build_discriminator(16, 4), "too small"),
    (lambda: networks.build_unet(5, 4, depth=2, image_size=30), "divisible by 4"),
    (lambda: networks.build_unet(5, 4, depth=4, image_size=40), "divisible by 16"),
    (lambda: networks.build_unet(1, 4, depth=2, image_size=32), "num_classes"),
])
def test_bad_sizes_raise_user_error(build, message):
    with pytest.raises(UserError, match=message):
        build()
