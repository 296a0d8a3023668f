"""Leaderboard export: bootstrap CIs against a direct numpy computation, Wilcoxon against scipy."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wilcoxon

from tests.helpers import make_split, run_dir
from vfr_bench.bench import BenchOptions, run_bench
from vfr_bench.cli import main
from vfr_bench.leaderboard import bootstrap_ci, build_reports, wilcoxon_p
from vfr_bench.results import read_records


def test_bootstrap_matches_direct_numpy():
    v = np.random.default_rng(1).normal(size=17)
    iv = bootstrap_ci(v, seed=5, n_boot=500)
    rng = np.random.default_rng(5)
    means = np.array([v[rng.integers(0, 17, 17)].mean() for _ in range(500)])
    assert iv.mean == pytest.approx(v.mean())
    assert iv.low == pytest.approx(np.quantile(means, 0.025)) and iv.high == pytest.approx(np.quantile(means, 0.975))
    assert iv.low < iv.mean < iv.high and iv.n == 17


def test_wilcoxon_matches_scipy_and_degenerate_cases_are_nan():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=12), rng.normal(size=12) + 0.5
    assert wilcoxon_p(a, b) == pytest.approx(wilcoxon(a, b).pvalue)
    assert np.isnan(wilcoxon_p(a, a)) and np.isnan(wilcoxon_p([1.0], [2.0]))


@pytest.fixture
def two_method_results(tmp_path):
    g = np.random.default_rng(0)
    clips = {f"c{i}": (g.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8),
                       g.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)) for i in range(5)}
    split = make_split(tmp_path / "tiny", clips)
    out = tmp_path / "res"
    for mode in ("bicubic", "nearest"):
        opts = BenchOptions(methods=["lq-upsample"], split=str(split), out=out, progress=False,
                            overrides={"mode": mode})
        assert run_bench(opts, log=lambda *_: None) == 0
        # keep each run under its own method name for the comparison
        (out / "lq-upsample").rename(out / f"up-{mode}")
        import pandas as pd
        board = pd.read_csv(out / "leaderboard.csv")
        board.loc[board["method"] == "lq-upsample", "method"] = f"up-{mode}"
        board.to_csv(out / "leaderboard.csv", index=False)
    return out


def test_reports_use_clip_values_and_pair_methods(two_method_results):
    out = two_method_results
    (r,) = build_reports(out, seed=0, n_boot=300)
    assert set(r.table.index) == {"up-bicubic", "up-nearest"}
    vals = {m: [rec.metrics["PSNR"]["value"] for rec in read_records(run_dir(out, m, "tiny")).values()]
            for m in r.table.index}
    for m in r.table.index:
        assert r.table.loc[m, "PSNR"].mean == pytest.approx(np.mean(vals[m]))
        assert r.table.loc[m, "PSNR"] == bootstrap_ci(vals[m], seed=0, n_boot=300)
    row = r.pairs[(r.pairs.metric == "PSNR")].iloc[0]
    recs = {m: read_records(run_dir(out, m, "tiny")) for m in r.table.index}
    ids = sorted(recs["up-bicubic"])
    a = [recs["up-bicubic"][c].metrics["PSNR"]["value"] for c in ids]
    b = [recs["up-nearest"][c].metrics["PSNR"]["value"] for c in ids]
    assert row.n == 5 and row.p_value == pytest.approx(wilcoxon(a, b).pvalue)


def test_cli_markdown_and_plots(two_method_results, capsys, tmp_path):
    assert main(["leaderboard", "--results", str(two_method_results), "--format", "md",
                 "--plots", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "PSNR ↑" in out and "[" in out and "Wilcoxon" in out
    assert (tmp_path / "plots" / "tiny_PSNR.png").is_file() and (tmp_path / "plots" / "tiny_scatter.png").is_file()
