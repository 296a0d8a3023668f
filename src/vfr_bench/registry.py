"""Name -> lazily imported object, with "did you mean" errors.

Entries are ``"module:attr"`` strings resolved on first use, so importing
vfr_bench never imports a method's or metric's code (STYLE: lm-eval's lazy
registry). Each name is written once: methods are named by their YAML file in
``configs/methods/``, metrics by their row in ``vfr_bench.metrics.METRICS``.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Iterable


class UnknownNameError(KeyError):
    """A user-typed name that is not registered; the message lists valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def unknown(kind: str, name: str, valid: Iterable[str]) -> UnknownNameError:
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} '{name}'.{hint} Valid: {', '.join(valid)}")


def resolve(entry: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module, _, attr = entry.partition(":")
    if not attr:
        raise ValueError(f"registry entry '{entry}' must look like 'package.module:attr'")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
