"""Style-transfer trainer: perceptual content + style losses through a frozen encoder (VGG16 or a random one).

``method="gram"`` (the seed): content loss = mean squared error of
``content_layer`` features (output vs content image); style loss = sum over
pool1..pool4 of the mean squared error between Gram matrices (output vs style
image). ``method="adain"`` (Huang & Belongie): content loss against the AdaIN
target at relu4_1; style loss on channel means and standard deviations at
relu1_1..relu4_1. An optional total-variation term smooths the output, and an
optional identity term (the mean absolute pixel error of the network given the
content image as its own style, as in Park & Lee's SANet) trains the decoder to
invert the encoder, which is what Li et al.'s universal style transfer trains
its decoders for alone: a random encoder's perceptual losses give a decoder
little to learn from on a CPU budget, a pixel target gives it plenty.
"""

import keras
import tensorflow as tf
from keras import ops

from tfadv.distribute import minimize, synced_results
from tfadv.errors import ConfigError
from tfadv.serialization import NestedModels
from tfadv.models.style import ADAIN_LAYERS, CONTENT_LAYER, STYLE_LAYERS, AdaIN, gram_matrix, style_features

METHODS = ("gram", "adain")


def _mse(a, b):
    return ops.mean(ops.square(a - b))


def gram_style_loss(out_feats, style_feats, layer_names=STYLE_LAYERS):
    """Sum over layers of the mean squared difference of Gram matrices."""
    return sum(_mse(gram_matrix(out_feats[n]), gram_matrix(style_feats[n])) for n in layer_names)


def statistics_style_loss(out_feats, style_feats, layer_names=ADAIN_LAYERS):
    """Sum over layers of the squared differences of channel means and standard deviations (AdaIN)."""
    total = 0.0
    for n in layer_names:
        o_mean, o_var = ops.moments(out_feats[n], axes=(1, 2))
        s_mean, s_var = ops.moments(style_feats[n], axes=(1, 2))
        total += _mse(o_mean, s_mean) + _mse(ops.sqrt(o_var + 1e-5), ops.sqrt(s_var + 1e-5))
    return total


def total_variation(images):
    """Mean absolute difference between neighbouring pixels."""
    return ops.mean(ops.abs(images[:, 1:] - images[:, :-1])) + ops.mean(ops.abs(images[:, :, 1:] - images[:, :, :-1]))


@keras.saving.register_keras_serializable(package="tfadv")
class StyleTransferTrainer(NestedModels, keras.Model):
    """Trains ``network`` ({"content", "style"} -> image) on (content, style) batches.

    Args:
        network: the style network (its VGG encoder, if any, is frozen).
        method: "gram" or "adain" (which losses; see module doc).
        content_weight, style_weight, tv_weight, identity_weight: loss weights.
        vgg_weights, encoder, encoder_kwargs: the loss network (see :func:`style_features`); the same
            encoder the network embeds, so that its features and the losses speak of the same things.
        content_layer: encoder layer of the gram method's content loss.
    """

    NESTED_MODELS = ("network",)

    def __init__(self, network, method="gram", content_weight=1.0, style_weight=10.0, tv_weight=0.0,
                 vgg_weights=None, content_layer=CONTENT_LAYER, encoder="vgg16", encoder_kwargs=None,
                 identity_weight=0.0, **kwargs):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}. Received: method={method!r}")
        if min(content_weight, style_weight, tv_weight, identity_weight) < 0:
            raise ConfigError("content_weight, style_weight, tv_weight and identity_weight must be >= 0. Received: "
                              f"{content_weight!r}, {style_weight!r}, {tv_weight!r}, {identity_weight!r}")
        self.network, self.method = network, method
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        self.identity_weight = identity_weight
        self.vgg_weights, self.content_layer = vgg_weights, content_layer
        self.encoder, self.encoder_kwargs = encoder, dict(encoder_kwargs or {})
        size = network.output_shape[1:]
        taps = STYLE_LAYERS + (content_layer,) if method == "gram" else ADAIN_LAYERS
        self.loss_net = style_features(tuple(dict.fromkeys(taps)), size, encoder, vgg_weights, self.encoder_kwargs,
                                       name="loss_vgg")
        names = ("loss", "content_loss", "style_loss", "tv_loss") + (("identity_loss",) if identity_weight else ())
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def losses_of(self, content, style, output):
        """(content_loss, style_loss, tv_loss) for one batch."""
        out_feats, style_feats, content_feats = (self._features(images) for images in (output, style, content))
        if self.method == "gram":
            content_loss = _mse(out_feats[self.content_layer], content_feats[self.content_layer])
            style_loss = gram_style_loss(out_feats, style_feats)
        else:
            target = AdaIN(1.0, dtype="float32")([content_feats["block4_conv1"], style_feats["block4_conv1"]])
            content_loss = _mse(out_feats["block4_conv1"], tf.stop_gradient(target))
            style_loss = statistics_style_loss(out_feats, style_feats)
        return content_loss, style_loss, total_variation(tf.cast(output, tf.float32))

    def _features(self, images):
        """The loss network's features in float32: Gram matrices and squared errors overflow float16."""
        return {name: tf.cast(value, tf.float32) for name, value in self.loss_net(images).items()}

    def _step(self, data, training):
        content, style = data
        output = self.network({"content": content, "style": style}, training=training)
        content_loss, style_loss, tv_loss = self.losses_of(content, style, output)
        loss = self.content_weight * content_loss + self.style_weight * style_loss + self.tv_weight * tv_loss
        parts = {"content_loss": content_loss, "style_loss": style_loss, "tv_loss": tv_loss}
        if self.identity_weight:
            itself = self.network({"content": content, "style": content}, training=training)
            parts["identity_loss"] = ops.mean(ops.abs(tf.cast(itself, tf.float32) - tf.cast(content, tf.float32)))
            loss += self.identity_weight * parts["identity_loss"]
        return loss, parts

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, parts = self._step(data, training=True)
        minimize(self.optimizer, tape, loss, self.network.trainable_variables)
        return self._update(loss, parts)

    def test_step(self, data):
        return self._update(*self._step(data, training=False))

    def _update(self, loss, parts):
        self.trackers["loss"].update_state(loss)
        for name, value in parts.items():
            self.trackers[name].update_state(value)
        return synced_results(self.trackers.values())

    def get_config(self):
        return {**super().get_config(), "network": keras.saving.serialize_keras_object(self.network),
                "method": self.method, "content_weight": self.content_weight, "style_weight": self.style_weight,
                "tv_weight": self.tv_weight, "vgg_weights": self.vgg_weights, "content_layer": self.content_layer,
                "encoder": self.encoder, "encoder_kwargs": self.encoder_kwargs, "identity_weight": self.identity_weight}
