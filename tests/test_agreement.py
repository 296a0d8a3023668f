"""``leaderboard --agreement``: Spearman rho between metric columns over (method, clip) pairs against
scipy on the same pooled values; the leaderboard groups splits by track (real = manifest gt none)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from tests.helpers import make_split
from vfr_bench.cli import main
from vfr_bench.datasets.splits import read_split, write_manifest
from vfr_bench.leaderboard import agreement, build_reports, render, render_agreement
from vfr_bench.results import ClipRecord, merge_leaderboard, write_record
from vfr_bench.study import run_dir  # where the runner keeps a (method, split) run's clip records

METHODS = ["m-a", "m-b", "m-c"]
CLIPS = [f"c{i}" for i in range(6)]


def _real_split(root):
    """A split folder whose manifest says gt none (one LQ frame per clip)."""
    import cv2
    entries = []
    for cid in CLIPS:
        d = root / "clips" / cid / "lq"
        d.mkdir(parents=True)
        cv2.imwrite(str(d / "00000.png"), np.zeros((8, 8, 3), np.uint8))
        entries.append({"id": cid, "n_frames": 1, "fps": 25, "lq": f"clips/{cid}/lq", "gt": None})
    write_manifest(root, {"name": root.name, "version": 1, "seed": 0, "degradation": "real", "gt": "none",
                          "clips": entries})
    return root


@pytest.fixture
def results(tmp_path, monkeypatch):
    """Results for a synthetic split 'toy' (PSNR up, LPIPS down, X of unknown direction) and a real
    split 'toy-real' (X, Y), built under a fresh $VFR_BENCH_HOME; returns (results root, values)."""
    home = tmp_path / "home"
    monkeypatch.setenv("VFR_BENCH_HOME", str(home))
    g = np.random.default_rng(0)
    frames = {c: (np.zeros((1, 4, 4, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8)) for c in CLIPS}
    splits = {"toy": read_split(make_split(home / "splits" / "toy", frames, name="toy")),
              "toy-real": read_split(_real_split(home / "splits" / "toy-real"))}
    cols = {"toy": ["PSNR", "LPIPS", "X"], "toy-real": ["X", "Y"]}
    out = tmp_path / "res"
    values = {}
    for name, split in splits.items():
        for m in METHODS:
            for k, cid in enumerate(CLIPS):
                base = g.normal()
                vals = {c: float(base * (1 if c != "LPIPS" else -1) + g.normal(scale=0.7)) for c in cols[name]}
                if name == "toy" and m == "m-c" and cid == "c5":
                    del vals["X"]  # a clip without X: pairwise n differs
                values[(name, m, cid)] = vals
                metrics = {c: {"value": v, "per_frame": [v]} for c, v in vals.items()}
                write_record(run_dir(out, m, split),
                             ClipRecord(cid, "ok", {"split_sha256": split.manifest_sha256}, metrics))
            merge_leaderboard(out / "leaderboard.csv", {"method": m, "split": name, "checkpoint_sha256": "none",
                                                        "split_sha256": split.manifest_sha256,
                                                        **{c: 0.0 for c in cols[name]}, "n_clips": len(CLIPS)})
    return out, values


def test_spearman_matches_scipy_on_the_pooled_oriented_values(results):
    out, values = results
    tables = {t.split: t for t in agreement(out)}
    toy = tables["toy"]
    assert list(toy.rho.index) == ["PSNR", "LPIPS", "X"]
    sign = {"PSNR": 1, "LPIPS": -1, "X": 1}  # LPIPS is lower-better: negated
    for a, b in (("PSNR", "LPIPS"), ("PSNR", "X"), ("LPIPS", "X")):
        units = [v for (s, _, _), v in values.items() if s == "toy" and a in v and b in v]
        ref = spearmanr([sign[a] * u[a] for u in units], [sign[b] * u[b] for u in units]).statistic
        assert toy.rho.loc[a, b] == pytest.approx(ref, abs=1e-12) and toy.rho.loc[b, a] == toy.rho.loc[a, b]
        assert toy.n.loc[a, b] == len(units)
    assert toy.n.loc["PSNR", "LPIPS"] == 18 and toy.n.loc["PSNR", "X"] == 17
    assert toy.rho.loc["PSNR", "LPIPS"] > 0.5  # they agree once LPIPS is oriented
    assert tables["toy-real"].track == "real" and toy.track == "synthetic"
    csv_text = render_agreement(list(tables.values()), "csv")
    df = pd.read_csv(pd.io.common.StringIO(csv_text))
    assert len(df) == 3 + 1 and set(df.track) == {"synthetic", "real"}


def test_leaderboard_groups_splits_by_track(results, capsys):
    out, _ = results
    reports = build_reports(out, n_boot=50)
    assert [(r.split, r.track) for r in reports] == [("toy", "synthetic"), ("toy-real", "real")]
    md = render(reports, "md")
    order = [md.index(t) for t in ("# synthetic track", "split toy:", "# real track", "split toy-real:")]
    assert order == sorted(order)
    assert "track" in render(reports, "csv").splitlines()[0]
    assert main(["leaderboard", "--results", str(out), "--agreement"]) == 0
    text = capsys.readouterr().out
    assert "split toy (synthetic track): Spearman rho" in text and "split toy-real (real track)" in text
    assert "LPIPS ↓" in text and "17-18 (method, clip) pairs" in text
