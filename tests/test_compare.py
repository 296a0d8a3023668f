"""vfr-bench compare: matching leaderboard rows to the papers' test sets, scales and verdicts."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers import REPO
from vfr_bench import compare as C
from vfr_bench import paths
from vfr_bench.datasets.splits import manifest_hash
from vfr_bench.papers import load_table, papers_dir, read_table, table_names

VFR = [sys.executable, "-m", "vfr_bench.cli"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(VFR + list(args), capture_output=True, text=True, env=env)


@pytest.fixture
def own_home(tmp_path, monkeypatch):
    """A home whose splits folder is not the session's shared one (fake splits stay here)."""
    monkeypatch.setenv("VFR_BENCH_HOME", str(tmp_path / "home"))


def fake_split(name: str, recipe: str, hq_source: str = "folder VFHQ-Test") -> str:
    """A split folder holding only a manifest built from ``recipe``; returns its hash."""
    m = {"name": recipe, "version": 1, "seed": 0, "recipe": {"name": recipe}, "hq_source": hq_source, "clips": []}
    root = paths.splits_dir() / name
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(m))
    return manifest_hash(m)


def board(tmp_path, rows: list[dict]):
    out = tmp_path / "res"
    out.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "leaderboard.csv", index=False)
    return out


def cells_of(out, table: str) -> list[C.Cell]:
    t = load_table(table)
    return C.compare([t], out)[table]


def find(cells, method, column, test_set=None):
    (c,) = [c for c in cells if c.method == method and c.column == column
            and (test_set is None or c.test_set == test_set)]
    return c


def test_keep_table1_without_results_prints_the_row_and_no_result_yet(tmp_path):
    p = run_cli("compare", "--paper", "keep-table1", "--results", str(tmp_path / "none"))
    assert p.returncode == 0, p.stderr
    keep = [line for line in p.stdout.splitlines() if line.startswith("| KEEP (Ours)")]
    assert len(keep) == 7
    for line, value in zip(keep, ["27.9994", "0.8267", "0.1619", "0.7960", "8.8182", "3.6866", "3.2538"]):
        assert f"| {value} " in line and "no result yet" in line
    assert "not in this suite" in p.stdout  # GPEN & co


def test_unknown_table_is_one_line_and_exit_2():
    p = run_cli("compare", "--paper", "keep-tabel1")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0
    assert "vfr-bench: error: unknown paper table 'keep-tabel1'" in p.stderr and "keep-table1" in p.stderr


def test_missing_paper_argument_is_exit_2():
    p = run_cli("compare")
    assert p.returncode == 2 and "Traceback" not in p.stderr and "--paper" in p.stderr


def test_list_names_every_table():
    p = run_cli("compare", "--list")
    assert p.returncode == 0
    for n in table_names():
        assert n in p.stdout


def test_verdicts_backend_scale_and_split_source(own_home, tmp_path):
    sha = fake_split("my-mild", "vfhq-mild")
    out = board(tmp_path, [
        {"method": "keep", "split": "my-mild", "split_sha256": sha, "PSNR": 28.0, "IDS[dlib]": 0.9,
         "sigma_IDS[arcface]": 3.5, "AKD[dlib68]": 2.0, "timestamp": "2026-01-01T00:00:00+00:00"},
        {"method": "keep", "split": "vfhq-medium", "split_sha256": "0" * 64, "PSNR": 27.0},  # no manifest: name
        {"method": "keep", "split": "other", "split_sha256": "1" * 64, "PSNR": 1.0},        # matches nothing
    ])
    cells = cells_of(out, "keep-table1")
    psnr = find(cells, "KEEP (Ours)", "PSNR")
    assert psnr.verdict == C.SPLIT and psnr.ours == 28.0 and psnr.delta == pytest.approx(28.0 - 27.9994)
    assert "my-mild" in psnr.note
    ids = find(cells, "KEEP (Ours)", "IDS")  # paper ArcFace, ours only dlib
    assert ids.verdict == C.BACKEND and ids.ours == 0.9 and "IDS[dlib]" in ids.note
    assert find(cells, "KEEP (Ours)", "σ_IDS (x1e-2)").verdict == C.SPLIT
    akd = find(cells, "KEEP (Ours)", "AKD")  # same column, but KEEP does not state its detector
    assert akd.verdict == C.BACKEND and "does not state" in akd.note
    assert find(cells, "KEEP (Ours)", "LPIPS").verdict == C.PENDING  # the row has no LPIPS
    assert find(cells, "GPEN", "PSNR").verdict == C.ABSENT
    assert find(cells, "CodeFormer", "PSNR").verdict == C.PENDING
    medium = cells_of(out, "keep-tablea2")
    assert find(medium, "KEEP (Ours)", "PSNR", "VFHQ-medium").ours == 27.0
    assert find(medium, "KEEP (Ours)", "PSNR", "VFHQ-heavy").verdict == C.PENDING


def test_manifest_of_another_build_is_not_trusted(own_home, tmp_path):
    fake_split("rebuilt", "vfhq-mild")
    out = board(tmp_path, [{"method": "keep", "split": "rebuilt", "split_sha256": "2" * 64, "PSNR": 28.0}])
    assert C.split_identity("rebuilt", "2" * 64) == ("rebuilt", "rebuilt")
    assert find(cells_of(out, "keep-table1"), "KEEP (Ours)", "PSNR").verdict == C.PENDING


def test_split_named_as_its_recipe_wins_and_others_are_noted(own_home, tmp_path):
    a = fake_split("vfhq-mild", "vfhq-mild")
    b = fake_split("mild-seed1", "vfhq-mild")
    out = board(tmp_path, [
        {"method": "keep", "split": "mild-seed1", "split_sha256": b, "PSNR": 20.0, "timestamp": "2026-02-01"},
        {"method": "keep", "split": "vfhq-mild", "split_sha256": a, "PSNR": 28.0, "timestamp": "2026-01-01"}])
    c = find(cells_of(out, "keep-table1"), "KEEP (Ours)", "PSNR")
    assert c.ours == 28.0 and "also on mild-seed1" in c.note


def test_hq_source_tells_celebv_text_from_celebv_hq(own_home, tmp_path):
    hq = fake_split("celebv-x16-hq", "celebv-x16", "folder celebv-hq-test")
    out = board(tmp_path, [{"method": "codeformer", "split": "celebv-x16-hq", "split_sha256": hq, "PSNR": 22.0}])
    cells = cells_of(out, "flair-table1")
    assert find(cells, "CodeFormer", "PSNR", "CelebV-HQ, 16x bicubic").ours == 22.0
    assert find(cells, "CodeFormer", "PSNR", "CelebV-Text short, 16x bicubic").verdict == C.PENDING
    long = find(cells_of(out, "flair-table2"), "CodeFormer", "PSNR", "CelebV-Text long, 16x bicubic")
    assert long.verdict == C.PENDING


def test_registry_is_read_at_run_time_and_kid_is_scaled(own_home, tmp_path, monkeypatch):
    sha = fake_split("celebv-x16", "celebv-x16", "folder celebv-text-test")
    out = board(tmp_path, [{"method": "codeformer", "split": "celebv-x16", "split_sha256": sha, "KID": 0.05120}])
    from vfr_bench import metrics
    with monkeypatch.context() as mp:  # a registry without KID (as before issue #20)
        mp.delitem(metrics.METRICS, "KID")
        kid = find(cells_of(out, "flair-table2"), "CodeFormer", "KID", "CelebV-Text long, 16x bicubic")
        assert kid.verdict == C.ABSENT and "KID" in kid.note
    kid = find(cells_of(out, "flair-table2"), "CodeFormer", "KID", "CelebV-Text long, 16x bicubic")
    assert kid.ours == pytest.approx(51.20) and kid.delta == pytest.approx(0.0, abs=1e-9)
    assert kid.verdict == C.BACKEND  # FLAIR does not state KID's features


def test_same_protocol_only_for_a_regenerated_test_set(own_home, tmp_path):
    text = (papers_dir() / "keep-table1.yaml").read_text().replace("lq_source: paper", "lq_source: regenerated")
    (tmp_path / "mine.yaml").write_text(text)
    t = read_table(tmp_path / "mine.yaml")
    sha = fake_split("vfhq-mild", "vfhq-mild")
    rows = [{"method": "keep", "split": "vfhq-mild", "split_sha256": sha, "PSNR": 28.0, "IDS[arcface]": 0.8}]
    cells = C.compare_table(t, rows)
    assert find(cells, "KEEP (Ours)", "PSNR").verdict == C.SAME
    assert find(cells, "KEEP (Ours)", "IDS").verdict == C.SAME
    assert find(cells, "KEEP (Ours)", "LPIPS").verdict == C.PENDING


def test_csv_has_the_issue_columns_and_one_row_per_printed_cell(tmp_path):
    p = run_cli("compare", "--paper", "all", "--format", "csv", "--results", str(tmp_path))
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(io.StringIO(p.stdout), dtype=str)
    assert list(df.columns) == C.CSV_COLUMNS
    n = sum(v is not None for name in table_names() for r in load_table(name).rows for v in r.values)
    assert len(df) == n and set(df["verdict"]) <= set(C.VERDICTS)
    row = df[(df.paper == "KEEP") & (df.table == "Table 1") & (df.method == "KEEP (Ours)") & (df.column == "PSNR")]
    assert row["paper_value"].tolist() == ["27.9994"]


def test_after_bench_on_sample_every_cell_has_a_verdict(sample_split, tmp_path):
    from vfr_bench.bench import BenchOptions, run_bench
    out = tmp_path / "res"
    assert run_bench(BenchOptions(methods=["lq-upsample"], split="sample", out=out, metrics=["PSNR", "SSIM"],
                                  progress=False, wandb="off", previews=0), log=lambda *_: None) == 0
    assert C.split_identity("sample", sample_split.manifest_sha256)[0] == "sample"
    for fmt in ("md", "html", "csv"):
        p = run_cli("compare", "--paper", "all", "--results", str(out), "--format", fmt)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    df = pd.read_csv(io.StringIO(p.stdout), dtype=str)
    assert df["verdict"].isin(C.VERDICTS).all()
    inp = df[df.method == "Input"]  # VQFR's Input row is lq-upsample, on CelebA-Test: no split of ours
    assert len(inp) == 7 and (inp.verdict == C.ABSENT).all()


def test_unreadable_leaderboard_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "leaderboard.csv").write_text("just,a\nfile")
    p = run_cli("compare", "--paper", "keep-table1", "--results", str(tmp_path))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "vfr-bench: error:" in p.stderr and "not a vfr-bench leaderboard" in p.stderr
    assert (tmp_path / "leaderboard.csv").read_text() == "just,a\nfile"
