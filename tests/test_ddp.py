"""DDP and multi-node on CPU (gloo): every clip exactly once, results equal to one process,
one summary (leaderboard row, W&B run) per method from the global-zero process only, crash
handling."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import REPO, make_split

pytestmark = pytest.mark.slow
VFR = [sys.executable, "-m", "vfr_bench.cli", "bench", "--metrics", "PSNR,SSIM", "--no-progress",
       "--accelerator", "cpu"]
COLS = ["method", "split", "checkpoint_sha256", "split_sha256", "n_clips", "n_failed", "n_frames", "PSNR", "SSIM"]

# Logs every process that replaces leaderboard.csv: (pid, what). Loaded by
# Python at start-up (sitecustomize) in every rank, so it sees the children Lightning starts.
SPY = '''
import os, sys
_replace = os.replace
def _spy_replace(src, dst, *a, **k):
    if str(dst).endswith("leaderboard.csv"):
        with open(os.environ["VFR_SPY"], "a") as f:
            f.write(f"{os.getpid()} leaderboard\\n")
    return _replace(src, dst, *a, **k)
os.replace = _spy_replace
'''


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}


def _run(split: str, out: Path, *extra: str, env=None, method="lq-upsample") -> subprocess.CompletedProcess:
    return subprocess.run(VFR + ["--method", method, "--split", split, "--out", str(out), *extra],
                          capture_output=True, text=True, env=env or _env(), timeout=900)


def _clip_values(out: Path, method: str = "lq-upsample") -> dict:
    recs = {p.stem: json.loads(p.read_text()) for p in (out / method).glob("*/*.json")}
    return {cid: {m: r["metrics"][m]["per_frame"] for m in ("PSNR", "SSIM")} for cid, r in recs.items()}


def _tiny_split(root: Path, n: int, frames: int = 3) -> str:
    g = np.random.default_rng(4)
    clips = {f"c{i}": (g.integers(0, 255, (frames, 16, 16, 3), dtype=np.uint8),
                       g.integers(0, 255, (frames, 64, 64, 3), dtype=np.uint8)) for i in range(n)}
    return str(make_split(root, clips))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("n_clips", [3, 4])
def test_two_ranks_equal_one_process(tmp_path, n_clips):
    """An odd and an even clip count: every clip exactly once, values equal one process."""
    split = _tiny_split(tmp_path / "tiny", n_clips)
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = _run(split, one, "--no-wandb")
    r2 = _run(split, two, "--no-wandb", "--devices", "2", "--strategy", "ddp")
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert r2.returncode == 0, r2.stderr[-2000:]
    a, b = _clip_values(one), _clip_values(two)
    assert sorted(b) == [f"c{i}" for i in range(n_clips)]  # every clip exactly once
    for cid in a:
        for m in ("PSNR", "SSIM"):
            np.testing.assert_allclose(a[cid][m], b[cid][m], rtol=0, atol=1e-6)
    la, lb = pd.read_csv(one / "leaderboard.csv"), pd.read_csv(two / "leaderboard.csv")
    pd.testing.assert_frame_equal(la[COLS], lb[COLS])
    assert r2.stdout.count("leaderboard:") == 1, "only rank 0 reports"


def test_resumed_method_then_another_summarised_once_by_rank_zero(tmp_path):
    """`--method a,b --devices 2` with `a` fully resumed: one row per method, written by one
    process only, one W&B run per method, no W&B warning from any rank."""
    methods = tmp_path / "methods"
    methods.mkdir()
    (methods / "lq-bilinear.yaml").write_text(
        "entry: vfr_bench.methods.baselines:LQUpsample\ndescription: test baseline\nparams:\n  mode: bilinear\n")
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    (spy_dir / "sitecustomize.py").write_text(SPY)
    spy_log = tmp_path / "spy.log"
    env = _env(VFR_BENCH_METHODS=str(methods), PYTHONPATH=f"{spy_dir}{os.pathsep}{REPO}", VFR_SPY=str(spy_log),
               WANDB_MODE="offline", WANDB_SILENT="true")
    split, out = _tiny_split(tmp_path / "tiny", 3), tmp_path / "res"
    first = _run(split, out, "--no-wandb", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    spy_log.unlink()
    r = _run(split, out, "--devices", "2", "--strategy", "ddp", "--wandb", "offline", env=env,
             method="lq-upsample,lq-bilinear")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "W&B logging skipped" not in r.stderr + r.stdout
    board = pd.read_csv(out / "leaderboard.csv")
    assert sorted(board["method"]) == ["lq-bilinear", "lq-upsample"]
    events = [line.split() for line in spy_log.read_text().splitlines()]
    writers = {pid for pid, what in events if what == "leaderboard"}
    assert len(writers) == 1, f"leaderboard.csv written by processes {writers}"
    assert sum(what == "leaderboard" for _, what in events) == 2  # one row per method
    runs = list((out / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, runs  # one W&B run per method
    run_pids = {re.search(r"MainThread:(\d+)", (run / "logs" / "debug.log").read_text()).group(1) for run in runs}
    assert run_pids == writers, f"W&B runs started by {run_pids}, leaderboard written by {writers}"
    assert "lq-upsample on tiny: 3 clips resumed" in r.stdout


def test_two_nodes_equal_one_process(tmp_path):
    """Two "nodes" of one CPU process each on 127.0.0.1 (gloo), started as SLURM or torchrun
    would: every clip once, metric columns equal a single-process run to 1e-6."""
    split = _tiny_split(tmp_path / "tiny", 5)
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = _run(split, one, "--no-wandb")
    assert r1.returncode == 0, r1.stderr[-2000:]
    port = str(_free_port())
    args = VFR + ["--method", "lq-upsample", "--split", split, "--out", str(two), "--no-wandb",
                  "--num-nodes", "2", "--devices", "1", "--strategy", "ddp"]
    procs = [subprocess.Popen(args, env=_env(NODE_RANK=str(k), MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in (0, 1)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-3000:]
    assert "leaderboard:" in outs[0][0] and "leaderboard:" not in outs[1][0], "node 0 alone summarises"
    a, b = _clip_values(one), _clip_values(two)
    assert sorted(b) == [f"c{i}" for i in range(5)]
    for cid in a:
        for m in ("PSNR", "SSIM"):
            np.testing.assert_allclose(a[cid][m], b[cid][m], rtol=0, atol=1e-6)
    la, lb = pd.read_csv(one / "leaderboard.csv"), pd.read_csv(two / "leaderboard.csv")
    np.testing.assert_allclose(la[["PSNR", "SSIM"]].to_numpy(), lb[["PSNR", "SSIM"]].to_numpy(), rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(la[["n_clips", "n_failed", "n_frames"]], lb[["n_clips", "n_failed", "n_frames"]])


def test_killed_rank_stops_the_run_and_rerun_completes(tmp_path):
    g = np.random.default_rng(0)
    clips = {f"c{i}": (g.integers(0, 255, (12, 64, 64, 3), dtype=np.uint8),
                       g.integers(0, 255, (12, 256, 256, 3), dtype=np.uint8)) for i in range(8)}
    split = str(make_split(tmp_path / "tiny", clips))
    out = tmp_path / "res"
    proc = subprocess.Popen(VFR + ["--method", "lq-upsample", "--split", split, "--out", str(out), "--no-wandb",
                                   "--devices", "2", "--strategy", "ddp"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dirs = out / "lq-upsample"
    deadline = time.time() + 300
    ranks: list[int] = []
    while time.time() < deadline and not (ranks and list(run_dirs.glob("*/*.json"))):
        # the supervisor's child is rank 0; its child is rank 1
        rank0 = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        ranks = [int(k) for r0 in rank0
                 for k in subprocess.run(["pgrep", "-P", r0], capture_output=True, text=True).stdout.split()]
        time.sleep(0.1)
    assert ranks, "no DDP child process appeared"
    os.kill(ranks[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "DDP rank died" in err and "re-run the same command to resume" in err, err[-2000:]
    assert "Traceback" not in err.split("DDP rank died")[-1]
    kept = len(list(run_dirs.glob("*/*.json")))
    assert 1 <= kept < len(clips)
    assert not (out / "leaderboard.csv").exists()
    rerun = _run(split, out, "--no-wandb")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{kept} clips resumed" in rerun.stdout
    row = pd.read_csv(out / "leaderboard.csv").iloc[0]
    assert row["n_clips"] == 8 and row["n_failed"] == 0
