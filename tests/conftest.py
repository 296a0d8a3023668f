"""Shared test fixtures.

Conformance data is read from ``$VFR_BENCH_CONFORMANCE`` (default
``../shared/conformance`` next to the checkout); tests that need it skip with the
path they looked at when it is absent. The whole session runs with its own
``$VFR_BENCH_HOME`` (``$VFR_BENCH_TEST_HOME`` if set, to reuse a built sample split
between runs), so nothing touches the user's cache.
"""
from __future__ import annotations

import os
import tempfile

import pytest

from tests.helpers import conformance_root


@pytest.fixture(scope="session", autouse=True)
def _session_home():
    home = os.environ.get("VFR_BENCH_TEST_HOME") or tempfile.mkdtemp(prefix="vfr_home_")
    old = {k: os.environ.get(k) for k in ("VFR_BENCH_HOME", "WANDB_MODE")}
    os.environ["VFR_BENCH_HOME"] = home
    os.environ["WANDB_MODE"] = "disabled"
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def conformance_dir():
    root = conformance_root()
    if not root.is_dir():
        pytest.skip(f"conformance goldens not found at {root} (set VFR_BENCH_CONFORMANCE)")
    return root


@pytest.fixture(scope="session")
def sample_split(_session_home):
    """The embedded sample split, built once per session."""
    from vfr_bench.datasets.splits import load_split
    return load_split("sample")
