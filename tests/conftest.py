"""Shared test fixtures.

Conformance data is read from ``$VFR_BENCH_CONFORMANCE`` (default
``../shared/conformance`` next to the checkout); tests that need it skip with the
path they looked at when it is absent. Every test runs with its own
``$VFR_BENCH_HOME`` so nothing touches the user's cache.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers import conformance_root


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    root = conformance_root()
    if not root.is_dir():
        pytest.skip(f"conformance goldens not found at {root} (set VFR_BENCH_CONFORMANCE)")
    return root


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets an empty VFR_BENCH_HOME unless it sets its own."""
    if "VFR_BENCH_HOME_KEEP" not in os.environ:
        monkeypatch.setenv("VFR_BENCH_HOME", str(tmp_path_factory.mktemp("vfr_home")))
    monkeypatch.setenv("WANDB_MODE", "disabled")
