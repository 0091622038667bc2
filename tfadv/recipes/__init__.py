"""Named recipes, one module per experiment kind; ``EXPERIMENTS`` maps each name to its config function.

Adding a recipe: a function returning a config (see :mod:`tfadv.schema`) in
the module of its kind, decorated with ``@recipe``; its name is the
``--experiment`` flag's value.
"""

from tfadv.recipes import classifiers, defenses, perturbations, style, transfer  # noqa: F401 - registers them
from tfadv.recipes.registry import EXPERIMENTS, recipe

__all__ = ["EXPERIMENTS", "recipe"]
