"""Issue #22 item 6: bad input gives one `vfr-bench: error:` line and exit 2, never a
traceback, and leaves nothing half-written: unknown split names, missing or corrupted split
folders, a read-only results folder, a checkpoint failing its hash, no leaderboard yet."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bad_input.conftest import FAST, assert_user_error, run_cli
from vfr_bench.datasets.splits import SplitError, read_split
from vfr_bench.results import NotWritableError, check_writable


def test_split_name_that_is_not_built_says_give_a_path(tmp_path, tiny_split):
    out = tmp_path / "res"
    # The user has a split folder elsewhere and types its folder name.
    p = run_cli("bench", "--split", tiny_split.name, "--out", out, *FAST)
    line = assert_user_error(p, "unknown split 'tiny'", "sample", "or give the path of a split folder")
    assert str(Path(os.environ["VFR_BENCH_HOME"]) / "splits") in line
    assert not out.exists()


def test_nonexistent_split_folder(tmp_path):
    out = tmp_path / "res"
    p = run_cli("bench", "--split", tmp_path / "no-such-split", "--out", out, *FAST)
    assert_user_error(p, "no split folder", "no-such-split")
    assert not out.exists()


def test_folder_without_manifest_is_not_a_split(tmp_path):
    (tmp_path / "frames").mkdir()
    p = run_cli("bench", "--split", tmp_path / "frames", "--out", tmp_path / "res", *FAST)
    assert_user_error(p, "has no manifest.json", "vfr-bench degrade")


DAMAGE = {"truncated": lambda t: t[: len(t) // 2].encode(), "not-a-mapping": lambda t: b"[1, 2]",
          "no-clips": lambda t: json.dumps({"name": "tiny"}).encode(),
          "binary": lambda t: b"\xff\xfe\x00garbage", "clip-without-id": lambda t: t.replace('"id"', '"ID"').encode()}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_corrupted_manifest_is_a_split_error(tiny_split, damage):
    m = tiny_split / "manifest.json"
    m.write_bytes(DAMAGE[damage](m.read_text()))
    with pytest.raises(SplitError, match="manifest.json is corrupted"):
        read_split(tiny_split)


def test_corrupted_manifest_bench_and_verify(tiny_split, tmp_path):
    out = tmp_path / "res"
    # A first good run: its row and clip files must survive the bad ones.
    assert run_cli("bench", "--split", tiny_split, "--out", out, *FAST).returncode == 0
    board = (out / "leaderboard.csv").read_bytes()
    clips = {p: p.read_bytes() for p in (out / "lq-upsample").rglob("*.json")}
    assert len(clips) == 3
    m = tiny_split / "manifest.json"
    good = m.read_text()
    for damage in ("truncated", "no-clips"):
        m.write_bytes(DAMAGE[damage](good))
        p = run_cli("bench", "--split", tiny_split, "--out", out, *FAST)
        assert_user_error(p, f"{m} is corrupted", "rebuild the split")
        assert (out / "leaderboard.csv").read_bytes() == board
        assert {p: p.read_bytes() for p in (out / "lq-upsample").rglob("*.json")} == clips
        assert_user_error(run_cli("degrade", "--verify", tiny_split), f"{m} is corrupted")


def test_verify_of_a_missing_folder(tmp_path):
    assert_user_error(run_cli("degrade", "--verify", tmp_path / "nope"), "no split folder")


def test_leaderboard_without_results(tmp_path):
    p = run_cli("leaderboard", "--results", tmp_path / "empty")
    assert_user_error(p, "no leaderboard in", "run vfr-bench bench")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "leaderboard.csv").write_text("")
    assert_user_error(run_cli("leaderboard", "--results", tmp_path / "empty"), "leaderboard.csv")


def test_leaderboard_unknown_split_lists_the_ones_there(tiny_split, tmp_path):
    out = tmp_path / "res"
    assert run_cli("bench", "--split", tiny_split, "--out", out, *FAST).returncode == 0
    p = run_cli("leaderboard", "--results", out, "--split", "vfhq-mild")
    assert_user_error(p, "no rows for split 'vfhq-mild'", "splits there: tiny")


def _bad_keep_checkpoint() -> Path:
    w = Path(os.environ["VFR_BENCH_HOME"]) / "weights"
    w.mkdir(parents=True, exist_ok=True)
    (w / "KEEP-a1a14d46.pth").write_bytes(b"not the KEEP checkpoint")
    return w / "KEEP-a1a14d46.pth"


def test_checkpoint_failing_its_hash_at_bench(tiny_split, tmp_path):
    _bad_keep_checkpoint()
    out = tmp_path / "res"
    p = run_cli("bench", "--method", "keep", "--split", tiny_split, "--out", out, "--metrics", "PSNR",
                "--no-wandb", "--no-progress")
    assert_user_error(p, "KEEP-a1a14d46.pth", "sha256")
    assert not (out / "leaderboard.csv").exists() and not list(out.rglob("*.json"))


def test_checkpoint_failing_its_hash_at_restore(tmp_path):
    _bad_keep_checkpoint()
    (tmp_path / "frames").mkdir()
    p = run_cli("restore", "--method", "keep", "--input", tmp_path / "frames", "--output", tmp_path / "o.mp4",
                "--aligned", "--device", "cpu", "--no-progress")
    assert_user_error(p, "KEEP-a1a14d46.pth", "sha256")
    assert not (tmp_path / "o.mp4").exists()


# --- read-only output --------------------------------------------------------------------

def test_check_writable(read_only_dir, tmp_path):
    check_writable(tmp_path / "new" / "deeper")  # made later, in a writable parent
    assert not (tmp_path / "new").exists()       # the check creates nothing
    for bad in (read_only_dir, read_only_dir / "results"):
        with pytest.raises(NotWritableError, match="cannot write to .*read-only"):
            check_writable(bad)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotWritableError, match="is a file"):
        check_writable(tmp_path / "file")
    with pytest.raises(NotWritableError, match="is a file"):
        check_writable(tmp_path / "file" / "results")
    assert list(read_only_dir.iterdir()) == []


def test_bench_into_read_only_out_fails_before_any_clip(tiny_split, read_only_dir):
    p = run_cli("bench", "--split", tiny_split, "--out", read_only_dir / "results", *FAST)
    assert_user_error(p, "cannot write to", "read-only")
    assert list(read_only_dir.iterdir()) == []
