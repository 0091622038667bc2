"""Fast adversarial training (Wong et al. 2020): one FGSM step from a random start, step 1.25 eps by default.
Pair it with the overfitting guard (``guard_max_drop``): FGSM training can collapse within an epoch."""

import dataclasses

from tfadv.trainers.defense.base import MixedSettings, check_step_size
from tfadv.trainers.defense.pgd import PGDAdversarialTrainer
from tfadv.trainers.defense.registry import register_defense

DEFAULT_STEP = 1.25  # of eps: Wong et al.'s step for FGSM from a random start


@dataclasses.dataclass
class FGSMSettings(MixedSettings):
    """``step_size``: the FGSM step (null: 1.25 eps)."""

    step_size: float | None = None

    def validate(self) -> None:
        super().validate()
        check_step_size(self.step_size)

    def training_attack(self) -> str:
        return f"FGSM, random start, {self.mix()}"


@register_defense("fgsm", settings=FGSMSettings, label="fast adversarial training (FGSM, Wong et al.)")
def build_fgsm_training(cfg, settings: FGSMSettings, classifier, image_shape):
    """PGD's trainer with one step from a random start."""
    step_size = DEFAULT_STEP * cfg.eps if settings.step_size is None else settings.step_size
    return PGDAdversarialTrainer(classifier, cfg.norm, cfg.eps, steps=1, step_size=step_size,
                                 adversarial_fraction=settings.adversarial_fraction)
