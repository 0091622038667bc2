"""The co-trained defense, method ``co_trained`` (the seed's future work): classifier and perturbation generator
trained together, two optimizers in one ``train_step``. (Configs written before the rename call the method
"joint"; ``tfadv.experiments.from_dict`` reads them as ``co_trained``. "joint" now names only the perturbation
mode, approach A with a joint loss.)

Each step the generator is updated to fool the *current* classifier within its budget, then the classifier is
updated on a mix of clean images and the images that generator step produced (the generator's BatchNorm in
training mode, as it was optimised). With ``refine_steps`` > 0 those images are first pushed further by a few PGD
steps that start from the generator's x_hat: the generator supplies the starting point a multi-step PGD would
have to find, at a fraction of PGD's cost.
"""

import dataclasses
from typing import Any

import keras
import tensorflow as tf

from tfadv.attacks import pgd
from tfadv.budgets import check_budget
from tfadv.distribute import minimize, synced_results
from tfadv.errors import ConfigError
from tfadv.losses import adversarial_loss, fold_old_kappa, loss_settings, untargeted_losses
from tfadv.models.generators import GENERATORS, build_generator, perturbation_model
from tfadv.trainers.defense.base import DefenseTrainer, MixedSettings, check_step_size
from tfadv.trainers.defense.registry import register_defense
from tfadv.trainers.perturbation import batch_of, generator_check, nonfinite_count, raw_output_attack
from tfadv.trainers.two_player import SecondOptimizerMixin

# The generator's loss settings where this method's defaults differ from the loss's own: cw with margin 2.0.
GENERATOR_LOSS_DEFAULTS = {"cw": {"kappa": 2.0}}


def complete_generator_loss_settings(loss: str, values: dict | None = None) -> dict:
    """The settings of the generator's ``loss`` from ``values`` (None: this method's defaults,
    :data:`GENERATOR_LOSS_DEFAULTS`, else the loss's own), checked and completed, as plain data."""
    return loss_settings(loss, GENERATOR_LOSS_DEFAULTS.get(loss, {}) if values is None else values)


@keras.saving.register_keras_serializable(package="tfadv")
class CoTrainedTrainer(SecondOptimizerMixin, DefenseTrainer):
    """Classifier and generator trained together (see module doc).

    Args:
        classifier: trainable classifier, [0, 1] images -> logits.
        attacker: x -> x_hat model with its own budget (a thresholded perturbation model).
        adversarial_fraction: weight of the adversarial images in the classifier loss.
        generator_steps: generator updates per classifier update.
        attack_loss: the generator's adversarial loss (tfadv.losses).
        attack_loss_settings: that loss's own settings (e.g. ``{"kappa": 2.0}``, cw's margin; None: kappa 2.0
            for cw, the loss's defaults otherwise).
        refine_steps: PGD steps from the generator's x_hat before the classifier
            sees it (0: the generator's images as they are).
        norm, eps: the budget of those PGD steps (the attacker's own; needed
            only when refine_steps > 0).
        step_size: the step of those PGD steps (None: 2.5 eps / refine_steps;
            1.25 eps with refine_steps=1 is FGSM started from x_hat instead of
            a random point).
        generator_batch: the generator's update uses only the first this many
            images of each batch (None: all). The update's cost grows with the
            batch, so a sub-batch shrinks the generator's share of a step; x_hat
            for the classifier then comes from one more forward pass of the
            updated generator over the whole batch.

    Compile with ``optimizer=`` (classifier) and ``g_optimizer=`` (generator).
    """

    SECOND_OPTIMIZER = "g_optimizer"

    def __init__(self, classifier, attacker, adversarial_fraction=0.5, generator_steps=1, attack_loss="cw",
                 refine_steps=0, norm=None, eps=None, attack_loss_settings=None, step_size=None,
                 generator_batch=None, **kwargs):
        super().__init__(classifier, adversarial_fraction, **kwargs)
        if attack_loss not in untargeted_losses():
            raise ConfigError(f"attack_loss must be one of {untargeted_losses()} (a defense's generator attacks every "
                              f"image, untargeted). Received: {attack_loss!r}")
        if not isinstance(generator_steps, int) or generator_steps < 1:
            raise ConfigError(f"generator_steps must be an int >= 1. Received: {generator_steps!r}")
        if not isinstance(refine_steps, int) or refine_steps < 0:
            raise ConfigError(f"refine_steps must be an int >= 0. Received: {refine_steps!r}")
        if refine_steps:
            if norm is None or eps is None:
                raise ConfigError("refine_steps > 0 needs the budget of its PGD steps: pass norm= and eps=.")
            eps = check_budget(norm, eps)
        if step_size is not None and not step_size > 0:
            raise ConfigError(f"step_size must be > 0 or None. Received: {step_size!r}")
        if generator_batch is not None and (not isinstance(generator_batch, int) or generator_batch < 1):
            raise ConfigError(f"generator_batch must be an int >= 1 or None. Received: {generator_batch!r}")
        self.step_size = None if step_size is None else float(step_size)
        self.generator_batch = generator_batch
        self.attacker, self.generator_steps, self.attack_loss = attacker, generator_steps, attack_loss
        self.attack_loss_settings = complete_generator_loss_settings(attack_loss, attack_loss_settings)  # checked here
        self._attack = raw_output_attack(attacker)  # (x_hat, the generator's raw output); not tracked
        self.refine_steps, self.norm, self.eps = refine_steps, norm, eps
        self.g_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.nonfinite_tracker = generator_check()

    @property
    def metrics(self):
        return super().metrics + [self.g_loss_tracker, self.nonfinite_tracker]

    def first_player_variables(self):
        return self.classifier.trainable_variables

    def second_player_variables(self):
        return self.attacker.trainable_variables

    def adversarial(self, x, labels):
        """The training attack with the generator in inference mode (evaluation, image grids)."""
        return self._refined(x, self.attacker(x, training=False), labels)

    def _refined(self, x, x_hat, labels):
        """The generator's images, pushed ``refine_steps`` PGD steps further; no gradient to the generator."""
        x_hat = tf.stop_gradient(x_hat)
        if not self.refine_steps:
            return x_hat
        frozen = lambda images: self.classifier(images, training=False)  # noqa: E731
        return tf.stop_gradient(pgd(frozen, x, labels, eps=self.eps, norm=self.norm, steps=self.refine_steps,
                                    step_size=self.step_size, random_start=False, start=x_hat))

    def generator_loss(self, x, labels, training=False):
        """The generator's objective on a batch: its adversarial loss against the current classifier."""
        return self._generator_objective(x, labels, training)[0]

    def _generator_objective(self, x, labels, training):
        """(loss, x_hat, the generator's raw output) on a batch."""
        x_hat, raw = self._attack(x, training=training)
        logits = self.classifier(x_hat, training=False)
        loss = adversarial_loss(self.attack_loss, logits, labels, settings=self.attack_loss_settings)
        return tf.reduce_mean(loss), x_hat, raw

    def train_step(self, data):
        x, labels = batch_of(data)
        n = self.generator_batch
        for _ in range(self.generator_steps):
            with tf.GradientTape() as tape:
                g_loss, x_hat, raw = self._generator_objective(x[:n], labels[:n], training=True)
            minimize(self.g_optimizer, tape, g_loss, self.second_player_variables())
        self.g_loss_tracker.update_state(g_loss)
        self.nonfinite_tracker.update_state(nonfinite_count(raw))
        if n is not None:  # the updated generator's images for the whole batch (no tape: forward only)
            x_hat = self.attacker(x, training=True)
        # The classifier trains on the images the (last) generator step optimised, BatchNorm in training mode.
        self._classifier_step(x, self._refined(x, x_hat, labels), labels)
        return synced_results(self.metrics)

    def test_step(self, data):
        x, labels = batch_of(data)
        g_loss, x_hat, raw = self._generator_objective(x, labels, training=False)
        self.g_loss_tracker.update_state(g_loss)  # else val_generator_loss reads 0
        self.nonfinite_tracker.update_state(nonfinite_count(raw))
        return self._measure(x, self._refined(x, x_hat, labels), labels)  # the generator runs once per batch

    def get_config(self):
        return {**super().get_config(), "attacker": keras.saving.serialize_keras_object(self.attacker),
                "generator_steps": self.generator_steps, "attack_loss": self.attack_loss,
                "attack_loss_settings": dict(self.attack_loss_settings), "refine_steps": self.refine_steps,
                "norm": self.norm, "eps": self.eps, "step_size": self.step_size,
                "generator_batch": self.generator_batch}

    @classmethod
    def from_config(cls, config):
        """Also reads a trainer saved before the rename (``JointAdversarialTrainer``, with ``attack_kappa``: cw's
        margin, which only cw read)."""
        config = fold_old_kappa(dict(config), kappa="attack_kappa", loss="attack_loss",
                                settings="attack_loss_settings", default_loss="cw")
        return super().from_config(config)


# .keras files saved before the rename name the class "tfadv>JointAdversarialTrainer": they load as this class.
keras.saving.get_custom_objects()["tfadv>JointAdversarialTrainer"] = CoTrainedTrainer


@dataclasses.dataclass
class CoTrainedSettings(MixedSettings):
    """The co-trained ``generator`` (a registered generator, with ``generator_kwargs``; thresholded to the
    budget), updated ``generator_steps`` times per classifier update on the first ``generator_batch`` images of
    each batch (null: all) with Adam at ``generator_learning_rate``, on ``generator_loss`` (an untargeted loss)
    with that loss's own ``generator_loss_settings`` (null: kappa 2.0 for cw, the loss's own defaults
    otherwise; ``validate`` completes them, so a run records them whole); ``refine_steps`` PGD steps of
    ``step_size`` (null: 2.5 eps / refine_steps) from its x_hat before the classifier sees it."""

    generator: str = "unet"
    generator_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    generator_steps: int = 1
    generator_batch: int | None = None
    generator_learning_rate: float = 1e-3
    generator_loss: str = "cw"
    generator_loss_settings: dict[str, Any] | None = None
    refine_steps: int = 0
    step_size: float | None = None

    def validate(self) -> None:
        super().validate()
        GENERATORS.lookup(self.generator)
        if not isinstance(self.generator_steps, int) or self.generator_steps < 1:
            raise ConfigError(f"settings.generator_steps must be an int >= 1. Received: {self.generator_steps!r}")
        if self.generator_batch is not None and self.generator_batch < 1:
            raise ConfigError(f"settings.generator_batch must be >= 1 or null. Received: {self.generator_batch!r}")
        if not self.generator_learning_rate > 0:
            raise ConfigError(f"settings.generator_learning_rate must be > 0. Received: "
                              f"{self.generator_learning_rate!r}")
        if self.generator_loss not in untargeted_losses():
            raise ConfigError(f"settings.generator_loss must be one of {untargeted_losses()}. Received: "
                              f"{self.generator_loss!r}")
        try:
            self.generator_loss_settings = complete_generator_loss_settings(self.generator_loss,
                                                                            self.generator_loss_settings)
        except ConfigError as e:  # the loss names its settings "loss_settings": here they are the generator's
            raise ConfigError(str(e).replace("loss_settings", "settings.generator_loss_settings")) from None
        if self.refine_steps < 0:
            raise ConfigError(f"settings.refine_steps must be >= 0. Received: {self.refine_steps!r}")
        check_step_size(self.step_size)

    def training_attack(self) -> str:
        words = f"generator x{self.generator_steps}"
        if self.generator_batch:
            words += f" on {self.generator_batch} images"
        return words + (f" + PGD-{self.refine_steps}" if self.refine_steps else "") + f", {self.mix()}"

    def optimizers(self) -> dict:
        return {CoTrainedTrainer.SECOND_OPTIMIZER: keras.optimizers.Adam(self.generator_learning_rate)}


@register_defense("co_trained", settings=CoTrainedSettings, label="co-trained generator defense",
                  co_trained_generator=True)
def build_co_trained(cfg, settings: CoTrainedSettings, classifier, image_shape):
    """A thresholded generator trained with the classifier (``refine_steps`` PGD steps from its x_hat)."""
    generator = build_generator(settings.generator, input_shape=tuple(image_shape), output_activation="tanh",
                                **settings.generator_kwargs)
    return CoTrainedTrainer(classifier, perturbation_model(generator, "thresholded", cfg.norm, cfg.eps),
                            adversarial_fraction=settings.adversarial_fraction,
                            generator_steps=settings.generator_steps, refine_steps=settings.refine_steps,
                            norm=cfg.norm, eps=cfg.eps, attack_loss=settings.generator_loss,
                            attack_loss_settings=settings.generator_loss_settings, step_size=settings.step_size,
                            generator_batch=settings.generator_batch)
