"""The one registration point of recipes: ``@recipe`` files a config function under its name."""

from typing import Any, Callable

EXPERIMENTS: dict[str, Callable[[], Any]] = {}


def recipe(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Registers ``fn`` (no arguments, returns a fresh config) as experiment ``fn.__name__``."""
    if fn.__name__ in EXPERIMENTS:
        raise ValueError(f"Experiment {fn.__name__!r} is registered twice.")
    EXPERIMENTS[fn.__name__] = fn
    return fn
