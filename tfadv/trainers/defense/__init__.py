"""Defenses: training the classifier against attacks. One module per method, each a registered unit.

A method is its settings dataclass (``base.DefenseSettings``: the method's own fields, checked by the method),
its trainer (a ``base.DefenseTrainer``: override ``adversarial`` for another training attack and
``classifier_loss`` for another objective) and its ``@register_defense`` (``registry``), which names it, labels
it for tables and says whether it co-trains a generator. ``pgd``, ``fgsm``, ``trades`` and ``co_trained`` (the
classifier trained with a co-trained generator) are the stock ones; a new method needs no other file
(``tests/test_registries.py`` registers one).
"""

from tfadv.trainers.defense.base import DefenseSettings, DefenseTrainer, MixedSettings
from tfadv.trainers.defense.co_trained import CoTrainedSettings, CoTrainedTrainer
from tfadv.trainers.defense.fgsm import FGSMSettings
from tfadv.trainers.defense.guard import RobustAccuracyGuard
from tfadv.trainers.defense.pgd import PGDAdversarialTrainer, PGDSettings
from tfadv.trainers.defense.registry import (DEFENSES, DefenseMethod, co_trains_a_generator, defense_method,
                                             describe, register_defense)
from tfadv.trainers.defense.trades import TRADESSettings, TRADESTrainer

__all__ = ["CoTrainedSettings", "CoTrainedTrainer", "DEFENSES", "DefenseMethod", "DefenseSettings", "DefenseTrainer",
           "FGSMSettings", "MixedSettings", "PGDAdversarialTrainer", "PGDSettings", "RobustAccuracyGuard",
           "TRADESSettings", "TRADESTrainer", "co_trains_a_generator", "defense_method", "describe",
           "register_defense"]
