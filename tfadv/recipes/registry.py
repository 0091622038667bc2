"""The one registration point of recipes: ``@recipe`` files a config function under its name."""

from typing import Any, Callable

from tfadv.registry import Registry

EXPERIMENTS = Registry("experiment")


def recipe(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Registers ``fn`` (no arguments, returns a fresh config) as experiment ``fn.__name__``."""
    return EXPERIMENTS.register(fn.__name__, fn)
