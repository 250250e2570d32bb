"""YAML mappings into frozen dataclasses: the type walk behind `spark_app.config.load_config`.

`build_typed(tp, value, key, source)` coerces a parsed YAML value into the annotated type `tp`
(dataclasses, Optional, Literal, lists, tuples, dicts, scalars), and raises `ConfigError`
naming the file and the dotted key of the first problem: an unknown key, a missing required
key, a value of the wrong type or outside its allowed set. Booleans are never numbers.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, List, Literal, Tuple

from spark_app.errors import ConfigError


def build_typed(tp: Any, value: Any, key: str, source: str) -> Any:
    """Coerce `value` into the annotated type `tp`, raising ConfigError at `key`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    where = f"{source}: {key or '<top>'}"

    if origin is typing.Union:  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return build_typed(inner[0], value, key, source)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, key, source)
    if origin in (list, List):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [build_typed(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin in (tuple, Tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(build_typed(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {
            build_typed(args[0], k, f"{key}.{k}", source): build_typed(args[1], v, f"{key}.{k}", source)
            for k, v in value.items()
        }
    if tp is Any:
        return value
    return _build_scalar(tp, value, where)


def _build_scalar(tp: type, value: Any, where: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported type {tp!r}")


def _build_dataclass(tp: Any, value: Any, key: str, source: str) -> Any:
    where = f"{source}: {key or '<top>'}"
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    hints = typing.get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp) if f.name != "source_file"}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        dotted = f"{key}.{unknown[0]}" if key else str(unknown[0])
        raise ConfigError(f"{source}: {dotted}: unknown key (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        dotted = f"{key}.{name}" if key else name
        if name in value:
            kwargs[name] = build_typed(hints[name], value[name], dotted, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: {dotted}: required")
    return tp(**kwargs)
