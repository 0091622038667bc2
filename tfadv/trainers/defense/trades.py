"""TRADES (Zhang et al. 2019): clean cross-entropy plus ``beta`` times KL(p(x) || p(x_adv)), where x_adv
maximises that KL by PGD within (norm, eps)."""

import dataclasses

import keras
import tensorflow as tf

from tfadv.errors import ConfigError
from tfadv.losses import kl_divergence
from tfadv.trainers.defense.base import DefenseSettings, check_step_size
from tfadv.trainers.defense.pgd import PGDAdversarialTrainer, check_steps
from tfadv.trainers.defense.registry import register_defense


@keras.saving.register_keras_serializable(package="tfadv")
class TRADESTrainer(PGDAdversarialTrainer):
    """TRADES: cross-entropy on clean images plus ``beta`` times KL(p(x) || p(x_adv)), where x_adv maximises that
    KL by PGD within (norm, eps) (the ``trades_kl`` loss of ``tfadv.losses``).

    The robust-accuracy / clean-accuracy trade-off is ``beta`` (6 in the paper). PGD starts from a uniform
    random point of the ball, where the paper starts from 0.001 * N(0, 1).
    """

    ATTACK_LOSS = "trades_kl"

    def __init__(self, classifier, norm="linf", eps=0.1, steps=10, beta=6.0, step_size=None, **kwargs):
        kwargs.pop("adversarial_fraction", None)
        super().__init__(classifier, norm, eps, steps=steps, step_size=step_size, adversarial_fraction=1.0,
                         **kwargs)
        if not beta >= 0:
            raise ConfigError(f"beta must be >= 0. Received: {beta!r}")
        self.beta = float(beta)

    def classifier_loss(self, clean_logits, adv_logits, labels):
        """Clean cross-entropy + beta * KL(p(x) || p(x_adv)), in float32."""
        natural = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                                 logits=tf.cast(clean_logits, tf.float32))
        robust = kl_divergence(tf.cast(clean_logits, tf.float32), tf.cast(adv_logits, tf.float32))
        return tf.reduce_mean(natural + self.beta * robust)

    def get_config(self):
        config = super().get_config()
        config.pop("adversarial_fraction", None)
        return {**config, "beta": self.beta}


@dataclasses.dataclass
class TRADESSettings(DefenseSettings):
    """``beta``: weight of the KL (robustness) term against clean cross-entropy; ``steps`` PGD steps on the KL,
    each ``step_size`` (null: 2.5 eps / steps). No ``adversarial_fraction``: the objective is its own."""

    steps: int = 10
    beta: float = 6.0
    step_size: float | None = None

    def validate(self) -> None:
        check_steps(self.steps)
        check_step_size(self.step_size)
        if not self.beta >= 0:
            raise ConfigError(f"settings.beta must be >= 0. Received: {self.beta!r}")

    def training_attack(self) -> str:
        return f"TRADES: PGD-{self.steps} on the KL"


@register_defense("trades", settings=TRADESSettings, label="TRADES (Zhang et al.)")
def build_trades_training(cfg, settings: TRADESSettings, classifier, image_shape):
    """Clean cross-entropy + ``beta`` * KL to a ``steps``-step KL-maximising PGD image."""
    return TRADESTrainer(classifier, cfg.norm, cfg.eps, steps=settings.steps, beta=settings.beta,
                         step_size=settings.step_size)
