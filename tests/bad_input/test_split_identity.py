"""Issue #22 item 3: a split is its manifest hash, its display name its folder's name. Two
splits built with one recipe from different sources and benchmarked into one results folder
keep a row each; a row is only replaced by a run on the same split."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.bad_input.conftest import FAST, run_cli
from vfr_bench.datasets.splits import read_split
from vfr_bench.results import format_table, merge_leaderboard, split_labels, split_matches


def _source(sample_split, tmp_path: Path, name: str, clip_ids: list[str], n_frames: int = 4) -> Path:
    """A folder of HQ clips (FFHQ-aligned 512 frames) cut from the sample split."""
    src = tmp_path / name
    for c in sample_split.clips:
        if c.id in clip_ids:
            (src / c.id).mkdir(parents=True)
            for f in sorted(c.gt.glob("*.png"))[:n_frames]:
                shutil.copy(f, src / c.id / f.name)
    return src


@pytest.fixture
def two_mild_splits(sample_split, tmp_path):
    """`vfhq-mild` built from two different sources into two folders named `vfhq-mild`."""
    roots = []
    for which, ids in (("a", ["astronaut-00", "astronaut-01"]), ("b", ["astronaut-02"])):
        src = _source(sample_split, tmp_path, f"src-{which}", ids)
        out = tmp_path / which / "vfhq-mild"
        p = run_cli("degrade", "--recipe", "vfhq-mild", "--src", src, "--out", out, "--no-progress")
        assert p.returncode == 0, p.stderr
        roots.append(out)
    return roots


def test_two_splits_of_one_recipe_keep_a_row_each(two_mild_splits, tmp_path):
    a_root, b_root = two_mild_splits
    a, b = read_split(a_root), read_split(b_root)
    assert a.name == b.name == "vfhq-mild" and a.recipe == b.recipe == "vfhq-mild"
    assert a.manifest_sha256 != b.manifest_sha256
    out = tmp_path / "results"

    first = run_cli("bench", "--split", a_root, "--out", out, *FAST)
    assert first.returncode == 0, first.stderr
    row_a = pd.read_csv(out / "leaderboard.csv", dtype=str)
    assert len(row_a) == 1 and row_a.iloc[0]["n_clips"] == "2"

    second = run_cli("bench", "--split", b_root, "--out", out, *FAST)
    assert second.returncode == 0, second.stderr
    board = pd.read_csv(out / "leaderboard.csv", dtype=str)
    assert len(board) == 2, "the second split replaced the first one's row"
    assert list(board["split"]) == ["vfhq-mild", "vfhq-mild"]
    assert set(board["split_sha256"]) == {a.manifest_sha256, b.manifest_sha256}
    kept = board[board["split_sha256"] == a.manifest_sha256].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, row_a)  # every column of the first row, byte for byte
    assert board[board["split_sha256"] == b.manifest_sha256].iloc[0]["n_clips"] == "1"
    # The printed table shows the split just run, labelled apart from the other one of its name.
    assert f"vfhq-mild@{b.manifest_sha256[:8]}" in second.stdout
    assert f"vfhq-mild@{a.manifest_sha256[:8]}" not in second.stdout

    # The leaderboard reports them apart, each with its own clips; one can be picked by label.
    lb = run_cli("leaderboard", "--results", out, "--format", "csv")
    assert lb.returncode == 0, lb.stderr
    rep = pd.read_csv(io.StringIO(lb.stdout))
    psnr = rep[rep.metric == "PSNR"].set_index("split")
    assert psnr.loc[f"vfhq-mild@{a.manifest_sha256[:8]}", "n_clips"] == 2
    assert psnr.loc[f"vfhq-mild@{b.manifest_sha256[:8]}", "n_clips"] == 1
    one = run_cli("leaderboard", "--results", out, "--split", f"vfhq-mild@{b.manifest_sha256[:8]}")
    assert one.returncode == 0 and f"vfhq-mild@{b.manifest_sha256[:8]}" in one.stdout
    assert a.manifest_sha256[:8] not in one.stdout

    # Re-running the first split replaces its own row only (and resumes its clips).
    again = run_cli("bench", "--split", a_root, "--out", out, *FAST)
    assert again.returncode == 0 and "2 clips resumed" in again.stdout
    board2 = pd.read_csv(out / "leaderboard.csv", dtype=str)
    assert len(board2) == 2
    metric_cols = ["PSNR", "SSIM", "n_clips", "n_failed", "n_frames"]
    pd.testing.assert_frame_equal(board2[metric_cols], board[metric_cols])


def test_split_name_is_the_folder_name(two_mild_splits, tmp_path):
    a_root, _ = two_mild_splits
    renamed = tmp_path / "my-mild"
    shutil.copytree(a_root, renamed)
    s, orig = read_split(renamed), read_split(a_root)
    assert s.name == "my-mild" and s.recipe == "vfhq-mild" and s.manifest["name"] == "vfhq-mild"
    assert s.manifest_sha256 == orig.manifest_sha256  # same content, same identity
    assert read_split(Path(str(renamed) + "/")).name == "my-mild"


def _row(method, split, sha, psnr):
    return {"method": method, "split": split, "checkpoint_sha256": "none", "split_sha256": sha, "PSNR": psnr,
            "n_clips": 1, "n_failed": 0, "n_frames": 4, "seconds": 1.0, "fps": 4.0, "timestamp": "t",
            "version": "v", "git_commit": "g", "notes": ""}


def test_merge_replaces_only_the_same_method_on_the_same_hash(tmp_path):
    csv = tmp_path / "leaderboard.csv"
    merge_leaderboard(csv, _row("m", "mild", "a" * 64, 20.0))
    merge_leaderboard(csv, _row("m", "mild", "b" * 64, 21.0))      # same name, other split: added
    merge_leaderboard(csv, _row("other", "mild", "a" * 64, 22.0))  # other method: added
    df = merge_leaderboard(csv, _row("m", "renamed", "a" * 64, 23.0))  # same split renamed: replaced
    assert len(df) == 3
    got = {(r.method, r.split, r.split_sha256[0]): r.PSNR for r in df.itertuples()}
    assert got == {("m", "mild", "b"): 21.0, ("other", "mild", "a"): 22.0, ("m", "renamed", "a"): 23.0}
    labels = dict(zip(zip(df.method, df.split_sha256.str[0]), split_labels(df)))
    assert labels == {("m", "b"): "mild@bbbbbbbb", ("other", "a"): "mild@aaaaaaaa", ("m", "a"): "renamed"}
    merge_leaderboard(csv, _row("m", "mild", "a" * 64, 24.0))
    df = pd.read_csv(csv, dtype={"split_sha256": str})
    assert sorted(split_labels(df)) == ["mild@aaaaaaaa", "mild@aaaaaaaa", "mild@bbbbbbbb"]
    text = format_table(df)
    assert "split: mild@aaaaaaaa" in text and "split: mild@bbbbbbbb" in text
    only_b = format_table(df, "mild@bbbb")
    assert "mild@bbbbbbbb" in only_b and "aaaaaaaa" not in only_b
    assert format_table(df, "mild").count("split: ") == 2


def test_split_matches():
    sha = "0123456789abcdef" * 4
    assert split_matches("mild", sha, "mild") and split_matches("mild", sha, "mild@01234567")
    assert split_matches("mild", sha, f"mild@{sha}")
    assert not split_matches("mild", sha, "mild@0") and not split_matches("mild", sha, "mild@1234")
    assert not split_matches("mild", sha, "other") and not split_matches("mild", sha, "other@0123")
