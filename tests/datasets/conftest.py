"""A short HQ source (the sample split's GT clips cut to 6 frames) keeps every degrade run fast;
the sample split itself is the session fixture ``sample_split`` of tests/conftest.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

N_FRAMES = 6


@pytest.fixture(scope="session")
def short_src(sample_split, tmp_path_factory) -> Path:
    """Folder of the sample split's HQ clips, first 6 frames each (FFHQ-aligned 512 PNGs)."""
    src = tmp_path_factory.mktemp("short_src")
    for clip in sample_split.clips:
        (src / clip.id).mkdir()
        for f in sorted(clip.gt.glob("*.png"))[:N_FRAMES]:
            shutil.copy(f, src / clip.id / f.name)
    return src
