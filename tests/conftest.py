"""Shared test fixtures.

Conformance data is read from ``$VFR_BENCH_CONFORMANCE`` (default
``../shared/conformance`` next to the checkout); tests that need it skip with the
path they looked at when it is absent. Every test runs with its own
``$VFR_BENCH_HOME`` so nothing touches the user's cache.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def conformance_root() -> Path:
    return Path(os.environ.get("VFR_BENCH_CONFORMANCE", REPO.parent / "shared" / "conformance"))


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    root = conformance_root()
    if not root.is_dir():
        pytest.skip(f"conformance goldens not found at {root} (set VFR_BENCH_CONFORMANCE)")
    return root


def load_manifest(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def load_golden(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets an empty VFR_BENCH_HOME unless it sets its own."""
    if "VFR_BENCH_HOME_KEEP" not in os.environ:
        monkeypatch.setenv("VFR_BENCH_HOME", str(tmp_path_factory.mktemp("vfr_home")))
    monkeypatch.setenv("WANDB_MODE", "disabled")
