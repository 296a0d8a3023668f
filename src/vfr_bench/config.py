"""YAML -> typed config at the edge: an unknown key fails naming the file and the key.

(STYLE: BasicSR's nested option dicts turn typos into silent defaults; we load into
dataclasses once and pass typed values below.)
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Type, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override names a key that does not exist, or has a bad value."""


def read_yaml(path: Path) -> dict:
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level")
    return data


def to_dataclass(cls: Type[T], values: Mapping[str, Any], where: str) -> T:
    """Build dataclass ``cls`` from ``values``; unknown keys raise ConfigError naming ``where``."""
    names = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(values) - names)
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(bad)}; valid: {', '.join(sorted(names)) or '(none)'}")
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line, the value parsed as YAML (``w=0.7``, ``window=center``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override '{text}' must look like key=value")
    return key.strip(), yaml.safe_load(value)


def as_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg or {})
