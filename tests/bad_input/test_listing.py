"""Issue #22 item 8: what the listings and reports say must be true: `methods` does not call
FLAIR ready without its weights, `splits` does not list an unbuilt sample as built, the HTML
board declares its charset, and a one-method board says why it has no paired tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_input.conftest import FAST, run_cli, tiny_clips
from tests.helpers import make_split
from vfr_bench import weights as W


def _line(stdout: str, name: str) -> str:
    (line,) = [ln for ln in stdout.splitlines() if ln.split() and ln.split()[0] == name]
    return line


def _place(*names: str) -> None:
    for n in names:
        p = W.path_of(W.get(n))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"placeholder")


ENHANCE = ("codeformer", "retinaface-resnet50", "parsenet")


def test_methods_flair_not_ready_without_weights_names_them():
    p = run_cli("methods")
    assert p.returncode == 0, p.stderr
    flair = _line(p.stdout, "flair")
    assert "ready" not in flair.split("missing")[0]
    for w in ("flair-x8-bicubic", "flair-x16-bicubic", "flair-gaussian", "flair-jpeg", *ENHANCE):
        assert w in flair
    assert _line(p.stdout, "lq-upsample").split()[1] == "ready"
    assert "missing weights: keep" in _line(p.stdout, "keep")


def test_methods_flair_ready_for_the_task_whose_weights_are_all_present():
    _place("flair-x8-bicubic", *ENHANCE)
    flair = _line(run_cli("methods").stdout, "flair")
    assert "ready for x8-bicubic splits" in flair
    assert "x16-bicubic missing flair-x16-bicubic" in flair and "x4-gaussian missing flair-gaussian" in flair
    # One task's UNet without the enhancement networks is not enough.
    for n in ENHANCE:
        W.path_of(W.get(n)).unlink()
    flair = _line(run_cli("methods").stdout, "flair")
    assert "ready" not in flair and "codeformer" in flair


def test_splits_does_not_list_an_unbuilt_sample(tmp_path):
    home = tmp_path / "home"
    p = run_cli("splits", home=home)
    assert p.returncode == 0, p.stderr
    built = p.stdout.split("built splits")[1].splitlines()[1:]
    assert not any(ln.split() and ln.split()[0] == "sample" for ln in built)
    assert any("(sample)" in ln and "not built yet" in ln for ln in built)
    assert not (home / "splits" / "sample").exists()
    # A split built there is listed with its identity; a broken one is named, not a traceback.
    split = make_split(home / "splits" / "mine", tiny_clips(2), name="vfhq-mild")
    (home / "splits" / "broken").mkdir()
    (home / "splits" / "broken" / "manifest.json").write_text("{")
    from vfr_bench.datasets.splits import read_split
    p = run_cli("splits", home=home)
    assert p.returncode == 0 and "Traceback" not in p.stderr
    mine = _line(p.stdout.split("built splits")[1], "mine")
    assert read_split(split).manifest_sha256[:8] in mine and "recipe vfhq-mild" in mine and "2 clips" in mine
    assert "unreadable" in _line(p.stdout.split("built splits")[1], "broken")


@pytest.fixture
def one_method_results(tmp_path, tiny_split) -> Path:
    out = tmp_path / "res"
    p = run_cli("bench", "--split", tiny_split, "--out", out, *FAST)
    assert p.returncode == 0, p.stderr
    return out


def test_html_board_declares_utf8(one_method_results, tmp_path):
    html = tmp_path / "board.html"
    p = run_cli("leaderboard", "--results", one_method_results, "--format", "html", "--out", html)
    assert p.returncode == 0, p.stderr
    raw = html.read_bytes()
    assert raw.startswith(b"<!DOCTYPE html>") and b'<meta charset="utf-8">' in raw.split(b"</head>")[0]
    assert "PSNR ↑".encode("utf-8") in raw  # the arrows are written as UTF-8
    assert raw.rstrip().endswith(b"</html>")
    assert b"only one method" in raw


def test_one_method_board_says_why_there_are_no_paired_tests(one_method_results):
    p = run_cli("leaderboard", "--results", one_method_results)
    assert p.returncode == 0, p.stderr
    assert "Wilcoxon" in p.stdout and "only one method has a row on this split" in p.stdout
