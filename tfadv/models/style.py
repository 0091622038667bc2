"""Arbitrary style transfer: a frozen feature extractor, the seed's Gram-stack network, and AdaIN.

Images are float32 [B, H, W, 3] in [0, 1] at every boundary. The feature
extractor (the networks' encoder and the losses' loss network) is chosen by
``encoder``: "vgg16" (ImageNet VGG16, with its own preprocessing inside,
``ImagePreprocess("caffe")``) or "random_vgg19" (a seeded, normalised
random-weight encoder that needs no download: :mod:`tfadv.models.random_encoder`).

The seed's network (``gram_stack_network``): Gram matrices of the style
image's pool1..pool4 features, each resized to S x S and repeated 32 times
(S x S x 128); the content image's relu3 features resized to S x S (x 256);
both concatenated, instance-normalised, and decoded by a high-capacity
deconvolution network (instance normalisation, as in fast style transfer) to an
S x S x 3 image. AdaIN (Huang & Belongie 2017, ``adain_network``) is the
competitive baseline the seed lacked: VGG encoder to relu4_1, adaptive
instance normalisation, a trained mirror decoder, and alpha blending.

"relu3 after pooling" in the seed is ambiguous; tfadv taps ``block3_conv3``
(relu3_3, as Johnson et al. use for content) by default, configurable with
``content_layer``.
"""

import keras
from keras import layers, ops

from tfadv.errors import ConfigError
from tfadv.models.applications import build_application
from tfadv.models.layers import ImagePreprocess
from tfadv.models.random_encoder import RANDOM_WIDTH, random_vgg19

# Keras-applications layer names of the taps (pool_i = block{i}_pool; relu{i}_1 = block{i}_conv1).
STYLE_LAYERS = ("block1_pool", "block2_pool", "block3_pool", "block4_pool")
CONTENT_LAYER = "block3_conv3"
ADAIN_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")
ENCODERS = ("vgg16", "random_vgg19")


def vgg_features(layer_names, input_shape=(256, 256, 3), weights=None, name="vgg_features") -> keras.Model:
    """Frozen VGG16 from [0, 1] images to a dict {layer name: features}.

    Args:
        layer_names: keras.applications VGG16 layer names to expose.
        weights: "imagenet" (downloads; needs network), a local weights file
            (e.g. vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5), or None:
            random weights, for tests only. A loud warning says so, because
            perceptual losses of a random VGG mean nothing.
    """
    vgg = build_application(
        "VGG16", weights, "VGG16 feature extractor has RANDOM weights (weights=None): style and content losses "
        "are not perceptual. Use weights='imagenet' or a local VGG16 weights file for real training.",
        setting="vgg_weights", include_top=False, input_shape=tuple(input_shape))
    vgg.trainable = False
    return _tapped(vgg, layer_names, "VGG16", "vgg16_taps", input_shape, name,
                   ImagePreprocess("caffe", name="vgg_preprocess"))


def _tapped(body, layer_names, what, tap_name, input_shape, name, preprocess=None) -> keras.Model:
    """A frozen ``body`` as a model from [0, 1] images (through ``preprocess``, if any) to {layer name: features},
    unknown layer names refused in one line naming the ``what`` network's layers."""
    known = [layer.name for layer in body.layers]
    unknown = [n for n in layer_names if n not in known]
    if unknown:
        raise ConfigError(f"Unknown {what} layer(s) {unknown}. Known: {', '.join(known)}.")
    inputs = keras.Input(tuple(input_shape), name="images")
    # Outputs in sorted key order: Keras flattens dict outputs sorted, and a SavedModel export of a model
    # consuming a dict in another order wires the wrong tensors (measured: Keras 3.15).
    tap = keras.Model(body.input, {n: body.get_layer(n).output for n in sorted(layer_names)}, name=tap_name)
    tap.trainable = False
    return keras.Model(inputs, tap(preprocess(inputs) if preprocess else inputs), name=name)


def style_features(layer_names, input_shape=(256, 256, 3), encoder="vgg16", vgg_weights=None,
                   encoder_kwargs=None, name="style_features") -> keras.Model:
    """The frozen encoder of a style config, from [0, 1] images to a dict {layer name: features}.

    Args:
        encoder: "vgg16" (weights from ``vgg_weights``, see :func:`vgg_features`) or "random_vgg19"
            (:func:`tfadv.models.random_encoder.random_vgg19`, built from ``encoder_kwargs``: seed, width).
    """
    if encoder == "vgg16":
        return vgg_features(layer_names, input_shape, vgg_weights, name=name)
    if encoder != "random_vgg19":
        raise ConfigError(f"encoder must be one of {ENCODERS}. Received: encoder={encoder!r}")
    body = random_vgg19(tuple(input_shape), **(encoder_kwargs or {}))
    return _tapped(body, layer_names, "random_vgg19", "random_taps", input_shape, name)


def gram_matrix(features):
    """[B, H, W, C] -> [B, C, C] Gram matrix, normalised by H * W."""
    shape = ops.shape(features)
    flat = ops.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))
    return ops.matmul(ops.transpose(flat, (0, 2, 1)), flat) / ops.cast(shape[1] * shape[2], features.dtype)


@keras.saving.register_keras_serializable(package="tfadv")
class GramStack(keras.layers.Layer):
    """Gram matrix of features, resized to ``size`` x ``size`` and repeated ``repeats`` times: [B, S, S, repeats]."""

    def __init__(self, size=256, repeats=32, **kwargs):
        super().__init__(**kwargs)
        self.size, self.repeats = int(size), int(repeats)

    def call(self, features):
        gram = gram_matrix(features)[..., None]  # [B, C, C, 1]
        resized = ops.image.resize(gram, (self.size, self.size), interpolation="bilinear")
        return ops.tile(resized, (1, 1, 1, self.repeats))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.repeats)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "repeats": self.repeats}


@keras.saving.register_keras_serializable(package="tfadv")
class AdaIN(keras.layers.Layer):
    """Adaptive instance normalisation: content features renormalised to the style's channel mean and std.

    ``alpha`` blends with the plain content features (1: full style, 0: none).
    """

    def __init__(self, alpha=1.0, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1]. Received: alpha={alpha!r}")
        self.alpha, self.epsilon = float(alpha), float(epsilon)

    def call(self, inputs):
        content, style = inputs
        c_mean, c_var = ops.moments(content, axes=(1, 2), keepdims=True)
        s_mean, s_var = ops.moments(style, axes=(1, 2), keepdims=True)
        normalised = (content - c_mean) / ops.sqrt(c_var + self.epsilon)
        stylised = normalised * ops.sqrt(s_var + self.epsilon) + s_mean
        return self.alpha * stylised + (1.0 - self.alpha) * content

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "epsilon": self.epsilon}


def _check_size(size, multiple):
    if not isinstance(size, int) or size < multiple or size % multiple:
        raise ConfigError(f"size must be a positive multiple of {multiple}. Received: size={size!r}")


def gram_stack_network(size=256, repeats=32, filters=(256, 128, 64), content_layer=CONTENT_LAYER,
                       vgg_weights=None, encoder="vgg16", encoder_kwargs=None,
                       name="gram_stack_style") -> keras.Model:
    """The seed's network: (content, style) [0, 1] images -> stylised [0, 1] image, all S x S.

    Args:
        size: S, the image side (the seed: 256). Must be a multiple of 16.
        repeats: copies of each resized Gram matrix (the seed: 32, so 4 x 32 = 128 channels).
        filters: widths of the decoding convolution stack ("high capacity": many filters).
        content_layer: VGG16 layer whose features carry the content (resized to S x S).
        vgg_weights, encoder, encoder_kwargs: the encoder (see :func:`style_features`).
    """
    _check_size(size, 16)
    if not filters or not all(isinstance(f, int) and f > 0 for f in filters):
        raise ConfigError(f"filters must be a non-empty list of positive ints. Received: filters={filters!r}")
    vgg = style_features(STYLE_LAYERS + (content_layer,), (size, size, 3), encoder, vgg_weights, encoder_kwargs,
                         name="vgg_features")
    content = keras.Input((size, size, 3), name="content")
    style = keras.Input((size, size, 3), name="style")
    style_feats, content_feats = vgg(style), vgg(content)
    stacks = [GramStack(size, repeats, name=f"gram_{n}")(style_feats[n]) for n in STYLE_LAYERS]  # 4 x [B,S,S,r]
    content_map = layers.Resizing(size, size, interpolation="bilinear", name="content_resize")(
        content_feats[content_layer])  # [B, S, S, 256] (VGG16)
    x = layers.Concatenate(name="latent")(stacks + [content_map])  # [B, S, S, 4r + 256]
    # Gram entries of VGG features reach 1e4-1e6: instance-normalise the latent, or the decoder works on
    # values so large that float32 rounding differs between eager and exported graphs (measured: outputs
    # differing by 0.8 in [0, 1] with batch norm, whose moving statistics start at 0 / 1).
    x = layers.GroupNormalization(groups=-1, name="latent_in")(x)
    for i, width in enumerate(filters):
        x = layers.Conv2DTranspose(width, 3, padding="same", name=f"deconv{i}")(x)
        x = layers.ReLU(name=f"deconv{i}_relu")(layers.GroupNormalization(groups=-1, name=f"deconv{i}_in")(x))
    out = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="image")(x)
    return keras.Model({"content": content, "style": style}, out, name=name)


def adain_network(size=256, alpha=1.0, vgg_weights=None, encoder="vgg16", encoder_kwargs=None,
                  decoder_width=None, name="adain_style") -> keras.Model:
    """AdaIN: the encoder to relu4_1 for both images, AdaIN, then a mirror decoder to a [0, 1] image.

    ``alpha`` (in [0, 1]) is a config value of the AdaIN layer: export a copy
    with another alpha by rebuilding with the trained decoder weights.
    ``decoder_width`` scales the decoder's channels (default: the encoder's
    ``width``, 1.0 for VGG16), so a slim encoder gets a mirror-sized decoder.
    """
    _check_size(size, 16 if encoder == "random_vgg19" else 8)
    if decoder_width is None:
        decoder_width = (encoder_kwargs or {}).get("width", RANDOM_WIDTH) if encoder == "random_vgg19" else 1.0
    features = style_features(("block4_conv1",), (size, size, 3), encoder, vgg_weights, encoder_kwargs,
                              name="adain_encoder")
    content = keras.Input((size, size, 3), name="content")
    style = keras.Input((size, size, 3), name="style")
    t = AdaIN(alpha, name="adain")([features(content)["block4_conv1"], features(style)["block4_conv1"]])
    decoder = _adain_decoder(t.shape[1:], decoder_width)
    return keras.Model({"content": content, "style": style}, decoder(t), name=name)


def _adain_decoder(feature_shape, width=1.0):
    """Huang & Belongie's decoder, mirroring VGG up to relu4_1: convs and three 2x nearest upsamplings
    (``width`` scales every convolution's channels)."""
    if not 0 < width <= 4:
        raise ConfigError(f"decoder_width must be in (0, 4]. Received: decoder_width={width!r}")
    plan = [step if step == "up" else max(4, round(step * width))
            for step in (256, "up", 256, 256, 256, 128, "up", 128, 64, "up", 64)]
    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    for i, step in enumerate(plan):
        if step == "up":
            x = layers.UpSampling2D(2, name=f"dec{i}_up")(x)
        else:
            x = layers.Conv2D(step, 3, padding="same", activation="relu", name=f"dec{i}_conv")(x)
    out = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="image")(x)
    return keras.Model(inputs, out, name="adain_decoder")
