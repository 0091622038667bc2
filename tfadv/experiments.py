"""Named experiments: the registry of recipes, and reading configs back.

A tool picks one with ``--experiment=NAME`` (or a JSON file with ``--config``)
and overrides fields with ``--set key=value``. The resolved config is written
next to the run's outputs as ``config.json``, which ``--config`` reads back.

Where things live: the schema (config dataclasses, validation) in
:mod:`tfadv.schema`; the recipes in :mod:`tfadv.recipes`,
one module per kind. To add an experiment: write a function returning a config
in the recipes module of its kind, decorated with ``@recipe``.
"""

from tfadv import config as config_lib
from tfadv.errors import ConfigError
from tfadv.recipes import EXPERIMENTS
from tfadv.schema import KINDS, RENAMED_DEFENSE_METHODS, RUNTIME_FIELDS


def get_experiment(name: str):
    """Returns a fresh config of the experiment registered as ``name``."""
    return EXPERIMENTS.lookup(name)()


def migrate_defense_method(data: dict) -> dict:
    """A defense config dict naming its method by an old name (``schema.RENAMED_DEFENSE_METHODS``: "joint",
    the classifier trained with a co-trained generator) with today's ("co_trained"). Other dicts come back as
    they are."""
    method = data.get("method")
    if data.get("kind") != "defense" or not isinstance(method, str) or method not in RENAMED_DEFENSE_METHODS:
        return data
    return {**data, "method": RENAMED_DEFENSE_METHODS[method]}


# Defense configs written before each method had its own settings carried every method's fields flat, at the
# top level (defaults included). Per method (today's names): old key -> its name in that method's settings; the
# other keys of the union (another method's) are dropped. Only these names migrate: any other unknown key stays an
# error. (The co-trained generator's ``generator_kappa`` then moves on, by :func:`migrate_generator_loss_settings`.)
LEGACY_DEFENSE_SETTINGS = {
    "pgd": {"pgd_steps": "steps", "step_size": "step_size", "adversarial_fraction": "adversarial_fraction"},
    "fgsm": {"step_size": "step_size", "adversarial_fraction": "adversarial_fraction"},
    "trades": {"pgd_steps": "steps", "step_size": "step_size", "trades_beta": "beta"},
    "co_trained": {"generator": "generator", "generator_kwargs": "generator_kwargs",
                   "generator_steps": "generator_steps", "generator_batch": "generator_batch",
                   "g_learning_rate": "generator_learning_rate", "generator_loss": "generator_loss",
                   "generator_kappa": "generator_kappa", "refine_steps": "refine_steps", "step_size": "step_size",
                   "adversarial_fraction": "adversarial_fraction"},
}
LEGACY_DEFENSE_KEYS = frozenset().union(*LEGACY_DEFENSE_SETTINGS.values())


def migrate_defense_settings(data: dict) -> dict:
    """A defense config dict of the flat form (every method's fields at the top level) in the current one: the
    legacy keys of its ``method`` moved into ``settings`` under their new names, the other methods' dropped.
    A dict of the current form (or another kind) comes back as it is. Give it today's method name
    (:func:`migrate_defense_method` first)."""
    legacy = LEGACY_DEFENSE_KEYS & set(data)
    if data.get("kind") != "defense" or not legacy:
        return data
    method = data.get("method", "co_trained")  # the field's default when these keys were written
    if method not in LEGACY_DEFENSE_SETTINGS:
        raise ConfigError(f"Defense config of method {method!r} has the old flat settings {sorted(legacy)}: only "
                          f"{', '.join(sorted(LEGACY_DEFENSE_SETTINGS))} configs of that form can be read back.")
    renamed = LEGACY_DEFENSE_SETTINGS[method]
    moved = {renamed[key]: data[key] for key in sorted(legacy) if key in renamed}
    rest = {key: value for key, value in data.items() if key not in legacy}
    return {**rest, "settings": {**moved, **(data.get("settings") or {})}}


def migrate_generator_loss_settings(data: dict) -> dict:
    """A co_trained defense config dict written before the generator's loss had settings of its own in the current
    form: ``settings.generator_kappa`` (cw's margin) moves into ``settings.generator_loss_settings`` by
    :func:`tfadv.losses.fold_old_kappa`. Other dicts come back as they are."""
    settings = data.get("settings")
    if (data.get("kind") != "defense" or data.get("method", "co_trained") != "co_trained"
            or not isinstance(settings, dict)):
        return data
    from tfadv.losses import fold_old_kappa

    moved = fold_old_kappa(settings, kappa="generator_kappa", loss="generator_loss",
                           settings="generator_loss_settings", default_loss="cw")
    return data if moved is settings else {**data, "settings": moved}


def migrate_loss_settings(data: dict) -> dict:
    """A perturbation config dict written before losses had settings of their own in the current form: the
    top-level ``kappa`` (cw's margin) moves into ``loss_settings`` by :func:`tfadv.losses.fold_old_kappa`. Other
    dicts come back as they are."""
    if data.get("kind") != "perturbation":
        return data
    from tfadv.losses import fold_old_kappa

    return fold_old_kappa(data, kappa="kappa", loss="loss", settings="loss_settings", default_loss="untargeted")


def from_dict(data: dict):
    """Builds the right config class from a dict, dispatching on its ``kind`` field."""
    kind = data.get("kind", "classifier") if isinstance(data, dict) else None
    if kind not in KINDS:
        raise ConfigError(f"Unknown experiment kind {kind!r}. Known kinds: {', '.join(sorted(KINDS))}.")
    moved = {k: data[k] for k in RUNTIME_FIELDS if k in data}
    if moved:  # written before the runtime section: its fields were top-level
        data = {**{k: v for k, v in data.items() if k not in moved},
                "runtime": {**moved, **(data.get("runtime") or {})}}
    if isinstance(data.get("data"), dict) and "validation_split" not in data["data"]:
        # Written before held-out validation: such runs validated on eval_split; they read back without
        # a validation split rather than with one their train_split overlaps.
        data = {**data, "data": {**data["data"], "validation_split": None}}
    if isinstance(data.get("optimizer"), dict) and "decay_norms_and_biases" not in data["optimizer"]:
        # Written before the field: those runs decayed every weight, biases and BatchNorm included.
        data = {**data, "optimizer": {**data["optimizer"], "decay_norms_and_biases": True}}
    data = migrate_generator_loss_settings(migrate_defense_settings(migrate_defense_method(data)))
    return config_lib.from_dict(KINDS[kind], migrate_loss_settings(data))


def load_json(path: str):
    """Reads an experiment config JSON file (e.g. a run's config.json)."""
    return from_dict(config_lib.read_json(path))

