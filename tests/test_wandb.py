"""W&B offline: a bench run writes a local run with summary, per-clip table, a video and a
temporal-profile image; --no-wandb writes none. Also the preview images themselves."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers import make_split
from tests.helpers import run_dir as helpers_run_dir
from vfr_bench.bench import BenchOptions, run_bench
from vfr_bench.previews import temporal_profile


@pytest.fixture
def tiny_split(tmp_path):
    g = np.random.default_rng(0)
    clips = {f"c{i}": (g.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8),
                       g.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)) for i in range(3)}
    return make_split(tmp_path / "tiny", clips)


@pytest.mark.slow
def test_offline_run_directory_holds_summary_table_video_profile(tiny_split, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: not logged in -> offline
    out = tmp_path / "res"
    lines = []
    rc = run_bench(BenchOptions(methods=["lq-upsample"], split=str(tiny_split), out=out, progress=False),
                   log=lines.append)
    assert rc == 0
    runs = list((out / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, lines
    files = {p.relative_to(runs[0]).as_posix() for p in runs[0].rglob("*") if p.is_file()}
    summary = json.loads((runs[0] / "files" / "vfr_bench_summary.json").read_text())
    assert "PSNR" in summary and "SSIM" in summary
    assert any(f.startswith("files/media/table/clips") for f in files), files
    assert any(f.startswith("files/media/videos/preview") and f.endswith(".mp4") for f in files), files
    assert any(f.startswith("files/media/images/temporal_profile") for f in files), files


def test_no_wandb_writes_none(tiny_split, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    out = tmp_path / "res"
    assert run_bench(BenchOptions(methods=["lq-upsample"], split=str(tiny_split), out=out, progress=False,
                                  wandb="off"), log=lambda *_: None) == 0
    assert not (out / "wandb").exists()
    run_dir = helpers_run_dir(out, "lq-upsample", "tiny")
    assert (run_dir / "c0.preview.mp4").is_file() and (run_dir / "c0.profile.png").is_file()
    assert not (run_dir / "c2.preview.mp4").exists()  # previews for the first two clips only


def test_temporal_profile_stacks_one_column_over_time():
    t, h, w = 5, 8, 6
    gt = torch.zeros(t, 3, h, w)
    for i in range(t):
        gt[i, :, :, w // 2] = i / (t - 1)  # centre column brightens frame by frame
    prof = temporal_profile(gt, gt, gt, gap=2)
    assert prof.shape == (h, 3 * t + 4, 3)
    gt_strip = prof[:, -t:, 0]
    assert (gt_strip == np.round(np.linspace(0, 255, t))[None, :]).all()
