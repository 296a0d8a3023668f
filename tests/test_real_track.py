"""`bench` on a split without GT (the embedded sample-real, built offline): the GT-free default
set runs, every offline column gets a number, no full-reference column does, and the row says why."""
from __future__ import annotations

import math

import pandas as pd

from vfr_bench.bench import NO_GT, BenchOptions, run_bench
from vfr_bench.metrics import DEFAULT_METRICS

OFFLINE = ["NIQE", "flicker[dis]", "ID_drift[dlib]", "jitter[dlib68]", "face_found[dlib]", "LQ_IDS[dlib]"]


def test_bench_on_sample_real_scores_the_gt_free_columns(tmp_path):
    lines = []
    rc = run_bench(BenchOptions(methods=["lq-upsample"], split="sample-real", out=tmp_path / "res",
                                progress=False, wandb="off"), log=lines.append)
    assert rc == 0, lines
    row = pd.read_csv(tmp_path / "res" / "leaderboard.csv").iloc[0]
    assert row["track"] == "real" and row["n_failed"] == 0 and row["n_clips"] == 2
    for col in OFFLINE:
        assert col in row and math.isfinite(row[col]), col
    assert not any(c in row.index and pd.notna(row[c]) for c in DEFAULT_METRICS)
    assert NO_GT in row["notes"] and all(m in row["notes"] for m in ("PSNR", "LPIPS", "FVD"))
    assert row["LQ_IDS[dlib]"] == 1.0 and row["face_found[dlib]"] == 1.0  # lq-upsample returns the crop
