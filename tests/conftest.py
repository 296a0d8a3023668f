"""Shared test fixtures.

Conformance data is read from ``$VFR_BENCH_CONFORMANCE`` (default
``../shared/conformance`` next to the checkout); tests that need it skip with the
path they looked at when it is absent.

Every test gets its own empty ``$VFR_BENCH_HOME`` (so weights one test places never
leak into another), whose ``splits/`` folder is shared by the whole session so the
sample split is built once. ``$VFR_BENCH_TEST_SPLITS`` names a folder to keep built
splits between runs.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.helpers import conformance_root


@pytest.fixture(scope="session")
def _session_splits() -> Path:
    d = Path(os.environ.get("VFR_BENCH_TEST_SPLITS") or tempfile.mkdtemp(prefix="vfr_splits_"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch, _session_splits):
    home = tmp_path_factory.mktemp("vfr_home")
    (home / "splits").symlink_to(_session_splits, target_is_directory=True)
    monkeypatch.setenv("VFR_BENCH_HOME", str(home))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    return home


@pytest.fixture(scope="session")
def conformance_dir():
    root = conformance_root()
    if not root.is_dir():
        pytest.skip(f"conformance goldens not found at {root} (set VFR_BENCH_CONFORMANCE)")
    return root


@pytest.fixture(scope="session")
def sample_split(_session_splits):
    """The embedded sample split, built once per session into the shared splits folder."""
    from vfr_bench.datasets.splits import read_split
    root = _session_splits / "sample"
    if not (root / "manifest.json").is_file():
        from vfr_bench.datasets.sample import build_sample
        build_sample(root)
    return read_split(root)


@pytest.fixture
def weight_entry():
    """``weight_entry(entry)`` registers a weights entry for one test through the public
    ``weights.register`` and restores the registry afterwards. ``weight_entry.unhashed(name)``
    drops an entry's hash checks (a test's random file cannot carry the release's sha256)."""
    import dataclasses

    from vfr_bench import weights as W
    saved = []

    def put(entry):
        saved.append((entry.name, W.register(entry)))
        return entry

    put.unhashed = lambda name: put(dataclasses.replace(W.get(name), sha256=None, sha256_prefix=None))
    yield put
    for name, old in reversed(saved):
        if old is None:
            W.unregister(name)
        else:
            W.register(old)
