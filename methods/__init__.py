"""Method registry: one YAML per method in ``configs/methods/``; the file name is the
method's name.

Each YAML holds ``entry`` (``"module:Class"``, imported on first use), a one-line
``description``, optional ``paper`` and ``params`` for the class's ``Config``
dataclass. Variants are names (``dicface-color``), not flags.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any, Mapping, Optional

from vfr_bench.config import ConfigError, read_yaml, to_dataclass
from vfr_bench.registry import resolve, unknown

_TOP_KEYS = {"entry", "description", "paper", "params"}


def config_dirs() -> list[Path]:
    """Built-in ``configs/methods`` plus any folders in ``$VFR_BENCH_METHODS`` (os.pathsep-separated),
    where users register their own methods without editing the package."""
    dirs = [Path(str(files("vfr_bench.configs").joinpath("methods")))]
    extra = os.environ.get("VFR_BENCH_METHODS", "")
    return dirs + [Path(p) for p in extra.split(os.pathsep) if p]


def method_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in config_dirs():
        for p in sorted(d.glob("*.yaml")):
            if p.stem in found:
                raise ConfigError(f"method '{p.stem}' defined twice: {found[p.stem]} and {p}")
            found[p.stem] = p
    return found


def method_names() -> list[str]:
    return sorted(method_files())


def method_spec(name: str) -> dict:
    """The YAML of method ``name``, checked for unknown top-level keys."""
    mf = method_files()
    if name not in mf:
        raise unknown("method", name, mf)
    spec = read_yaml(mf[name])
    bad = sorted(set(spec) - _TOP_KEYS)
    if bad or "entry" not in spec:
        raise ConfigError(f"{mf[name]}: unknown key(s) {bad}" if bad else f"{mf[name]}: 'entry' missing")
    spec["_path"] = mf[name]
    return spec


def build_method(name: str, overrides: Optional[Mapping[str, Any]] = None, degradation: str = "blind"):
    """Instantiate method ``name`` with its YAML params, then ``overrides`` (``--set key=value``),
    for a split of ``degradation`` (fixes what depends on it, e.g. FLAIR's task)."""
    spec = method_spec(name)
    cls = resolve(spec["entry"])
    cfg = to_dataclass(cls.Config, spec.get("params") or {}, f"{spec['_path']} params", overrides,
                       f"--set for {name}")
    return cls(name, cfg, degradation)
