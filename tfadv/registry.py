"""Name -> object registries: what users extend (generators, losses, attacks, defenses, datasets, recipes).

    ATTACKS = Registry("attack")

    @ATTACKS.register("pgd")
    def pgd(...): ...

    ATTACKS.lookup("pgd")        # a one-line ConfigError naming the known entries for an unknown name

A registry is a dict (``in``, iteration, ``len``), filled only through ``register``: a name registered twice is
an error, so two modules cannot silently replace each other's entry.
"""

from typing import Any, Callable

from tfadv.errors import ConfigError


class Registry(dict):
    """A dict of registered entries; ``what`` names them in error messages ("attack", "defense method")."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, name: str, value: Any = None) -> Callable:
        """Registers ``value`` under ``name``, or, without a value, returns a decorator that registers its target."""
        if value is not None:
            self._add(name, value)
            return value

        def decorate(target):
            self._add(name, target)
            return target

        return decorate

    def _add(self, name: str, value: Any) -> None:
        if name in self:
            raise ValueError(f"{self.what.capitalize()} {name!r} is registered twice.")
        self[name] = value

    def lookup(self, name: str) -> Any:
        """The entry ``name``; an unknown name is a ConfigError that lists the known ones."""
        if name not in self:
            raise ConfigError(f"Unknown {self.what} {name!r}. Known: {', '.join(sorted(self))}.")
        return self[name]
