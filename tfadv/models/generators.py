"""Perturbation generators and the x -> x_hat models built from them.

Generators are functional Keras models from images [B, H, W, C] to an output
of the same spatial size. The seed found a U-Net (encoder features
concatenated into the decoder at every stage) much better than a plain
conv/deconv autoencoder; both are here, plus the ResNet generator of GAP
(Poursaeed et al. 2018). Adding one: a builder decorated with
``@register_generator("name")`` (here or in a module ``tfadv.models`` imports)
and its test.

``perturbation_model`` wraps a generator into the model that is trained and
exported, mapping x in [0, 1] to x_hat in [0, 1]:

* ``mode="thresholded"`` (seed approach B): generator -> tanh delta, scaled to
  the norm budget by :class:`tfadv.budgets.NormBoundedPerturbation` (budget
  rule ``"threshold"``).
* ``mode="joint"`` (seed approach A): generator -> sigmoid, the output *is*
  x_hat; the magnitude is only penalised by the loss, not bounded.
"""

import keras
from keras import layers

from tfadv.budgets import NormBoundedPerturbation, check_budget
from tfadv.errors import ConfigError
from tfadv.registry import Registry

GENERATORS = Registry("generator")
# Decorator: registers a builder ``fn(input_shape, out_channels, ..., output_activation, name) -> keras.Model``
# under a name (the one registration point; configs name it in ``generator``).
register_generator = GENERATORS.register


def _check(input_shape, depth=None):
    if (not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3
            or not all(isinstance(d, int) and d > 0 for d in input_shape)):
        raise ConfigError(f"input_shape must be (height, width, channels) of positive ints. "
                          f"Received: input_shape={input_shape!r}")
    if depth is not None and (not isinstance(depth, int) or not 1 <= depth <= 6):
        raise ConfigError(f"depth must be an int in [1, 6]. Received: depth={depth!r}")
    return tuple(input_shape)


def _conv_block(x, filters, batch_norm, name):
    for i in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def _pad_to_multiple(x, multiple, name):
    """Zero-pads H and W up to a multiple of ``multiple``; returns (x, crop) to undo it at the end."""
    h, w = x.shape[1], x.shape[2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return x, None
    pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    return layers.ZeroPadding2D(pad, name=f"{name}_pad")(x), pad


def _encoder_decoder(input_shape, out_channels, depth, filters, max_filters, output_activation, batch_norm,
                     skips, name):
    input_shape = _check(input_shape, depth)
    if not isinstance(filters, int) or filters < 1:
        raise ConfigError(f"filters must be a positive int. Received: filters={filters!r}")
    out_channels = out_channels or input_shape[-1]
    inputs = keras.Input(input_shape, name="images")
    x, pad = _pad_to_multiple(inputs, 2**depth, name)
    saved = []
    for level in range(depth):
        x = _conv_block(x, min(filters * 2**level, max_filters), batch_norm, f"down{level}")  # [H/2^l, W/2^l]
        saved.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = _conv_block(x, min(filters * 2**depth, max_filters), batch_norm, "bottleneck")  # [H/2^d, W/2^d]
    for level in reversed(range(depth)):
        width = min(filters * 2**level, max_filters)
        x = layers.Conv2DTranspose(width, 2, strides=2, name=f"up{level}_deconv")(x)  # doubles H, W
        if skips:
            x = layers.Concatenate(name=f"up{level}_skip")([x, saved[level]])
        x = _conv_block(x, width, batch_norm, f"up{level}")
    x = layers.Conv2D(out_channels, 1, name="head")(x)
    if pad:
        x = layers.Cropping2D(pad, name="crop")(x)
    outputs = layers.Activation(output_activation, dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


MIN_BOTTLENECK = 4  # pixels on the shorter side of a fitted U-Net's bottleneck


def fitting_depth(image_shape) -> int:
    """The U-Net / autoencoder ``depth`` for (H, W, C) images: the most 2x downsamplings (1 to 6) that leave at
    least MIN_BOTTLENECK pixels on the bottleneck's shorter side. It gives the depths the recipes chose by hand:
    2 for 28x28 (Fashion-MNIST), 3 for 32x32 (CIFAR-10); 4 for 64x64 and 96x96, 5 for 224x224."""
    side = min(_check(tuple(image_shape))[:2])
    depth = 1
    while depth < 6 and side // 2 ** (depth + 1) >= MIN_BOTTLENECK:
        depth += 1
    return depth


@register_generator("unet")
def unet(input_shape=(28, 28, 1), out_channels=None, depth=2, filters=32, max_filters=256,
         output_activation="tanh", batch_norm=True, name="unet"):
    """U-Net (Ronneberger et al. 2015): encoder features concatenated into the decoder at every stage.

    Args:
        input_shape: (H, W, C); sizes not divisible by 2**depth are zero-padded and cropped back.
        out_channels: output channels (default: C).
        depth: number of 2x downsamplings.
        filters: channels at full resolution, doubled per level, capped at ``max_filters``.
        output_activation: "tanh" for a delta, "sigmoid" for an image, "linear".
        batch_norm: batch normalisation after every conv (the seed added it).
    """
    return _encoder_decoder(input_shape, out_channels, depth, filters, max_filters, output_activation,
                            batch_norm, skips=True, name=name)


@register_generator("autoencoder")
def autoencoder(input_shape=(28, 28, 1), out_channels=None, depth=2, filters=32, max_filters=256,
                output_activation="tanh", batch_norm=True, name="autoencoder"):
    """Plain conv/deconv autoencoder: the U-Net without its skip connections (the seed's baseline)."""
    return _encoder_decoder(input_shape, out_channels, depth, filters, max_filters, output_activation,
                            batch_norm, skips=False, name=name)


@register_generator("resnet_generator")
def resnet_generator(input_shape=(28, 28, 1), out_channels=None, filters=32, blocks=3, downsamplings=2,
                     output_activation="tanh", name="resnet_generator"):
    """The ResNet generator of GAP / Johnson et al.: 7x7 stem, strided downsampling, residual blocks, upsampling."""
    input_shape = _check(input_shape, downsamplings)
    out_channels = out_channels or input_shape[-1]
    inputs = keras.Input(input_shape, name="images")
    x, pad = _pad_to_multiple(inputs, 2**downsamplings, name)

    def cbr(x, f, k, s, n):
        x = layers.Conv2D(f, k, strides=s, padding="same", use_bias=False, name=f"{n}_conv")(x)
        return layers.ReLU(name=f"{n}_relu")(layers.BatchNormalization(name=f"{n}_bn")(x))

    x = cbr(x, filters, 7, 1, "stem")
    for i in range(downsamplings):
        x = cbr(x, filters * 2**(i + 1), 3, 2, f"down{i}")
    width = filters * 2**downsamplings
    for b in range(blocks):
        y = cbr(x, width, 3, 1, f"res{b}_a")
        y = layers.BatchNormalization(name=f"res{b}_b_bn")(
            layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"res{b}_b_conv")(y))
        x = layers.Add(name=f"res{b}_add")([x, y])
    for i in reversed(range(downsamplings)):
        x = layers.Conv2DTranspose(filters * 2**i, 3, strides=2, padding="same", name=f"up{i}_deconv")(x)
        x = layers.ReLU(name=f"up{i}_relu")(layers.BatchNormalization(name=f"up{i}_bn")(x))
    x = layers.Conv2D(out_channels, 7, padding="same", name="head")(x)
    if pad:
        x = layers.Cropping2D(pad, name="crop")(x)
    return keras.Model(inputs, layers.Activation(output_activation, dtype="float32", name="output")(x), name=name)


PERTURBATION_MODES = ("thresholded", "joint")  # per image: perturbation_model
ATTACK_MODES = PERTURBATION_MODES + ("universal",)  # a perturbation experiment's mode (universal: one U)


def build_generator(name: str, **kwargs) -> keras.Model:
    """Builds the generator registered as ``name``."""
    builder = GENERATORS.lookup(name)
    try:
        return builder(**kwargs)
    except TypeError as e:
        raise ConfigError(f"Bad arguments for generator {name!r}: {e}") from None


def perturbation_model(generator: keras.Model, mode: str = "thresholded", norm: str = "l2", eps: float = 2.4,
                       name: str = "perturbation") -> keras.Model:
    """The x -> x_hat model around ``generator`` (see module doc); this is what the zoo exports."""
    if mode not in PERTURBATION_MODES:
        raise ConfigError(f"mode must be one of {PERTURBATION_MODES}. Received: mode={mode!r}")
    inputs = keras.Input(generator.input_shape[1:], name="images")
    out = generator(inputs)
    if mode == "thresholded":
        budget = NormBoundedPerturbation(norm, check_budget(norm, eps), rule="threshold", dtype="float32",
                                         name="budget")
        x_hat = budget([inputs, out])
    else:
        x_hat = out
    return keras.Model(inputs, x_hat, name=name)
