"""DDP on CPU (gloo): every clip exactly once, results equal to one process, crash handling."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import REPO, make_split
from vfr_bench.datasets.clips import ShardSampler

pytestmark = pytest.mark.slow
VFR = [sys.executable, "-m", "vfr_bench.cli", "bench", "--method", "lq-upsample", "--metrics", "PSNR,SSIM",
       "--no-progress", "--no-wandb", "--accelerator", "cpu"]
COLS = ["method", "split", "checkpoint_sha256", "split_sha256", "n_clips", "n_failed", "n_frames", "PSNR", "SSIM"]


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _run(split: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(VFR + ["--split", split, "--out", str(out), *extra], capture_output=True, text=True,
                          env=_env(), timeout=900)


def _clip_values(out: Path, split: str) -> dict:
    recs = {p.stem: json.loads(p.read_text()) for p in (out / "lq-upsample" / split).glob("*.json")}
    return {cid: {m: r["metrics"][m]["per_frame"] for m in ("PSNR", "SSIM")} for cid, r in recs.items()}


def test_shard_sampler_covers_each_item_once_without_padding(monkeypatch):
    for n, world in [(3, 2), (4, 2), (5, 3), (1, 2)]:
        seen = []
        for rank in range(world):
            monkeypatch.setattr(ShardSampler, "_rank_world", staticmethod(lambda r=rank: (r, world)))
            s = ShardSampler(n)
            items = list(s)
            assert len(items) == len(s)
            seen += items
        assert sorted(seen) == list(range(n))


@pytest.mark.parametrize("which", ["sample", "even"])
def test_two_ranks_equal_one_process(tmp_path, which, sample_split):
    """The sample split (3 clips: odd) and a 4-clip split (even)."""
    if which == "sample":
        split, name, ids = "sample", "sample", [c.id for c in sample_split.clips]
    else:
        g = np.random.default_rng(4)
        clips = {f"c{i}": (g.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8),
                           g.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)) for i in range(4)}
        split, name, ids = str(make_split(tmp_path / "tiny", clips)), "tiny", list(clips)  # name = folder name
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = _run(split, one)
    r2 = _run(split, two, "--devices", "2", "--strategy", "ddp")
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert r2.returncode == 0, r2.stderr[-2000:]
    a, b = _clip_values(one, name), _clip_values(two, name)
    assert sorted(b) == sorted(ids)  # every clip exactly once (one file per clip id)
    for cid in ids:
        for m in ("PSNR", "SSIM"):
            np.testing.assert_allclose(a[cid][m], b[cid][m], rtol=0, atol=1e-6)
    la, lb = pd.read_csv(one / "leaderboard.csv"), pd.read_csv(two / "leaderboard.csv")
    pd.testing.assert_frame_equal(la[COLS], lb[COLS])
    assert r2.stdout.count("leaderboard:") == 1, "only rank 0 reports"


def test_killed_rank_stops_the_run_and_rerun_completes(tmp_path):
    g = np.random.default_rng(0)
    clips = {f"c{i}": (g.integers(0, 255, (12, 64, 64, 3), dtype=np.uint8),
                       g.integers(0, 255, (12, 256, 256, 3), dtype=np.uint8)) for i in range(8)}
    split = str(make_split(tmp_path / "tiny", clips))
    out = tmp_path / "res"
    proc = subprocess.Popen(VFR + ["--split", split, "--out", str(out), "--devices", "2", "--strategy", "ddp"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = out / "lq-upsample" / "tiny"
    deadline = time.time() + 300
    children: list[int] = []
    while time.time() < deadline and not (children and list(run_dir.glob("*.json"))):
        kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        children = [int(k) for k in kids]
        time.sleep(0.1)
    assert children, "no DDP child process appeared"
    os.kill(children[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "DDP rank died" in err and "re-run the same command to resume" in err, err[-2000:]
    kept = len(list(run_dir.glob("*.json")))
    assert 1 <= kept < len(clips)
    assert not (out / "leaderboard.csv").exists()
    rerun = _run(split, out)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{kept} clips resumed" in rerun.stdout
    row = pd.read_csv(out / "leaderboard.csv").iloc[0]
    assert row["n_clips"] == 8 and row["n_failed"] == 0
