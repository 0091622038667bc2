"""The registry store: ``zoo/registry.json`` read and written under the zoo's lock, entry names and fields.

Owns what an entry *is* (its name rules, required fields and kinds), where the zoo lies
(:func:`default_zoo_dir`), reading the registry and checking an entry's ``path`` stays inside the zoo, and the
one way to rewrite the registry: under ``.registry.lock`` (a kernel ``flock``), through a temporary
``.registry.*.tmp`` file and ``os.replace``. Everything else in :mod:`tfadv.zoo` reads and writes the registry
through this module, so the lock and the atomic write live in one place.

Bottom of the package: imports no other ``tfadv.zoo`` module (dependencies run store <- integrity <-
transactions <- loading <- copying).
"""

import contextlib
import fcntl
import json
import os
import re
import tempfile

from tfadv.errors import ZooError

REGISTRY_FILE = "registry.json"
KINDS = ("classifier", "perturbation", "universal", "style", "defended_classifier")
REQUIRED_FIELDS = ("kind", "dataset", "path", "sha256", "metrics", "config")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
MAX_NAME = 128  # the staging folder adds ~25 characters; file names end at 255


def check_name(name) -> None:
    """Refuses an entry name that is not a plain folder name of the zoo (nor the registry file itself)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > MAX_NAME:
        raise ZooError(f"Zoo entry name {str(name)[:60]!r} must be lowercase letters, digits, '_', '.', '-' "
                       f"(at most {MAX_NAME} characters).")
    if name == REGISTRY_FILE:
        raise ZooError(f"Zoo entry name {name!r} is the registry's own file name: choose another.")


def default_zoo_dir() -> str:
    """``$TFADV_ZOO_DIR``, else the ``zoo/`` folder of this source checkout, else ``./zoo``."""
    if os.environ.get("TFADV_ZOO_DIR"):
        return os.environ["TFADV_ZOO_DIR"]
    # this file is tfadv/zoo/store.py: three levels up is the checkout
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    checkout = os.path.join(os.path.dirname(package), "zoo")
    return checkout if os.path.isdir(checkout) else os.path.abspath("zoo")


def read_registry(zoo_dir: str | None = None) -> dict:
    """Returns the registry as a dict (empty if the file does not exist yet)."""
    path = os.path.join(zoo_dir or default_zoo_dir(), REGISTRY_FILE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            registry = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ZooError(f"Zoo registry {path!r} is unreadable or not valid JSON: {e}") from None
    if not isinstance(registry, dict):
        raise ZooError(f"Zoo registry {path!r} must be a JSON object mapping names to entries.")
    return registry


def names(zoo_dir: str | None = None) -> list[str]:
    """Sorted names of the zoo's entries."""
    return sorted(read_registry(zoo_dir))


def entry(name: str, zoo_dir: str | None = None) -> dict:
    """Returns the registry entry ``name``; an unknown name lists the known ones."""
    registry = read_registry(zoo_dir)
    if name not in registry:
        raise ZooError(f"Unknown zoo entry {name!r}. Known entries: {', '.join(sorted(registry)) or '(none)'}.")
    found = registry[name]
    missing = [k for k in REQUIRED_FIELDS if k not in found]
    if missing:
        raise ZooError(f"Zoo entry {name!r} lacks required field(s): {', '.join(missing)}.")
    if found["kind"] not in KINDS:
        raise ZooError(f"Zoo entry {name!r}: unknown kind {found['kind']!r}. Known kinds: {', '.join(KINDS)}.")
    return found


def path_of(name: str, zoo_dir: str | None = None) -> str:
    """Path of entry ``name``'s SavedModel folder, which must lie inside the zoo.

    The registry's ``path`` is relative to the zoo; an absolute path, ``..``, or
    a link leading out of the zoo is refused: whoever can edit the registry
    could otherwise point an entry (and its recorded checksum) at any model
    on the machine, and a SavedModel runs as code.
    """
    zoo_dir = zoo_dir or default_zoo_dir()
    relative = entry(name, zoo_dir)["path"]
    root = os.path.realpath(zoo_dir)
    if not isinstance(relative, str) or not relative or os.path.isabs(relative):
        raise ZooError(f"Zoo entry {name!r}: its path {relative!r} must be a folder relative to the zoo "
                       f"({zoo_dir}); refused.")
    resolved = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([resolved, root]) != root or resolved == root:
        raise ZooError(f"Zoo entry {name!r}: its path {relative!r} leads outside the zoo ({zoo_dir}); refused "
                       "(was the registry edited?).")
    return os.path.join(zoo_dir, relative)


@contextlib.contextmanager
def _registry_lock(zoo_dir: str):
    with open(os.path.join(zoo_dir, ".registry.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_registry(zoo_dir: str, registry: dict) -> None:
    path = os.path.join(zoo_dir, REGISTRY_FILE)
    fd, tmp = tempfile.mkstemp(dir=zoo_dir, prefix=".registry.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(registry, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the registry is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def register(name: str, fields: dict, zoo_dir: str | None = None) -> dict:
    """Adds or replaces a registry entry that needs no artifact move (e.g. a recipe with ``path: None``)."""
    zoo_dir = zoo_dir or default_zoo_dir()
    _check_entry(name, fields)
    os.makedirs(zoo_dir, exist_ok=True)
    with _registry_lock(zoo_dir):
        registry = read_registry(zoo_dir)
        registry[name] = fields
        _write_registry(zoo_dir, registry)
    return fields


def other_tools_commands(name: str, zoo_dir: str | None = None) -> list[str]:
    """The commands of the columns other tools added to entry ``name`` after export (AutoAttack in a robustness
    table, the training cost, security curves, style evaluation, transfer tables), each once: a re-export replaces
    the entry, so a rebuild reruns these (tools/build_zoo.sh reads them before it exports)."""
    metrics = read_registry(zoo_dir).get(name, {}).get("metrics", {})
    found = [column["command"] for key, table in sorted(metrics.items()) if key.startswith("robustness_")
             for column_name, column in table.items()
             if column_name != "settings" and isinstance(column, dict) and "command" in column]
    found += [metrics["training_cost"]["settings"]["command"]] if "training_cost" in metrics else []
    found += [table["command"] for key, table in sorted(metrics.items()) if key.startswith("security_curve_")]
    found += [metrics["style_evaluation"]["command"]] if "style_evaluation" in metrics else []
    found += [table["command"] for key, table in sorted(metrics.items()) if key.startswith("transfer_")]
    return [*dict.fromkeys(found)]  # in order, once each (this module shadows the builtin list)


def entries_trained_against(name: str, zoo_dir: str | None = None) -> list[str]:
    """The entries trained to attack classifier ``name`` (its name in their ``config.target``, or in an
    ensemble's ``a+b``), sorted: their figures are of this model, so a rebuild of ``name`` retrains them."""
    registry = read_registry(zoo_dir)
    return sorted(other for other, fields in registry.items()
                  if name in str((fields.get("config") or {}).get("target") or "").split("+"))


def tables_measuring(name: str, zoo_dir: str | None = None) -> list[str]:
    """The commands of the tables other entries recorded with a column of entry ``name``, each once: transfer
    tables with it as a (defended) target, defense tables with it as a transfer column (``transfer:NAME``,
    ``transfer:NAME@EPS``). A rebuild of ``name`` leaves those columns of the old model, so it reruns them
    (tools/build_zoo.sh)."""
    registry = read_registry(zoo_dir)
    found = []
    for other, fields in sorted(registry.items()):
        if other == name:
            continue
        for key, table in sorted(fields.get("metrics", {}).items()):
            if key.startswith("transfer_") and name in table.get("adv_accuracy", {}):
                found.append(table["command"])
            elif key.startswith("robustness_") and f"transfer:{name}" in {c.split("@")[0] for c in table}:
                found.append(table["settings"]["command"])
    return [*dict.fromkeys(found)]


def add_metrics(name: str, metrics: dict, zoo_dir: str | None = None) -> dict:
    """Merges ``metrics`` into entry ``name``'s metrics (read-modify-write under the registry lock).

    For figures measured after export (e.g. a defense's robustness table); the artifact and its checksum
    are untouched. Returns the updated entry.
    """
    zoo_dir = zoo_dir or default_zoo_dir()
    with _registry_lock(zoo_dir):
        registry = read_registry(zoo_dir)
        if name not in registry:
            raise ZooError(f"Unknown zoo entry {name!r}. Known entries: {', '.join(sorted(registry)) or 'none'}.")
        registry[name]["metrics"] = {**registry[name]["metrics"], **metrics}
        _write_registry(zoo_dir, registry)
    return registry[name]


def _check_entry(name, fields):
    check_name(name)
    missing = [k for k in REQUIRED_FIELDS if k not in fields]
    if missing:
        raise ZooError(f"Zoo entry {name!r} lacks required field(s): {', '.join(missing)}.")
    if fields["kind"] not in KINDS:
        raise ZooError(f"Zoo entry {name!r}: unknown kind {fields['kind']!r}. Known kinds: {', '.join(KINDS)}.")
