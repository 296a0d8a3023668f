"""YAML -> typed config at the edge: an unknown key or a value of the wrong type fails
naming the file (or the ``--set`` override), the key, the value and what is allowed.

(STYLE: BasicSR's nested option dicts turn typos into silent defaults; we load into
dataclasses once and pass typed values below.) Values are checked against each field's
annotation: ``bool``, ``int``, ``float`` (an int is taken and made a float), ``str``,
``Optional[...]``, ``Literal[...]`` choices, ``tuple[...]``/``list[...]`` (a YAML list is
taken); other annotations are not checked.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Type, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override names a key that does not exist, or has a bad value."""


def read_yaml(path: Path) -> dict:
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level")
    return data


class _Mismatch(Exception):
    """``value`` does not fit an annotation; ``args[0]`` says what is allowed."""


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, getattr(types, "UnionType", Union)):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} items ({', '.join(_describe(a) for a in args)})"
        return f"a list, each item {_describe(args[0])}" if args else "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def check_value(tp: Any, value: Any) -> Any:
    """``value`` checked against annotation ``tp`` (and converted: int -> float, list -> tuple).

    Raises:
        _Mismatch: the value does not fit; its message describes what would.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or isinstance(tp, TypeVar):
        return value
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Mismatch(_describe(tp))
    if origin in (Union, getattr(types, "UnionType", Union)):
        for a in args:
            if a is type(None):
                if value is None:
                    return None
                continue
            try:
                return check_value(a, value)
            except _Mismatch:
                pass
        raise _Mismatch(_describe(tp))
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(_describe(tp))
        fixed = origin is tuple and args and args[-1] is not Ellipsis
        if fixed and len(args) != len(value):
            raise _Mismatch(_describe(tp))
        try:
            if fixed:
                items = [check_value(a, v) for a, v in zip(args, value)]
            else:
                items = [check_value(args[0], v) for v in value] if args else list(value)
        except _Mismatch:
            raise _Mismatch(_describe(tp)) from None
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch(_describe(tp))
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch(_describe(tp))
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch(_describe(tp))
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch(_describe(tp))
    return value  # an annotation we do not check (a class, a callable...)


def _checked(cls: type, values: Mapping[str, Any], where: str) -> dict:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(values) - fields)
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(bad)}; valid: {', '.join(sorted(fields)) or '(none)'}")
    out = {}
    for key, value in values.items():
        try:
            out[key] = check_value(hints.get(key, Any), value)
        except _Mismatch as e:
            raise ConfigError(f"{where}: {key}={value!r} is not allowed; {key} must be {e.args[0]}") from None
    return out


def to_dataclass(cls: Type[T], values: Mapping[str, Any], where: str,
                 overrides: Optional[Mapping[str, Any]] = None, overrides_where: str = "--set") -> T:
    """Build dataclass ``cls`` from ``values`` (from ``where``, e.g. a YAML file), then ``overrides``
    (``--set key=value``), each value checked against its field's annotation.

    Raises:
        ConfigError: an unknown key, a value that does not fit its annotation, or a value the
            class itself rejects (``__post_init__``); the message names the file or the override.
    """
    merged = _checked(cls, values, where)
    for key, value in (overrides or {}).items():
        merged.update(_checked(cls, {key: value}, overrides_where))
    try:
        return cls(**merged)
    except (TypeError, ValueError) as e:
        given = ", ".join(f"{k}={v!r}" for k, v in overrides.items()) if overrides else ""
        src = f"{where} with {overrides_where}: {given}" if overrides else where
        raise ConfigError(f"{src}: {e}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line, the value parsed as YAML (``w=0.7``, ``window=center``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{text}' must look like key=value")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise ConfigError(f"override '{text}': the value is not valid YAML; quote it") from None


def as_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg or {})
