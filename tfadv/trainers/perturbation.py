"""Trainers for per-image perturbations: ``keras.Model`` subclasses with custom train/test steps.

``PerturbationTrainer`` trains an x -> x_hat model (see
:func:`tfadv.models.generators.perturbation_model`) against a frozen
classifier. Only the generator's weights are updated. Its loss is

    adversarial_loss(classifier(x_hat))  +  magnitude_weight * ||x_hat - x||_p

which covers both approaches of the seed:

* thresholded (approach B): the model bounds delta by construction; use
  ``magnitude_weight=0`` (classification loss only);
* joint (approach A): the model outputs x_hat directly; ``magnitude_weight > 0``.

``GANPerturbationTrainer`` adds the seed's realism variant: a discriminator,
trained on real images with its own optimizer in the same ``train_step``, whose
"looks real" loss replaces (or joins) the magnitude term.

Call the trainer once on a batch before ``fit``/``save`` (a custom train_step
never calls ``self(x)``, which would leave it unbuilt).
"""

import keras
import tensorflow as tf

from tfadv.budgets import NORMS, per_example_norm
from tfadv.callbacks import NONFINITE_METRIC
from tfadv.distribute import minimize, synced_results
from tfadv.errors import ConfigError
from tfadv.inputs import check_images
from tfadv.losses import LOSSES, adversarial_loss, check_loss
from tfadv.metrics import AttackMetrics, MaxMetric
from tfadv.models.universal import UniversalPerturbation
from tfadv.serialization import NestedModels
from tfadv.trainers.two_player import SecondOptimizerMixin


def batch_of(data):
    """(images, labels) of a step's data: ``fit`` passes (x, y), ``train_on_batch`` (x, y, sample_weight)."""
    x, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x, labels


def _freeze(classifier):
    classifier.trainable = False
    return classifier


def _generator_view(attacker):
    """x -> [x_hat, the generator's raw output] sharing the attacker's layers, or None.

    For a functional attacker with one nested generator (what
    tfadv.models.perturbation_model builds): one pass gives both.
    """
    nested = [layer for layer in getattr(attacker, "layers", []) if isinstance(layer, keras.Model)]
    if len(nested) != 1 or not getattr(attacker, "outputs", None):
        return None
    for node in nested[0]._inbound_nodes:  # noqa: SLF001 - the generator's calls; one lies in this graph
        try:
            return keras.Model(attacker.inputs, [attacker.outputs[0], node.output_tensors[0]])
        except ValueError:  # a call in another model's graph
            continue
    return None


def raw_output_attack(attacker):
    """``attack(x, training) -> (x_hat, raw)``: the attacker's images and its generator's raw output.

    The budget turns a non-finite raw output into a zero perturbation, so a
    generator gone NaN shows only in ``raw``. A universal perturbation's raw
    output is its generator on the fixed noise; an attacker of another shape
    is checked on x_hat itself.
    """
    if isinstance(attacker, UniversalPerturbation):
        return lambda x, training=False: (attacker(x, training=training),
                                          attacker.generator(attacker.noise, training=False))
    view = _generator_view(attacker)
    if view is None:
        def attack(x, training=False):
            x_hat = attacker(x, training=training)
            return x_hat, x_hat

        return attack
    return lambda x, training=False: tuple(view(x, training=training))


def nonfinite_count(raw):
    """Number of NaN / Inf entries of ``raw``, as float32."""
    return tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(raw)), tf.float32))


def generator_check():
    """The tracker of :func:`nonfinite_count` that tfadv.callbacks.FailOnNonFinite watches."""
    return MaxMetric(name=NONFINITE_METRIC)


@keras.saving.register_keras_serializable(package="tfadv")
class PerturbationTrainer(NestedModels, keras.Model):
    """Trains ``attacker`` (x -> x_hat) to fool the frozen ``classifier``.

    Args:
        attacker: Keras model x -> x_hat in [0, 1].
        classifier: Keras model or layer x -> logits (frozen here), e.g. a
            ``keras.layers.TFSMLayer`` over a zoo SavedModel.
        loss: "untargeted", "least_likely", "targeted" or "cw" (see tfadv.losses).
        target_class: class to send every image to (targeted; optional for cw).
        magnitude_weight: lambda of the joint loss (0: classification only).
        magnitude_norm: "l2" or "linf", the norm the magnitude term measures.
        loss_settings: the loss's own settings (e.g. ``{"kappa": 5.0}``, cw's margin); missing ones take the
            loss's defaults.
    """

    NESTED_MODELS = ("attacker", "classifier", "discriminator")

    def __init__(self, attacker, classifier, loss="untargeted", target_class=None, magnitude_weight=0.0,
                 magnitude_norm="l2", loss_settings=None, **kwargs):
        super().__init__(**kwargs)
        check_loss(loss, target_class)
        loss_settings = LOSSES[loss].complete(loss_settings)  # checked once, here
        if magnitude_norm not in NORMS:
            raise ConfigError(f"magnitude_norm must be one of {NORMS}. Received: {magnitude_norm!r}")
        if not magnitude_weight >= 0:
            raise ConfigError(f"magnitude_weight must be >= 0. Received: {magnitude_weight!r}")
        self.attacker = attacker
        self._attack = raw_output_attack(attacker)  # a plain function: not tracked, not saved
        self.classifier = _freeze(classifier)
        self.loss_kind, self.target_class = loss, target_class
        self.magnitude_weight, self.magnitude_norm = float(magnitude_weight), magnitude_norm
        self.loss_settings = loss_settings
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.attack_metrics = AttackMetrics(targeted=target_class is not None)
        self.nonfinite_tracker = generator_check()

    def call(self, images, training=False):
        if tf.executing_eagerly():  # a user's attack(x): refuse 0-255 or NaN pixels as pgd() and the zoo do
            images = check_images(images, name="images")
        return self.attacker(images, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker] + self.attack_metrics.trackers + [self.nonfinite_tracker]

    def generator_loss(self, x, x_hat, labels, clean_logits):
        """(total loss, adversarial logits): classification term plus the weighted magnitude term."""
        logits = self.classifier(x_hat, training=False)
        per_example = adversarial_loss(self.loss_kind, logits, labels, clean_logits, self.target_class,
                                       settings=self.loss_settings)
        if self.magnitude_weight:
            per_example += self.magnitude_weight * per_example_norm(x_hat - x, self.magnitude_norm)
        return tf.reduce_mean(per_example), logits

    def training_loss(self, x, x_hat, labels, clean_logits):
        """(loss, logits) a training step minimises: :meth:`generator_loss` (a subclass may show the classifier
        other images while training, e.g. tfadv.trainers.transfer's input diversity)."""
        return self.generator_loss(x, x_hat, labels, clean_logits)

    def train_step(self, data):
        x, labels = batch_of(data)
        clean_logits = self.classifier(x, training=False)
        with tf.GradientTape() as tape:
            x_hat, raw = self._attack(x, training=True)
            loss, logits = self.training_loss(x, x_hat, labels, clean_logits)
        minimize(self.optimizer, tape, loss, self.attacker.trainable_variables)
        return self._update_metrics(loss, x, x_hat, raw, labels, clean_logits, logits)

    def test_step(self, data):
        x, labels = batch_of(data)
        clean_logits = self.classifier(x, training=False)
        x_hat, raw = self._attack(x, training=False)
        loss, logits = self.generator_loss(x, x_hat, labels, clean_logits)
        return self._update_metrics(loss, x, x_hat, raw, labels, clean_logits, logits)

    def _update_metrics(self, loss, x, x_hat, raw, labels, clean_logits, logits, **extra):
        self.loss_tracker.update_state(loss)
        self.nonfinite_tracker.update_state(nonfinite_count(raw))
        self.attack_metrics.update(x, x_hat, labels, clean_logits, logits, self.target_class)
        return {**synced_results(self.metrics), **extra}

    def get_config(self):
        return {
            **super().get_config(),
            "attacker": keras.saving.serialize_keras_object(self.attacker),
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "loss": self.loss_kind, "target_class": self.target_class,
            "magnitude_weight": self.magnitude_weight, "magnitude_norm": self.magnitude_norm,
            "loss_settings": dict(self.loss_settings),
        }


@keras.saving.register_keras_serializable(package="tfadv")
class GANPerturbationTrainer(SecondOptimizerMixin, PerturbationTrainer):
    """The seed's realism variant: a discriminator's "looks real" loss in place of (or beside) the magnitude term.

    Each ``train_step`` updates the discriminator (real x vs generated x_hat,
    ``d_optimizer``) and the generator (classification + ``realism_weight`` *
    non-saturating GAN loss + optional magnitude term, ``optimizer``). Both
    optimizers' states survive ``save`` / ``load_model``.
    """

    SECOND_OPTIMIZER = "d_optimizer"

    def __init__(self, attacker, classifier, discriminator, realism_weight=1.0, **kwargs):
        super().__init__(attacker, classifier, **kwargs)
        if not realism_weight >= 0:
            raise ConfigError(f"realism_weight must be >= 0. Received: {realism_weight!r}")
        self.discriminator, self.realism_weight = discriminator, float(realism_weight)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")

    @property
    def metrics(self):
        return super().metrics + [self.d_loss_tracker]

    def first_player_variables(self):
        return self.attacker.trainable_variables

    def second_player_variables(self):
        return self.discriminator.trainable_variables

    def _bce(self, logits, real: bool):
        labels = tf.ones_like(logits) if real else tf.zeros_like(logits)
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))

    def train_step(self, data):
        x, labels = batch_of(data)
        clean_logits = self.classifier(x, training=False)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            x_hat, raw = self._attack(x, training=True)
            d_real = self.discriminator(x, training=True)
            d_fake = self.discriminator(x_hat, training=True)
            d_loss = self._bce(d_real, True) + self._bce(d_fake, False)
            cls_loss, logits = self.generator_loss(x, x_hat, labels, clean_logits)
            loss = cls_loss + self.realism_weight * self._bce(d_fake, True)
        minimize(self.optimizer, g_tape, loss, self.first_player_variables())
        minimize(self.d_optimizer, d_tape, d_loss, self.second_player_variables())
        self.d_loss_tracker.update_state(d_loss)
        return self._update_metrics(loss, x, x_hat, raw, labels, clean_logits, logits)

    def test_step(self, data):
        """The base class's test step plus the discriminator's loss, from one pass of the attacker.

        The loss reported is the base class's (classification + magnitude, no
        realism term), as before; ``d_loss`` is the discriminator's on (x, x_hat).
        """
        x, labels = batch_of(data)
        clean_logits = self.classifier(x, training=False)
        x_hat, raw = self._attack(x, training=False)
        d_real, d_fake = self.discriminator(x, training=False), self.discriminator(x_hat, training=False)
        self.d_loss_tracker.update_state(self._bce(d_real, True) + self._bce(d_fake, False))
        loss, logits = self.generator_loss(x, x_hat, labels, clean_logits)
        return self._update_metrics(loss, x, x_hat, raw, labels, clean_logits, logits)

    def get_config(self):
        return {**super().get_config(), "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "realism_weight": self.realism_weight}
