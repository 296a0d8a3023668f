"""Where vfr-bench keeps its files: ``$VFR_BENCH_HOME`` (default ``~/.cache/vfr_bench``)."""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Root for weights and built splits; read on every call so tests can redirect it."""
    return Path(os.environ.get("VFR_BENCH_HOME", Path.home() / ".cache" / "vfr_bench")).expanduser()


def weights_dir() -> Path:
    return home() / "weights"


def splits_dir() -> Path:
    return home() / "splits"
