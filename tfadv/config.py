"""Configs are data: dataclasses that round-trip through JSON.

Every experiment in tfadv is described by a (possibly nested) dataclass. This
module converts those to and from plain dicts / JSON files and applies
``key=value`` overrides (dotted keys reach nested fields), checking names and
types so a typo fails with a message instead of being silently ignored.
"""

import dataclasses
import json
import os
import typing
from typing import Any, Mapping, TypeVar

from tfadv.errors import ConfigError

# The tf.distribute strategies tfadv.distribute builds by name; here, where no TensorFlow is imported, so that the
# tools' --strategy flag is defined (and --help answered) without it.
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")

T = TypeVar("T")


def to_dict(config) -> dict:
    """Returns the config as a dict of JSON types (nested dataclasses become dicts)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: Mapping[str, Any], _where: str = "") -> T:
    """Builds ``cls`` from a dict, recursing into nested dataclass fields.

    Raises:
        ConfigError: on a key that ``cls`` has no field for, or a value of the
            wrong type.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"Config{_where or ''} must be a JSON object, got {type(data).__name__}: {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"Unknown config key(s) {', '.join(_where + k for k in unknown)} for {cls.__name__}. "
            f"Known keys: {', '.join(sorted(fields))}."
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{_where}{name}")
    return cls(**kwargs)


def _coerce(hint, value, where: str):
    """Checks ``value`` against the type hint ``hint`` and converts where lossless."""
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value):
            return value
        return from_dict(hint, value, _where=where + ".")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"Config key {where}={value!r} does not match {hint}: {'; '.join(errors)}")
    if hint is typing.Any:
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"Config key {where} must be a list, got {value!r}")
        item = args[0] if args else typing.Any
        return origin(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"Config key {where} must be an object, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"Config key {where} must be {hint.__name__}, got {value!r}")
        return value
    return value


def write_json_atomically(data, path: str, **dump_kwargs) -> None:
    """Writes ``data`` as JSON to ``path`` whole or not at all: a temp file, flushed to disk, then renamed."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, **dump_kwargs)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_json(config, path: str) -> None:
    """Writes the config as indented JSON, atomically (:func:`write_json_atomically`)."""
    write_json_atomically(to_dict(config), path, indent=2, sort_keys=True)


def read_json(path: str) -> dict:
    """Reads a JSON config file, failing with a ConfigError that names the file and the problem."""
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise ConfigError(f"Cannot read config file {path!r}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"Config file {path!r} is not valid JSON: {e}") from None


def load_json(cls: type[T], path: str) -> T:
    """Reads a config written by :func:`save_json` (or by hand)."""
    return from_dict(cls, read_json(path))


def parse_override(text: str) -> tuple[str, Any]:
    """Splits ``"a.b=value"`` into ``("a.b", value)``; the value is parsed as JSON when it can be."""
    if "=" not in text:
        raise ConfigError(f"Override {text!r} must look like key=value (e.g. epochs=3 or data.batch_size=64).")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"Override {text!r} has an empty key.")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string such as model=small_cnn
    return key, value


def override(config: T, overrides: Mapping[str, Any]) -> T:
    """Returns a copy of ``config`` with dotted-key overrides applied and type-checked.

    Keys name dataclass fields (``data.batch_size``); below a free-form dict field
    (``model_kwargs.widths``) new keys may be added.
    """
    data = to_dict(config)
    for key, value in overrides.items():
        node, cls = data, type(config)
        parts = key.split(".")
        for i, part in enumerate(parts):
            if cls is not None:  # inside a dataclass: the field must exist
                names = {f.name for f in dataclasses.fields(cls)}
                if part not in names:
                    raise ConfigError(
                        f"Unknown config key {key!r} for {type(config).__name__} "
                        f"(no {'.'.join(parts[:i + 1])!r}; known at that level: {', '.join(sorted(names))})."
                    )
                hint = typing.get_type_hints(cls)[part]
                cls = hint if dataclasses.is_dataclass(hint) else None
            if i == len(parts) - 1:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict):
                    if cls is None and node.get(part) is None:
                        node[part] = {}
                    else:
                        raise ConfigError(f"Config key {'.'.join(parts[:i + 1])!r} is not an object; cannot set {key!r}.")
                node = node[part]
    return from_dict(type(config), data)
