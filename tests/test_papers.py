"""Paper tables (configs/papers): they load, map to names that exist, hold the printed numbers,
and the README's paper tables are rendered from them."""
from __future__ import annotations

import configparser
import fnmatch
import os
import re
from pathlib import Path

import pytest

from tests.helpers import REPO
from vfr_bench.compare import readme_blocks, render_readme, render_view
from vfr_bench.config import ConfigError
from vfr_bench.datasets.recipes import recipe_names
from vfr_bench.methods import method_names
from vfr_bench.metrics import METRICS
from vfr_bench.papers import NONE, load_table, papers_dir, read_table, select, table_names

# Columns the tables name before they exist in the registry (compare says 'not in this suite' until then).
UPCOMING: set[str] = set()
TABLES = ["dicface-table1", "dicface-table2", "flair-table1", "flair-table2", "flair-table3", "keep-table1",
          "keep-tablea2", "vqfr-table1"]


def papers_text_dir() -> Path:
    """The papers' text (``$VFR_BENCH_PAPERS``, else ``shared/papers`` beside the checkout)."""
    return Path(os.environ.get("VFR_BENCH_PAPERS", REPO.parent / "shared" / "papers"))


def test_every_table_the_readme_cites_is_there():
    assert table_names() == TABLES


@pytest.mark.parametrize("name", TABLES)
def test_table_maps_to_names_that_exist(name):
    t = load_table(name)
    methods, recipes = set(method_names()), set(recipe_names())
    for r in t.rows:
        assert r.ours == NONE or r.ours in methods, (name, r.method, r.ours)
        assert all(v is None or isinstance(v, str) for v in r.values)
    for s in t.test_sets:
        assert s.recipe == NONE or s.recipe in recipes, (name, s.name, s.recipe)
        assert s.lq_source == "paper"  # none of the four papers scored our regenerated LQ
    for c in t.columns:
        assert c.ours == NONE or c.ours in METRICS or c.ours in UPCOMING, (name, c.paper, c.ours)
        assert c.backend in ("", "unstated") or c.ours.endswith(f"[{c.backend}]")
    assert t.protocol and all(f.source for f in t.protocol)
    assert all(r.values.count(None) < len(r.values) for r in t.rows)


def test_keep_mild_row_exactly_as_printed():
    t = load_table("keep-table1")
    (row,) = [r for r in t.rows if r.ours == "keep"]
    assert row.values == ("27.9994", "0.8267", "0.1619", "0.7960", "8.8182", "3.6866", "3.2538")
    assert [c.ours for c in t.columns][3:6] == ["IDS[arcface]", "AKD[dlib68]", "sigma_IDS[arcface]"]
    sigma = next(c for c in t.columns if c.ours == "sigma_IDS[arcface]")
    assert sigma.scale == 1 and "x1e-2" in sigma.paper  # our column already holds KEEP's scale


def test_scales_are_encoded():
    kid = next(c for c in load_table("flair-table2").columns if c.paper == "KID")
    assert kid.ours == "KID" and kid.scale == 1000
    ew = load_table("flair-table3").columns[0]
    assert ew.ours.startswith("E_warp[") and ew.scale == 1 and "x1e-3" in ew.paper


def _subsequence(needle, hay) -> bool:
    it = iter(hay)
    return all(x in it for x in needle)


@pytest.mark.parametrize("name", TABLES)
def test_numbers_appear_in_the_papers_text_in_order(name):
    """Every row's numbers appear, in column order, on one line of the paper's text (an
    independent check of the transcription; merged lines hold several rows' numbers)."""
    t = load_table(name)
    path = papers_text_dir() / f"{t.paper.lower()}.txt"
    if not path.is_file():
        pytest.skip(f"papers' text not found at {path} (set VFR_BENCH_PAPERS)")
    lines = [re.findall(r"\d+\.\d+", line) for line in path.read_text().splitlines()]
    for r in t.rows:
        vals = [v for v in r.values if v is not None]
        assert any(_subsequence(vals, toks) for toks in lines), (name, r.method, r.test_set, vals)


def test_select_by_table_paper_or_all():
    assert [t.name for t in select("keep")] == ["keep-table1", "keep-tablea2"]
    assert [t.name for t in select("flair-table2")] == ["flair-table2"]
    assert len(select("all")) == len(TABLES)
    with pytest.raises(KeyError, match="keep-table1"):
        select("keep-tabel1")


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('"27.9994"', "27.9994"), "quoted string"),
    (lambda s: s.replace("paper: KEEP\n", "paper: KEEP\npages: 7\n"), "unknown key"),
    (lambda s: s.replace('"3.2538"]', '"3.2538", "1.0"]'), "list of 7"),
    (lambda s: s.replace('ours: "IDS[arcface]"', 'ours: "IDS[dlib]"'), "expected NAME[arcface]"),
    (lambda s: s.replace("recipe: vfhq-mild, lq_source: paper", "recipe: vfhq-mild, lq_source: theirs"), "lq_source"),
    (lambda s: s.replace("test_set: VFHQ-mild, ours: keep", "test_set: VFHQ-mid, ours: keep"), "not in test_sets"),
    (lambda s: s.replace('"27.9994"', '"27.99.94"'), "not a number"),
])
def test_bad_table_fails_naming_file_and_problem(tmp_path, edit, message):
    text = (papers_dir() / "keep-table1.yaml").read_text()
    bad = tmp_path / "keep-table1.yaml"
    bad.write_text(edit(text))
    with pytest.raises(ConfigError, match=re.escape(message)) as e:
        read_table(bad)
    assert str(bad) in str(e.value)


def test_package_data_ships_the_tables():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    patterns = cfg["options.package_data"]["vfr_bench.configs"].split()
    assert any(fnmatch.fnmatch("papers/keep-table1.yaml", p) for p in patterns)


# --- README -----------------------------------------------------------------------------

def test_readme_paper_tables_are_rendered_from_the_yaml():
    text = (REPO / "README.md").read_text()
    blocks = readme_blocks(text)
    assert {n for args, _ in blocks for n in re.search(r"tables=(\S+)", args)[1].split(",")} == set(TABLES)
    for args, body in blocks:
        assert body.strip() == render_view(args), \
            f"README block '{args}' differs: run vfr-bench compare --render-readme README.md"
    assert render_readme(text) == text


def test_render_view_merges_repeated_rows_and_keeps_printed_strings():
    out = render_view('tables=keep-table1,keep-tablea2 methods=keep main="PSNR,SSIM"').splitlines()
    assert out[0] == "| reported in | test set | PSNR ↑ | SSIM ↑ | other |"
    assert out[2].startswith("| KEEP Table 1, Table A2 | VFHQ-mild | 27.9994 | 0.8267 | LPIPS 0.1619, IDS 0.7960,")
    assert len(out) == 5  # mild (merged), medium, heavy
    assert "| 27.2165 | 0.8124 |" in out[4]


def test_render_view_rejects_unknown_keys():
    with pytest.raises(ValueError, match="colums"):
        render_view("tables=keep-table1 colums=PSNR")
