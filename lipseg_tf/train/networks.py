"""The networks: pix2pix's U-Net generator and 70x70 PatchGAN, and a U-Net segmenter (also a pix2pix
generator when its class probabilities paint the palette: build_segmenter_generator).

Built with the functional API from two block builders, as TensorFlow's pix2pix tutorial does. Shapes in
comments are for the paper's 256 px; every builder takes a smaller size and width for quick runs.
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras
import numpy as np
from keras import layers

from lipseg_tf.errors import UserError

INIT_STDDEV = 0.02  # the paper's N(0, 0.02) weight initialisation


def _init():
    return keras.initializers.RandomNormal(0.0, INIT_STDDEV)


def _check_size(image_size: int, minimum: int, what: str) -> int:
    """Number of halvings that bring image_size down to 1; UserError unless it is a power of two."""
    levels = int(round(math.log2(image_size))) if image_size > 0 else 0
    if image_size < minimum or 2 ** levels != image_size:
        raise UserError(f"{what}: image size {image_size} must be a power of two >= {minimum}")
    return levels


def downsample(filters: int, size: int = 4, batchnorm: bool = True, name: str | None = None):
    """Conv (stride 2) -> BatchNorm -> LeakyReLU(0.2): halves height and width."""
    block = keras.Sequential(name=name)
    block.add(layers.Conv2D(filters, size, strides=2, padding="same", kernel_initializer=_init(),
                            use_bias=not batchnorm))
    if batchnorm:
        block.add(layers.BatchNormalization())
    block.add(layers.LeakyReLU(0.2))
    return block


def upsample(filters: int, size: int = 4, dropout: float = 0.0, name: str | None = None):
    """Transposed conv (stride 2) -> BatchNorm -> Dropout(rate)? -> ReLU: doubles height and width."""
    block = keras.Sequential(name=name)
    block.add(layers.Conv2DTranspose(filters, size, strides=2, padding="same", kernel_initializer=_init(),
                                     use_bias=False))
    block.add(layers.BatchNormalization())
    if dropout:
        block.add(layers.Dropout(dropout))
    block.add(layers.ReLU())
    return block


def build_generator(image_size: int = 256, ngf: int = 64, out_channels: int = 3, dropout: float = 0.5,
                    name: str = "generator") -> keras.Model:
    """pix2pix U-Net generator: photo in [-1, 1] -> image in [-1, 1] (tanh).

    Args:
        image_size: height = width of input and output, a power of two >= 8; log2(size) down blocks
            (8 at 256) bring it to 1x1, and log2(size) - 1 up blocks with skip connections return.
        ngf: filters of the first block; deeper blocks double it up to 8 * ngf.
        out_channels: channels of the output image.
        dropout: rate of the dropout in the first three up blocks (the paper's 0.5; 0: none). Training
            only: it holds no weights, so a generator built with any rate loads any checkpoint.
        name: the model's name.
    """
    levels = _check_size(image_size, 8, "generator")
    filters = [min(ngf * 2 ** i, ngf * 8) for i in range(levels)]   # 64,128,256,512,512,512,512,512
    inputs = layers.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    skips = []
    for i, f in enumerate(filters):                                  # (bs, 128, 128, 64) ... (bs, 1, 1, 512)
        # No BatchNorm on the first block (as in the paper) nor on the 1x1 innermost one: at batch 1 it
        # would normalise a single value to a constant in training, and differ from it at inference.
        x = downsample(f, batchnorm=0 < i < levels - 1, name=f"encoder_stage{i + 1}")(x)
        skips.append(x)
    for i, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips[:-1]))):
        # (bs, 2, 2, 1024) ... (bs, 128, 128, 128): dropout in the first three up blocks, as in the paper
        x = upsample(f, dropout=dropout if i < 3 else 0.0, name=f"decoder_stage{i + 1}")(x)
        x = layers.Concatenate(name=f"decoder_stage{i + 1}_skip")([x, skip])
    x = layers.Conv2DTranspose(out_channels, 4, strides=2, padding="same", kernel_initializer=_init(),
                               name="output_conv")(x)                  # (bs, 256, 256, 3)
    outputs = layers.Activation("tanh", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def build_discriminator(image_size: int = 256, ndf: int = 64, n_layers: int = 3,
                        name: str = "discriminator") -> keras.Model:
    """PatchGAN conditioned on the photo: (image, target) -> logits, one per overlapping patch.

    With n_layers=3 every logit sees a 70x70 patch and a 256 px input gives (bs, 30, 30, 1).

    Args:
        image_size: height = width of both inputs.
        ndf: filters of the first layer, doubling per stride-2 layer up to 8 * ndf.
        n_layers: stride-2 layers; their count sets the receptive field (3 -> 70x70).
        name: the model's name.
    """
    if image_size < 2 ** (n_layers + 2):
        raise UserError(f"discriminator: image size {image_size} too small for {n_layers} layers "
                        f"(expected >= {2 ** (n_layers + 2)})")
    image = layers.Input(shape=(image_size, image_size, 3), name="image")
    target = layers.Input(shape=(image_size, image_size, 3), name="target")
    x = layers.Concatenate(name="condition")([image, target])               # (bs, 256, 256, 6)
    for i in range(n_layers):                                               # (bs, 128/64/32, ., 64/128/256)
        x = downsample(min(ndf * 2 ** i, ndf * 8), batchnorm=i > 0, name=f"patch_stage{i + 1}")(x)
    x = layers.ZeroPadding2D()(x)                                           # (bs, 34, 34, 256)
    x = layers.Conv2D(min(ndf * 2 ** n_layers, ndf * 8), 4, kernel_initializer=_init(), use_bias=False,
                      name="patch_conv")(x)                                 # (bs, 31, 31, 512)
    x = layers.BatchNormalization(name="patch_norm")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.ZeroPadding2D()(x)                                           # (bs, 33, 33, 512)
    x = layers.Conv2D(1, 4, kernel_initializer=_init(), name="logits_conv")(x)  # (bs, 30, 30, 1)
    logits = layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model([image, target], logits, name=name)


def _conv_block(x, filters: int, name: str):
    """Two 3x3 conv -> BatchNorm -> ReLU layers: one U-Net stage."""
    for j in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                          name=f"{name}_conv{j}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{j}")(x)
        x = layers.ReLU(name=f"{name}_relu{j}")(x)
    return x


PATCHES = (1, 2, 4)  # build_unet's patch choices


class _Rearrange(layers.Layer):
    """A layer that moves pixels between the sides and the channels in squares of block x block."""

    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def get_config(self):
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package="lipseg_tf")
class SpaceToDepth(_Rearrange):
    """(bs, H, W, C) -> (bs, H / block, W / block, C * block ** 2): each block x block square of pixels
    becomes one position holding all their channels (tf.nn.space_to_depth; one TFLite op)."""

    def call(self, x):
        import tensorflow as tf
        return tf.nn.space_to_depth(x, self.block)

    def compute_output_shape(self, shape):
        side = lambda n: None if n is None else n // self.block  # noqa: E731
        return (shape[0], side(shape[1]), side(shape[2]), shape[3] * self.block ** 2)


@keras.saving.register_keras_serializable(package="lipseg_tf")
class DepthToSpace(_Rearrange):
    """SpaceToDepth's inverse: (bs, H, W, C * block ** 2) -> (bs, H * block, W * block, C)."""

    def call(self, x):
        import tensorflow as tf
        return tf.nn.depth_to_space(x, self.block)

    def compute_output_shape(self, shape):
        side = lambda n: None if n is None else n * self.block  # noqa: E731
        return (shape[0], side(shape[1]), side(shape[2]), shape[3] // self.block ** 2)


def build_unet(num_classes: int, base_filters: int = 32, depth: int = 4, image_size: int | None = None,
               name: str = "unet", patch: int = 1, head: int = 0) -> keras.Model:
    """U-Net segmenter (Ronneberger et al.): photo in [-1, 1] -> per-pixel softmax over the classes.

    Args:
        num_classes: output classes, background included.
        base_filters: filters of the first stage, doubling per stage (32 -> 512 at depth 4).
        depth: number of 2x poolings; height and width must be divisible by patch * 2 ** depth.
        image_size: fixed input size, or None for any size divisible by patch * 2 ** depth.
        name: the model's name.
        patch: pixels a side of the square that one position of the first stage holds (PATCHES). With 2,
            the photo goes in as space_to_depth (bs, H/2, W/2, 12) and each position's logits come out as
            its 2 x 2 pixels' (depth_to_space): the stages run at half the side, the output keeps the
            photo's; on a CPU that is about half the time of patch 1 at the same weights' count.
        head: 0, or the filters of a thin head that ends the network at half the patch (patch 2 or 4): the
            last stage's output up by a 2x2 transposed convolution to `head` channels, joined with one 3x3
            convolution of the photo's (patch / 2)-pixel patches, then one 3x3 convolution of 2 * head and
            the logits per (patch / 2)-pixel patch. At patch 4 the stages run at a quarter of the side and the
            head at half of it. Measured on the dev set (docs/predict-and-tflite.md, 2026-12-07): patch 4
            alone lost 0.025 val F1 to patch 2; with a head of 16 at ngf 24 the exported TFLite copy took 0.9
            of patch 2's time a run and lost 0.007 test F1.
    """
    if num_classes < 2:
        raise UserError(f"unet: num_classes must be >= 2, got {num_classes}")
    if patch not in PATCHES:
        raise UserError(f"unet: patch {patch} unknown, valid: {', '.join(map(str, PATCHES))}")
    if head < 0 or (head and patch == 1):
        raise UserError(f"unet: head {head} needs a patch of 2 or 4 (the head runs at half the patch), got "
                        f"patch {patch}" if head > 0 else f"unet: head must be >= 0, got {head}")
    multiple = patch * 2 ** depth
    if image_size is not None and image_size % multiple:
        what = f"depth {depth}" if patch == 1 else f"patch {patch}, depth {depth}"
        raise UserError(f"unet: image size {image_size} must be divisible by {multiple} ({what})")
    inputs = layers.Input(shape=(image_size, image_size, 3), name="image")
    x = SpaceToDepth(patch, name="patches")(inputs) if patch > 1 else inputs  # (bs, 128, 128, 12) at patch 2
    skips = []
    for i in range(depth):                                       # (bs, 256, 256, 32) ... (bs, 32, 32, 256)
        x = _conv_block(x, base_filters * 2 ** i, f"encoder_stage{i + 1}")
        skips.append(x)
        x = layers.MaxPool2D(name=f"encoder_stage{i + 1}_pool")(x)
    x = _conv_block(x, base_filters * 2 ** depth, "bottleneck")   # (bs, 16, 16, 512)
    for i in reversed(range(depth)):                              # (bs, 32, 32, 256) ... (bs, 256, 256, 32)
        stage = f"decoder_stage{depth - i}"
        x = layers.Conv2DTranspose(base_filters * 2 ** i, 2, strides=2, name=f"{stage}_up")(x)
        x = layers.Concatenate(name=f"{stage}_skip")([x, skips[i]])
        x = _conv_block(x, base_filters * 2 ** i, stage)
    if head:                                                      # at patch 4, 128 px in: (bs, 32, 32, ngf) ->
        patch //= 2
        x = layers.Conv2DTranspose(head, 2, strides=2, name="head_up")(x)         # (bs, 64, 64, head)
        fine = SpaceToDepth(patch, name="head_patches")(inputs) if patch > 1 else inputs   # (bs, 64, 64, 12)
        fine = layers.Conv2D(head, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                             name="head_fine_conv")(fine)
        fine = layers.ReLU(name="head_fine_relu")(layers.BatchNormalization(name="head_fine_bn")(fine))
        x = layers.Concatenate(name="head_skip")([x, fine])
        x = layers.Conv2D(2 * head, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                          name="head_conv")(x)
        x = layers.ReLU(name="head_relu")(layers.BatchNormalization(name="head_bn")(x))
    x = layers.Conv2D(num_classes * patch ** 2, 1, name="logits_conv")(x)  # (bs, 256, 256, num_classes)
    if patch > 1:                                                 # at patch 2 (bs, 128, 128, num_classes * 4) ->
        x = DepthToSpace(patch, name="unpatch")(x)                # (bs, 256, 256, num_classes)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


@dataclasses.dataclass(frozen=True)
class UnetShape:
    """The build_unet options that shape a U-Net's weights (its size aside)."""

    ngf: int
    depth: int
    patch: int = 1
    head: int = 0

    def __str__(self):
        return (f"ngf {self.ngf}, depth {self.depth}" + (f", patch {self.patch}" if self.patch > 1 else "")
                + (f", head {self.head}" if self.head else ""))


# A weight's place in a checkpoint: an export's network/_operations/<layer>/..., a run's
# optimizer/_trainable_variables/<n>/... (TensorFlow stores each variable once, there for a run); both
# numbers follow build_unet's layer order, so the lowest is encoder_stage1_conv1's kernel.
_WEIGHT_INDEX = re.compile(r"(?:^|/)(?:_operations|_trainable_variables)/(\d+)/")


def unet_shape_of(variables, num_classes: int) -> UnetShape | None:
    """The shape of the build_unet network whose weights `variables` lists ((name, shape) pairs, as
    tf.train.list_variables gives them), or None when they are no U-Net of num_classes classes: the first
    3x3 kernel takes the photo's patches (3 * patch ** 2 channels) to ngf, the widest 3x3 kernel is the
    bottleneck's (ngf * 2 ** depth), and the one 1x1 kernel, the logits, reads ngf channels for
    num_classes * patch ** 2 outputs, or with a head 2 * head channels for those of half the patch."""
    kernels = sorted((int(found.group(1)), shape) for name, shape in variables
                     if len(shape) == 4 and "optimizer/_variables" not in name
                     and (found := _WEIGHT_INDEX.search(name)))
    convs = [shape for _, shape in kernels if shape[:2] == [3, 3]]
    logits = {tuple(shape) for _, shape in kernels if shape[:2] == [1, 1]}
    if not convs or len(logits) != 1:
        return None
    (_, _, logits_in, logits_out), = logits
    first_in, ngf = convs[0][2], convs[0][3]
    widest = max(shape[3] for shape in convs)
    depth = round(math.log2(widest / ngf))
    patch = next((p for p in PATCHES if first_in == 3 * p ** 2), None)
    if patch is None or depth < 1 or ngf * 2 ** depth != widest:
        return None
    if logits_in == ngf and logits_out == num_classes * patch ** 2:
        return UnetShape(ngf, depth, patch)
    if patch > 1 and logits_in % 2 == 0 and logits_out == num_classes * (patch // 2) ** 2:
        return UnetShape(ngf, depth, patch, logits_in // 2)
    return None


def build_segmenter_generator(palette, image_size: int | None = 256, ngf: int = 32, depth: int = 4,
                              name: str = "generator") -> keras.Model:
    """A pix2pix generator that is build_unet's segmenter painting its classes: photo in [-1, 1] ->
    image = sum over classes of probability x palette colour.

    The image is a colour mask as the paper's generator draws one (in the palette's range), decoded the
    same way; but every pixel is a mixture of the palette's colours, and the segmenter inside (the layer
    named "segmenter") can start from a trained U-Net's weights (pix2pix.py --init_from), as in
    adversarial training of segmentation networks (Luc et al., 2016).

    Args:
        palette: (num_classes, 3) float colours of the classes in the generator's output range
            (pipeline.colors_to_model_range), background first.
        image_size, ngf, depth: the segmenter's (build_unet's image_size, base_filters, depth).
        name: the model's name.
    """
    palette = np.asarray(palette, np.float32)
    segmenter = build_unet(len(palette), ngf, depth, image_size, name="segmenter")
    inputs = layers.Input(shape=(image_size, image_size, 3), name="image")
    paint = layers.Dense(3, use_bias=False, trainable=False, dtype="float32", name="paint")
    outputs = paint(segmenter(inputs))                       # (bs, 256, 256, classes) -> (bs, 256, 256, 3)
    paint.kernel.assign(palette)                             # fixed: the classes' colours
    return keras.Model(inputs, outputs, name=name)


def segmenter_of(generator: keras.Model) -> keras.Model | None:
    """The U-Net inside a build_segmenter_generator generator; None for the paper's generator."""
    try:
        return generator.get_layer("segmenter")
    except ValueError:
        return None


WEIGHT_DTYPES = ("float32", "float16")


class _StoredInHalf(keras.DTypePolicy):
    """float16 variables, float32 arithmetic: each weight is stored in two bytes and cast to float32 where
    a layer reads it (Keras casts variables of another dtype than the layer's compute dtype)."""

    def _parse_name(self, name):
        return "float32", "float16"


def stored_in(network: keras.Model, dtype: str) -> keras.Model:
    """`network` with its weights stored as `dtype` (WEIGHT_DTYPES) and the same float32 arithmetic: the
    network itself for float32, else a clone holding its weights rounded to float16 (half the bytes on
    disk in an export; the probabilities move by about 1e-3)."""
    if dtype not in WEIGHT_DTYPES:
        raise UserError(f"weights {dtype!r} unknown, valid: {', '.join(WEIGHT_DTYPES)}")
    if dtype == "float32":
        return network
    policy = _StoredInHalf("float32_stored_in_float16")

    def half(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": policy})

    clone = keras.models.clone_model(network, clone_function=half)
    clone.set_weights([w.astype(dtype) for w in network.get_weights()])
    return clone


def restore_weights(network: keras.Model, key: str, prefix: str) -> list[str]:
    """Restore the network a checkpoint (or an export's variables) holds under `key` into `network`, also
    when it was stored in float16 (an export with --weights float16). Returns the paths of the weights it
    held no value for (a trained weight is never exactly its initial value); TensorFlow's errors (a weight
    of another shape, no such checkpoint) pass through."""
    import tensorflow as tf

    half = stored_dtype(prefix, key) == "float16"
    target = stored_in(network, "float16") if half else network
    before = [w.numpy() for w in target.weights]
    tf.train.Checkpoint(**{key: target}).restore(prefix).expect_partial()
    unchanged = [w.path for w, old in zip(target.weights, before) if np.array_equal(w.numpy(), old)]
    if half:
        network.set_weights([w.astype(np.float32) for w in target.get_weights()])
    return unchanged


def stored_dtype(prefix: str, key: str) -> str:
    """How a checkpoint stores the network under `key`: "float16" when any of its weights is float16."""
    import tensorflow as tf

    dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    return "float16" if any(name.startswith(f"{key}/") and dtype == tf.float16
                            for name, dtype in dtypes.items()) else "float32"
