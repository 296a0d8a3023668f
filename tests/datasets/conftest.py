"""Shared fixtures: the sample split is built once per session, and a short HQ source
(its GT clips cut to 6 frames) keeps every degrade run fast."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

N_FRAMES = 6


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory) -> Path:
    """A VFR_BENCH_HOME holding the built ``sample`` split (~15 s, once)."""
    from vfr_bench.datasets.sample import build_sample
    home = tmp_path_factory.mktemp("sample_home")
    build_sample(home / "splits" / "sample")
    return home


@pytest.fixture(scope="session")
def short_src(sample_home, tmp_path_factory) -> Path:
    """Folder of the sample split's HQ clips, first 6 frames each (FFHQ-aligned 512 PNGs)."""
    src = tmp_path_factory.mktemp("short_src")
    for clip in sorted((sample_home / "splits" / "sample" / "clips").iterdir()):
        (src / clip.name).mkdir()
        for f in sorted((clip / "gt").glob("*.png"))[:N_FRAMES]:
            shutil.copy(f, src / clip.name / f.name)
    return src
