"""End to end: `bench` on the sample split, resume, kill-and-resume, failures, bad names, weights."""
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
import torch

from tests.helpers import REPO, make_split
from tests.helpers import run_dir as helpers_run_dir
from vfr_bench import weights as W
from vfr_bench.bench import BenchOptions, run_bench
from vfr_bench.cli import main
from vfr_bench.interface import VideoRestorer

METRIC_COLS = ["PSNR", "SSIM"]
VFR = [sys.executable, "-m", "vfr_bench.cli"]


class NaNRestorer(VideoRestorer):
    """Test method whose output is NaN."""

    def restore(self, lq, meta):
        return torch.full((lq.shape[0], 3, *meta.gt_size), float("nan"), device=lq.device)


class CountingRestorer(VideoRestorer):
    """Test method: bicubic upsampling that reports a per-clip counter."""

    def restore(self, lq, meta):
        self.frames = lq.shape[0]
        return torch.nn.functional.interpolate(lq, size=meta.gt_size, mode="bicubic").clamp(0, 1)

    def clip_stats(self):
        return {"frames_seen": self.frames}


class NeedsAbsentWeights(VideoRestorer):
    """Test method that needs a file nobody has."""

    def required_weights(self):
        return ["test-absent"]

    def restore(self, lq, meta):  # pragma: no cover - must never run
        raise AssertionError("restore ran although the weights are missing")


@pytest.fixture
def test_methods(tmp_path, monkeypatch, weight_entry):
    d = tmp_path / "methods"
    d.mkdir()
    (d / "nan-out.yaml").write_text("entry: tests.test_bench:NaNRestorer\ndescription: test\n")
    (d / "counting.yaml").write_text("entry: tests.test_bench:CountingRestorer\ndescription: test\n")
    (d / "needs-absent.yaml").write_text("entry: tests.test_bench:NeedsAbsentWeights\ndescription: test\n")
    monkeypatch.setenv("VFR_BENCH_METHODS", str(d))
    e = W.WeightFile("test-absent", "absent-net.pth", "https://example.invalid/absent-net.pth", "test")
    weight_entry(e)
    return e


def _bench(out: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(VFR + ["bench", "--method", "lq-upsample", "--split", "sample", "--out", str(out),
                                 "--no-progress", *extra], capture_output=True, text=True, env=env, **kw)


@pytest.fixture(scope="session")
def reference_run(sample_split, tmp_path_factory):
    """An uninterrupted run of lq-upsample on the sample split, then a second one that resumes."""
    out = tmp_path_factory.mktemp("ref")
    first = _bench(out)
    assert first.returncode == 0, first.stderr
    board1 = pd.read_csv(out / "leaderboard.csv")
    second = _bench(out)
    assert second.returncode == 0, second.stderr
    return out, first, second, board1


def test_bench_writes_leaderboard_and_clip_files(reference_run, sample_split):
    out, first, _, board = reference_run
    assert len(board) == 1
    row = board.iloc[0]
    assert row["method"] == "lq-upsample" and row["split"] == "sample"
    assert row["checkpoint_sha256"] == "none" and row["split_sha256"] == sample_split.manifest_sha256
    assert 20 < row["PSNR"] < 40 and 0.5 < row["SSIM"] < 1
    assert row["n_clips"] == 3 and row["n_failed"] == 0 and row["n_frames"] == 72
    assert "lq-upsample" in first.stdout and "PSNR" in first.stdout  # the printed table
    files = sorted(helpers_run_dir(out, "lq-upsample", "sample").glob("*.json"))
    assert [f.stem for f in files] == [c.id for c in sample_split.clips]
    rec = json.loads(files[0].read_text())
    assert rec["status"] == "ok" and len(rec["metrics"]["PSNR"]["per_frame"]) == 24
    assert rec["run"]["split_sha256"] == sample_split.manifest_sha256
    assert rec["provenance"]["git_commit"]


def test_second_run_resumes_and_keeps_one_row(reference_run):
    out, _, second, board1 = reference_run
    assert "3 clips resumed" in second.stdout and "0 to run" in second.stdout
    board2 = pd.read_csv(out / "leaderboard.csv")
    assert len(board2) == 1
    assert board2[METRIC_COLS].equals(board1[METRIC_COLS])


def test_split_level_value_is_mean_of_clip_values(reference_run):
    out, _, _, board = reference_run
    recs = [json.loads(p.read_text()) for p in helpers_run_dir(out, "lq-upsample", "sample").glob("*.json")]
    for m in METRIC_COLS:
        assert board.iloc[0][m] == pytest.approx(np.mean([r["metrics"][m]["value"] for r in recs]), abs=1e-9)
        for r in recs:
            assert r["metrics"][m]["value"] == pytest.approx(np.mean(r["metrics"][m]["per_frame"]))


@pytest.mark.slow
def test_sigkill_after_first_clip_then_rerun_gives_same_row(reference_run, tmp_path):
    ref_out = reference_run[0]
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(VFR + ["bench", "--method", "lq-upsample", "--split", "sample", "--out", str(out),
                                   "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dirs = out / "lq-upsample"
    deadline = time.time() + 300
    while time.time() < deadline and not list(run_dirs.glob("*/*.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done = len(list(run_dirs.glob("*/*.json")))
    assert 1 <= n_done < 3, f"expected to kill after the first clip, {n_done} were done"
    assert not (out / "leaderboard.csv").exists()
    rerun = _bench(out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{n_done} clips resumed" in rerun.stdout
    a, b = pd.read_csv(ref_out / "leaderboard.csv"), pd.read_csv(out / "leaderboard.csv")
    cols = ["method", "split", "checkpoint_sha256", "split_sha256", "n_clips", "n_failed", "n_frames"] + METRIC_COLS
    pd.testing.assert_frame_equal(a[cols], b[cols])


def _tiny_split(root: Path, bad: bool) -> Path:
    g = np.random.default_rng(0)
    gt = lambda n: g.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)  # noqa: E731
    lq = lambda n: g.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)  # noqa: E731
    clips = {"ok-a": (lq(3), gt(3)), "ok-b": (lq(2), gt(2))}
    if bad:
        clips["count-mismatch"] = (lq(3), gt(4))
        clips["corrupt"] = (lq(2), gt(2))
    make_split(root, clips)
    if bad:
        (root / "clips" / "corrupt" / "lq" / "00001.png").write_bytes(b"not a png")
    return root


def test_bad_clips_are_recorded_and_the_run_goes_on(tmp_path):
    split = _tiny_split(tmp_path / "tiny", bad=True)
    rc = run_bench(BenchOptions(methods=["lq-upsample"], split=str(split), out=tmp_path / "res", progress=False))
    assert rc == 0
    row = pd.read_csv(tmp_path / "res" / "leaderboard.csv").iloc[0]
    assert row["n_clips"] == 4 and row["n_failed"] == 2 and row["n_frames"] == 5
    run_dir = helpers_run_dir(tmp_path / "res", "lq-upsample", "tiny")
    mism = json.loads((run_dir / "count-mismatch.json").read_text())
    assert mism["status"] == "failed" and "3 frames" in mism["error"] and "4" in mism["error"]
    corrupt = json.loads((run_dir / "corrupt.json").read_text())
    assert corrupt["status"] == "failed" and "cannot decode" in corrupt["error"]


def test_nan_output_fails_every_clip_and_exits_nonzero(tmp_path, test_methods):
    split = _tiny_split(tmp_path / "tiny", bad=False)
    rc = run_bench(BenchOptions(methods=["nan-out"], split=str(split), out=tmp_path / "res", progress=False))
    assert rc == 1
    rec = json.loads((helpers_run_dir(tmp_path / "res", "nan-out", "tiny") / "ok-a.json").read_text())
    assert rec["status"] == "failed" and "NaN" in rec["error"]
    assert pd.read_csv(tmp_path / "res" / "leaderboard.csv").iloc[0]["n_failed"] == 2


def test_method_stats_are_kept_per_clip(tmp_path, test_methods):
    split = _tiny_split(tmp_path / "tiny", bad=False)
    assert run_bench(BenchOptions(methods=["counting"], split=str(split), out=tmp_path / "res",
                                  metrics=["PSNR"], progress=False)) == 0
    rec = json.loads((helpers_run_dir(tmp_path / "res", "counting", "tiny") / "ok-a.json").read_text())
    assert rec["status"] == "ok" and rec["method_stats"] == {"frames_seen": rec["n_frames"]} and rec["n_frames"] > 0


def test_missing_weights_fail_before_any_clip(tmp_path, test_methods, capsys, sample_split):
    rc = main(["bench", "--method", "needs-absent", "--split", "sample", "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert rc != 0
    assert "absent-net.pth" in err and str(W.path_of(test_methods).parent) in err and test_methods.url in err
    assert not (tmp_path / "res").exists(), "no clip may be processed"


def test_all_skips_methods_without_weights_and_says_why(tmp_path, test_methods):
    split = _tiny_split(tmp_path / "tiny", bad=False)
    lines = []
    rc = run_bench(BenchOptions(methods=["all"], split=str(split), out=tmp_path / "res", progress=False),
                   log=lines.append)
    text = "\n".join(lines)
    assert "skipped needs-absent: weights missing" in text and "absent-net.pth" in text
    board = pd.read_csv(tmp_path / "res" / "leaderboard.csv")
    assert "lq-upsample" in set(board["method"]) and "needs-absent" not in set(board["method"])
    assert rc == 1  # nan-out ran (it needs no weights) and failed every clip


@pytest.mark.parametrize("args,word", [(["--method", "lq-upsampel"], "lq-upsample"),
                                       (["--split", "nope"], "sample"),
                                       (["--metrics", "PSNRR"], "PSNR")])
def test_unknown_names_list_valid_ones(args, word, capsys, tmp_path):
    base = {"--method": "lq-upsample", "--split": "sample"}
    argv = ["bench", "--out", str(tmp_path)]
    for k, v in base.items():
        if k not in args:
            argv += [k, v]
    rc = main(argv + args)
    err = capsys.readouterr().err
    assert rc == 2 and "unknown" in err and word in err


def test_autocast_option_is_recorded_and_guarded(tmp_path):
    split = _tiny_split(tmp_path / "tiny", bad=False)
    rc = run_bench(BenchOptions(methods=["lq-upsample"], split=str(split), out=tmp_path / "res", progress=False,
                                amp="bf16"), log=lambda *_: None)
    assert rc == 0
    rec = json.loads((helpers_run_dir(tmp_path / "res", "lq-upsample", "tiny") / "ok-a.json").read_text())
    assert rec["run"]["amp"] == "bf16" and rec["status"] == "ok"
    assert "autocast bf16" in pd.read_csv(tmp_path / "res" / "leaderboard.csv").iloc[0]["notes"]
    r = subprocess.run(VFR + ["bench", "--method", "lq-upsample", "--split", str(split), "--out", str(tmp_path / "r2"),
                              "--accelerator", "cpu", "--amp", "fp16", "--no-wandb"],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2 and "CUDA" in r.stderr and "Traceback" not in r.stderr


def test_skipped_methods_end_with_the_one_fetch_command(tmp_path, sample_split):
    lines = []
    rc = run_bench(BenchOptions(methods=["all"], split="sample", out=tmp_path / "res", metrics=["PSNR"],
                                clips=[sample_split.clips[0].id], max_frames=2, progress=False, wandb="off"),
                   log=lines.append)
    assert rc == 0
    assert any(line.startswith("skipped keep: weights missing") for line in lines)
    assert lines[-1].startswith("fetch the missing weights (") and lines[-1].endswith(": make weights")
