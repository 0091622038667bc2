"""The defense methods by name: a ``DefenseExperiment``'s ``method`` picks one, its ``settings`` are that
method's own (its settings dataclass), and the task builds the method's trainer from them.

    @register_defense("pgd", settings=PGDSettings, label="PGD adversarial training (Madry et al.)")
    def build_pgd(cfg, settings, classifier, image_shape):
        return PGDAdversarialTrainer(classifier, cfg.norm, cfg.eps, steps=settings.steps, ...)
"""

import dataclasses
import math
from typing import Callable

from tfadv import config as config_lib
from tfadv.errors import ConfigError
from tfadv.registry import Registry
from tfadv.trainers.defense.base import DefenseSettings


@dataclasses.dataclass(frozen=True)
class DefenseMethod:
    """A registered defense: its trainer builder, its settings dataclass, and how tables name it.

    ``build(cfg, settings, classifier, image_shape)`` returns the (uncompiled) trainer around ``classifier``;
    ``cfg`` gives what every method shares (``norm``, ``eps``), ``settings`` the method's own. ``label`` names
    the method in benchmarks and tables. ``co_trained_generator``: the trainer co-trains a perturbation model as
    ``.attacker``; the run saves it and export publishes it as the entry ``<name>_generator``.
    """

    name: str
    build: Callable
    settings: type
    label: str
    co_trained_generator: bool = False

    def settings_of(self, cfg) -> DefenseSettings:
        """``cfg.settings`` (plain data) as this method's settings dataclass, defaults filled in, checked."""
        known = [field.name for field in dataclasses.fields(self.settings)]
        unknown = sorted(set(cfg.settings) - set(known))
        if unknown:  # e.g. --set method=pgd on a co_trained recipe: its settings do not carry over
            raise ConfigError(f"Unknown setting(s) {', '.join('settings.' + k for k in unknown)} of defense method "
                              f"{self.name!r}; its settings: {', '.join(known)} (switching method, give its own: "
                              "--set settings={} for its defaults).")
        settings = config_lib.from_dict(self.settings, cfg.settings, _where="settings.")
        for field in dataclasses.fields(settings):  # NaN passes every range check
            value = getattr(settings, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"settings.{field.name} must be a finite number. Received: {value!r}")
        settings.validate()
        return settings


DEFENSES = Registry("defense method")


def register_defense(name: str, *, settings: type, label: str, co_trained_generator: bool = False):
    """Decorator: registers ``build(cfg, settings, classifier, image_shape) -> trainer`` as defense method
    ``name``, with its settings dataclass (a :class:`~tfadv.trainers.defense.base.DefenseSettings`) and its
    human ``label``: the one registration point (``DefenseExperiment.method`` and ``tfadv.tasks.defense`` find
    it by name)."""
    if not (dataclasses.is_dataclass(settings) and issubclass(settings, DefenseSettings)):
        raise TypeError(f"Defense {name!r}: settings must be a DefenseSettings dataclass. Received: {settings!r}")

    def decorate(build):
        DEFENSES.register(name, DefenseMethod(name, build, settings, label, bool(co_trained_generator)))
        return build

    return decorate


def defense_method(name: str) -> DefenseMethod:
    """The registered method ``name``; an unknown name is a one-line ConfigError listing the known ones."""
    return DEFENSES.lookup(name)


def co_trains_a_generator(method: str) -> bool:
    """Whether defense ``method`` was registered with a co-trained generator (its run saves ``attacker.keras``)."""
    return defense_method(method).co_trained_generator



def describe(cfg) -> tuple[str, str]:
    """(label, training attack) of a defense config, both as its method registered them: what benchmark tables
    print for it (``tools/benchmark_defense.py``), with no method named anywhere else."""
    method = defense_method(cfg.method)
    return method.label, method.settings_of(cfg).training_attack()
