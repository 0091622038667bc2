"""What every defense shares: the trainer base (metrics, validation, the one classifier update), the clean /
adversarial cross-entropy mix, and the settings base classes each method's settings dataclass extends.

Clean and adversarial images go through the classifier as one batch, so its BatchNorm normalises (and tracks)
the statistics of the mix it is trained on. A method changes what it attacks with (``adversarial``) and, if its
objective differs, ``classifier_loss``; it never copies the classifier update.
"""

import dataclasses

import keras
import tensorflow as tf

from tfadv.distribute import minimize, synced_results
from tfadv.errors import ConfigError
from tfadv.metrics import AttackMetrics
from tfadv.serialization import NestedModels
from tfadv.trainers.perturbation import batch_of


def check_mix(adversarial_fraction) -> float:
    """The weight of the adversarial images in the classifier loss, checked to lie in [0, 1]."""
    if not 0.0 <= adversarial_fraction <= 1.0:
        raise ConfigError(f"adversarial_fraction must be in [0, 1]. Received: {adversarial_fraction!r}")
    return float(adversarial_fraction)


def mixed_cross_entropy(logits_clean, logits_adv, labels, adversarial_fraction):
    """(1 - f) * CE(clean) + f * CE(adversarial): the objective of the mixing methods (f = 1: Madry's pure form)."""
    ce = keras.losses.sparse_categorical_crossentropy
    return ((1.0 - adversarial_fraction) * tf.reduce_mean(ce(labels, logits_clean, from_logits=True))
            + adversarial_fraction * tf.reduce_mean(ce(labels, logits_adv, from_logits=True)))


@dataclasses.dataclass
class DefenseSettings:
    """A defense method's own settings: the ``settings`` of a ``DefenseExperiment`` (plain JSON data there) read
    into the dataclass its method registered, defaults filled in. Subclasses add fields and check them."""

    def validate(self) -> None:
        """One-line ConfigErrors for values the method cannot train with (names are checked here too)."""

    def training_attack(self) -> str:
        """What the classifier is attacked with during training, in a few words (benchmark tables)."""
        raise NotImplementedError

    def optimizers(self) -> dict:
        """The trainer's optimizers besides the classifier's, as ``compile`` keyword arguments."""
        return {}


@dataclasses.dataclass
class MixedSettings(DefenseSettings):
    """Settings of the methods whose classifier loss is the clean / adversarial mix."""

    adversarial_fraction: float = 0.5  # weight of the adversarial images in the loss (1.0: adversarial only)

    def validate(self) -> None:
        check_mix(self.adversarial_fraction)

    def mix(self) -> str:
        """The loss's mix in words, for the training-attack column: Madry et al. train on adversarial images
        only, the zoo's recipes on a 50/50 mix, and a table must say which."""
        if self.adversarial_fraction == 1.0:
            return "adversarial only"
        if self.adversarial_fraction == 0.5:
            return "50/50 mix"
        return f"{self.adversarial_fraction:g} adversarial"


def check_step_size(step_size) -> None:
    """A training attack's step: > 0, or None for the method's default."""
    if step_size is not None and not step_size > 0:
        raise ConfigError(f"settings.step_size must be > 0 or null. Received: {step_size!r}")


class DefenseTrainer(NestedModels, keras.Model):
    """The base of every defense's trainer: the classifier as ``.classifier`` (what the zoo exports), the
    classifier loss, clean accuracy and the attack metrics of the training attack."""

    NESTED_MODELS = ("classifier", "attacker")

    def __init__(self, classifier, adversarial_fraction=0.5, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.adversarial_fraction = check_mix(adversarial_fraction)
        self.loss_tracker = keras.metrics.Mean(name="classifier_loss")
        self.attack_metrics = AttackMetrics(targeted=False)

    def call(self, images, training=False):
        return self.classifier(images, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker] + self.attack_metrics.trackers

    def adversarial(self, x, labels):
        """The training attack's images for a batch (no gradient flows back through them)."""
        raise NotImplementedError

    def classifier_loss(self, clean_logits, adv_logits, labels):
        """What the classifier minimises, reported as ``classifier_loss`` in training and validation alike: the
        clean / adversarial cross-entropy mix (a method with another objective overrides only this)."""
        return mixed_cross_entropy(clean_logits, adv_logits, labels, self.adversarial_fraction)

    def train_step(self, data):
        x, labels = batch_of(data)
        self._classifier_step(x, self.adversarial(x, labels), labels)
        return synced_results(self.metrics)

    def test_step(self, data):
        x, labels = batch_of(data)
        return self._measure(x, self.adversarial(x, labels), labels)

    def _measure(self, x, x_adv, labels):
        """Validation figures of one batch given its training-attack images."""
        clean_logits = self.classifier(x, training=False)
        adv_logits = self.classifier(x_adv, training=False)
        self.loss_tracker.update_state(self.classifier_loss(clean_logits, adv_logits, labels))
        self.attack_metrics.update(x, x_adv, labels, clean_logits, adv_logits)
        return synced_results(self.metrics)

    def _classifier_step(self, x, x_adv, labels):
        """One classifier update on clean and adversarial images as one batch (one set of BatchNorm statistics)."""
        batch = tf.shape(x)[0]
        with tf.GradientTape() as tape:
            logits = self.classifier(tf.concat([x, tf.cast(x_adv, x.dtype)], 0), training=True)
            clean_logits, adv_logits = logits[:batch], logits[batch:]
            loss = self.classifier_loss(clean_logits, adv_logits, labels)
        minimize(self.optimizer, tape, loss, self.classifier.trainable_variables)
        self.loss_tracker.update_state(loss)
        self.attack_metrics.update(x, x_adv, labels, clean_logits, adv_logits)

    def get_config(self):
        return {**super().get_config(), "classifier": keras.saving.serialize_keras_object(self.classifier),
                "adversarial_fraction": self.adversarial_fraction}
