"""PGD adversarial training (Madry et al. 2018): the classifier trains on PGD examples within (norm, eps),
mixed with clean images by ``adversarial_fraction``."""

import dataclasses

import keras
import tensorflow as tf

from tfadv.attacks import pgd
from tfadv.errors import ConfigError
from tfadv.trainers.defense.base import DefenseTrainer, MixedSettings, check_step_size
from tfadv.trainers.defense.registry import register_defense


@keras.saving.register_keras_serializable(package="tfadv")
class PGDAdversarialTrainer(DefenseTrainer):
    """Madry et al.: train the classifier on PGD examples within (norm, eps).

    Args:
        classifier: trainable classifier.
        norm, eps: the budget; steps: PGD steps per training batch (7-10 is usual); step_size: default
            2.5 * eps / steps (FGSM with random start, "fast adversarial training": steps=1, step_size=1.25 eps).
        random_start: PGD starts from a random point of the ball (Madry's recipe) or from x.
        adversarial_fraction: weight of the PGD images in the loss (1.0: Madry's pure form).
    """

    ATTACK_LOSS = "untargeted"  # what PGD maximises (tfadv.losses); TRADES attacks its KL term instead

    def __init__(self, classifier, norm="linf", eps=0.1, steps=7, adversarial_fraction=0.5, random_start=True,
                 step_size=None, **kwargs):
        super().__init__(classifier, adversarial_fraction, **kwargs)
        self.norm, self.eps, self.steps, self.random_start = norm, float(eps), int(steps), bool(random_start)
        self.step_size = None if step_size is None else float(step_size)

    def adversarial(self, x, labels):
        frozen = lambda images: self.classifier(images, training=False)  # noqa: E731
        return tf.stop_gradient(pgd(frozen, x, labels, eps=self.eps, norm=self.norm, steps=self.steps,
                                    step_size=self.step_size, random_start=self.random_start,
                                    loss=self.ATTACK_LOSS))

    def get_config(self):
        return {**super().get_config(), "norm": self.norm, "eps": self.eps, "steps": self.steps,
                "random_start": self.random_start, "step_size": self.step_size}


def check_steps(steps) -> None:
    """A training attack's PGD steps: an int >= 1."""
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"settings.steps must be an int >= 1. Received: {steps!r}")


@dataclasses.dataclass
class PGDSettings(MixedSettings):
    """``steps`` PGD steps from a random start, each ``step_size`` (null: 2.5 eps / steps)."""

    steps: int = 7
    step_size: float | None = None

    def validate(self) -> None:
        super().validate()
        check_steps(self.steps)
        check_step_size(self.step_size)

    def training_attack(self) -> str:
        return f"PGD-{self.steps}, {self.mix()}"


@register_defense("pgd", settings=PGDSettings, label="PGD adversarial training (Madry et al.)")
def build_pgd_training(cfg, settings: PGDSettings, classifier, image_shape):
    """Madry et al.: PGD with ``settings.steps`` steps, mixed with clean images by ``adversarial_fraction``."""
    return PGDAdversarialTrainer(classifier, cfg.norm, cfg.eps, steps=settings.steps, step_size=settings.step_size,
                                 adversarial_fraction=settings.adversarial_fraction)
