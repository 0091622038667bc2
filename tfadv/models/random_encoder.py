"""A loss network that needs no download: a VGG-19-shaped encoder with seeded random weights.

Style and texture losses do not need trained weights (He, Wang & Hopcroft,
NeurIPS 2016; Ustyuzhaninov et al., ICLR 2017): the Gram matrices of a random
network's features still describe a texture, provided no layer's activations
vanish or explode. So every convolution here is rescaled, layer after layer,
until each channel's mean activation on a fixed set of calibration images is
one: the per-layer normalisation Gatys et al. applied to VGG. The calibration
images are procedural (64 x 64 1/f "pink" colour noise, which has the power
spectrum of natural photographs) and drawn from the same seed as the weights,
so the encoder's weights are a pure function of ``(seed, width)``, the same at
every input size: rebuilding it from a config gives the same loss, a network
trained at 128 px runs at 512 px with the same encoder, and the weights also
travel inside every style network that embeds it.

On photographs the normalised activations are heavy-tailed all the same
(measured at relu4_1, width 0.25: mean 2.3, std 6.3, maximum 595 on four
photographs): edges a random filter happens to match compound through ten
layers. Those peaks dominate any squared-error loss and blow up a decoder's
gradients (an AdaIN decoder trained against the uncapped encoder never left a
flat grey output), so every activation is capped at ``CAP`` (six times the
calibrated mean, as ReLU6 caps), which is what the softmax smoothing of Wang et
al. (CVPR 2021) does for random ResNets by other means.

Layer names follow ``keras.applications.VGG19`` (``block3_conv3``,
``block4_pool``, ...), so the style networks and losses tap the same names
whichever encoder a config chooses. Pooling is average pooling, as Gatys et
al. recommend for synthesis. ``width`` scales every block's channels (1.0 is
VGG-19's 64..512); a slimmer encoder is what a CPU can train against.
"""

import keras
import numpy as np
from keras import layers

from tfadv.errors import ConfigError

# VGG-19 up to block 4 (the style networks tap nothing deeper): (channels, convolutions) per block.
_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4))
_CALIBRATION_IMAGES, _CALIBRATION_SIZE = 8, 64
CAP = 6.0  # activations are capped at this multiple of their calibrated mean of one
RANDOM_WIDTH = 0.25  # default channel multiplier: what a 2-core CPU trains against


def pink_noise_images(count: int, size: int, seed: int) -> np.ndarray:
    """``count`` [size, size, 3] float32 images in [0, 1] whose spectrum falls as 1/f, like photographs."""
    rng = np.random.default_rng(seed)
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    amplitude = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / size)
    spectrum = amplitude[None, :, :, None] * np.exp(2j * np.pi * rng.random((count, size, size, 3)))
    images = np.real(np.fft.ifft2(spectrum, axes=(1, 2)))
    images -= images.mean(axis=(1, 2, 3), keepdims=True)
    images /= 4 * images.std(axis=(1, 2, 3), keepdims=True)
    return np.clip(images + 0.5, 0.0, 1.0).astype(np.float32)


def random_vgg19(input_shape=(128, 128, 3), seed: int = 0, width: float = RANDOM_WIDTH, name: str = "random_vgg19"):
    """The normalised random encoder as a functional model from [0, 1] images to block4_pool.

    Args:
        input_shape: [H, W, 3], H and W multiples of 16.
        seed: draws the weights and the calibration images.
        width: channel multiplier of every block (VGG-19: 1.0).
    """
    height, wide, channels = input_shape
    if channels != 3 or height % 16 or wide % 16 or height <= 0 or wide <= 0:
        raise ConfigError(f"The random encoder takes [H, W, 3] images with H and W multiples of 16. "
                          f"Received: {tuple(input_shape)}")
    if not isinstance(width, (int, float)) or not 0 < width <= 1:
        raise ConfigError(f"width must be in (0, 1]. Received: width={width!r}")
    if not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ConfigError(f"seed must be an int in [0, 2^31). Received: seed={seed!r}")
    model, _ = _unnormalised(input_shape, seed, width, name, cap=CAP)
    calibration, calibration_convs = _unnormalised((_CALIBRATION_SIZE, _CALIBRATION_SIZE, 3), seed, width, name)
    _normalise(calibration, calibration_convs, pink_noise_images(_CALIBRATION_IMAGES, _CALIBRATION_SIZE, seed))
    model.set_weights(calibration.get_weights())
    model.trainable = False
    return model


def _unnormalised(input_shape, seed, width, name, cap=None):
    """The encoder with its seeded He-normal weights and zero biases, and its convolutions in order; ReLUs capped
    at ``cap`` (None: plain ReLUs, for calibration, where scaling commutes with the activation)."""
    inputs = keras.Input(tuple(input_shape), name="images")
    x = layers.Rescaling(2.0, offset=-1.0, name="centre")(inputs)  # [0, 1] -> [-1, 1]
    convs = []
    for block, (filters, count) in enumerate(_BLOCKS, start=1):
        for i in range(1, count + 1):
            conv = layers.Conv2D(max(1, round(filters * width)), 3, padding="same",
                                 kernel_initializer=keras.initializers.HeNormal(seed + 1000 * block + i),
                                 name=f"block{block}_conv{i}_linear")
            x = layers.ReLU(max_value=cap, name=f"block{block}_conv{i}")(conv(x))
            convs.append(conv)
        x = layers.AveragePooling2D(2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name=name), convs


def _normalise(model, convs, images):
    """Scales each convolution so that every channel's mean activation on ``images`` is one (in layer order,
    since scaling one layer scales what the next one sees; ReLU commutes with a positive scale)."""
    for conv in convs:
        activations = keras.ops.relu(keras.Model(model.input, conv.output)(images, training=False))
        means = np.asarray(keras.ops.mean(activations, axis=(0, 1, 2)))
        scale = np.where(means > 1e-8, 1.0 / np.maximum(means, 1e-8), 1.0).astype(np.float32)
        kernel, bias = conv.get_weights()
        conv.set_weights([kernel * scale, bias * scale])
