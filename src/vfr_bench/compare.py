"""``vfr-bench compare``: each cell of a paper's table beside our number, with a verdict.

For every printed cell (:mod:`vfr_bench.papers`) we look up the leaderboard row of the
mapped method on a split built from the mapped recipe, take the mapped column (or another
backend of the same metric), bring it to the paper's scale and say how comparable the two
numbers are. Verdicts, checked in this order:

* ``not in this suite``: the row's method, the test set or the column maps to ``none``, or
  the column's metric is not in ``vfr_bench.metrics.METRICS`` (read at run time, so a metric
  added later turns these cells into ``no result yet``);
* ``no result yet``: no leaderboard row of the method on a matching split, or the row lacks
  every backend of the metric;
* ``different backend``: our number comes from another backend (paper ArcFace, ours
  ``IDS[dlib]``), or the paper does not state its backend (we never assume a match);
* ``different split source``: same backend, but our LQ clips are regenerated from the
  recipe while the paper scored its own, unpublished LQ files;
* ``same protocol``: only for a test set declared ``lq_source: regenerated`` (the paper's
  numbers computed on our regenerated split; none of the four papers today).

A leaderboard row matches a test set when its split was built from the mapped recipe: the
recipe is read from the split's ``manifest.json`` under ``$VFR_BENCH_HOME/splits/<split>``
when that manifest's hash is the row's ``split_sha256``, else the split's name is taken as
the recipe. The README's paper tables are rendered here too (:func:`render_view`).
"""
from __future__ import annotations

import html
import json
import math
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from vfr_bench import paths
from vfr_bench.papers import NONE, Column, PaperTable, Row, TestSet, load_table

SAME = "same protocol"
BACKEND = "different backend"
SPLIT = "different split source"
ABSENT = "not in this suite"
PENDING = "no result yet"
VERDICTS = (SAME, BACKEND, SPLIT, ABSENT, PENDING)
CSV_COLUMNS = ["paper", "table", "method", "test_set", "column", "paper_value", "ours", "delta", "verdict"]


@dataclass(frozen=True)
class Cell:
    """One printed cell and ours beside it (``ours`` in the paper's scale)."""
    paper: str
    table: str
    method: str
    test_set: str
    column: str
    paper_value: str
    ours: Optional[float]
    delta: Optional[float]
    verdict: str
    note: str


# --- which leaderboard row ------------------------------------------------------------------

class CompareError(ValueError):
    """The results folder holds a leaderboard that cannot be read."""


def read_board(results: Path) -> list[dict]:
    """The rows of ``results/leaderboard.csv`` (none when the file is absent).

    Raises:
        CompareError: the file exists but is not a leaderboard (unparsable, or no method/split columns).
    """
    p = Path(results) / "leaderboard.csv"
    if not p.is_file():
        return []
    try:
        df = pd.read_csv(p, dtype={"split_sha256": str, "checkpoint_sha256": str, "git_commit": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise CompareError(f"{p} is not a readable leaderboard ({type(e).__name__}); re-run vfr-bench bench "
                           "or point --results at another folder") from None
    missing = [c for c in ("method", "split", "split_sha256") if c not in df.columns]
    if missing:
        raise CompareError(f"{p} has no {', '.join(missing)} column: not a vfr-bench leaderboard")
    return df.to_dict("records")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def split_identity(split: str, split_sha256: str) -> tuple[str, str]:
    """(recipe, text naming its HQ source) of the split a leaderboard row was scored on.

    The manifest counts only when its hash is the row's ``split_sha256`` (the folder may
    have been rebuilt since); otherwise the split's name stands for its recipe.
    """
    from vfr_bench.datasets.splits import manifest_hash
    for root in (paths.splits_dir() / split, Path(split)):
        mf = root / "manifest.json"
        if not mf.is_file():
            continue
        try:
            m = json.loads(mf.read_text())
            if manifest_hash(m) != split_sha256:
                continue
        except (ValueError, OSError):
            continue
        rec = m.get("recipe")
        recipe = rec.get("name") if isinstance(rec, dict) else rec if isinstance(rec, str) else None
        return str(recipe or m.get("name") or split), f"{m.get('hq_source', '')} {split}"
    return split, split


def matches(ident: tuple[str, str], ts: TestSet) -> bool:
    recipe, hq = ident
    return recipe == ts.recipe and (not ts.hq_source or _norm(ts.hq_source) in _norm(hq))


def _pick(rows: list[dict], recipe: str) -> tuple[Optional[dict], list[str]]:
    """The row to compare (the split named as its recipe first, then the latest); the others' splits."""
    if not rows:
        return None, []
    rows = sorted(rows, key=lambda b: (str(b["split"]) == recipe, str(b.get("timestamp", ""))), reverse=True)
    return rows[0], [str(b["split"]) for b in rows[1:]]


# --- which column ------------------------------------------------------------------------

def _family(name: str) -> str:
    return name.split("[", 1)[0]


def in_suite(col: Column) -> bool:
    """Whether the registry has the column or another backend of its metric."""
    from vfr_bench.metrics import METRICS
    return any(n == col.ours or _family(n) == col.family for n in METRICS)


def _value(row: dict, name: str) -> Optional[float]:
    v = row.get(name)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def our_value(row: dict, col: Column) -> tuple[Optional[str], Optional[float]]:
    """(our column, value): the mapped column, else the first other backend of its metric."""
    from vfr_bench.metrics import METRICS
    if _value(row, col.ours) is not None:
        return col.ours, _value(row, col.ours)
    order = {n: i for i, n in enumerate(METRICS)}
    for name in sorted((k for k in row if _family(str(k)) == col.family), key=lambda k: order.get(k, len(order))):
        if _value(row, name) is not None:
            return name, _value(row, name)
    return None, None


# --- verdicts ----------------------------------------------------------------------------

def judge(t: PaperTable, r: Row, col: Column, value: str, row: Optional[dict], others: list[str]) -> Cell:
    """The verdict of one printed cell against leaderboard row ``row`` (None: no matching row)."""
    ts = t.test_set(r.test_set)

    def cell(verdict: str, note: str, ours: Optional[float] = None) -> Cell:
        delta = None if ours is None else ours - float(value)
        return Cell(t.paper, t.table, r.method, r.test_set, col.paper, value, ours, delta, verdict, note)

    if r.ours == NONE:
        return cell(ABSENT, "no method of ours" + (f"; {r.note}" if r.note else ""))
    if ts.recipe == NONE:
        return cell(ABSENT, f"no split of ours for the test set '{ts.name}'" + (f"; {ts.note}" if ts.note else ""))
    if col.ours == NONE:
        return cell(ABSENT, f"no column of ours for {col.paper}")
    if not in_suite(col):
        return cell(ABSENT, f"{col.ours} is not a metric of this suite (yet)")
    data = f" from {ts.hq_source} data" if ts.hq_source else ""
    if row is None:
        return cell(PENDING, f"no leaderboard row of {r.ours} on a split built from {ts.recipe}{data}")
    where = f"{r.ours} on {row['split']}" + (f" (also on {', '.join(others)})" if others else "")
    name, v = our_value(row, col)
    if v is None:
        return cell(PENDING, f"{where}: no {col.family} value")
    ours = v * col.scale
    scaled = f", x{col.scale:g}" if col.scale != 1 else ""
    if name != col.ours:
        return cell(BACKEND, f"{where}, {name}{scaled}; the paper's is {col.backend}", ours)
    if col.backend == "unstated":
        return cell(BACKEND, f"{where}, {name}{scaled}; the paper does not state its backend", ours)
    if ts.lq_source != "regenerated":
        return cell(SPLIT, f"{where}, {name}{scaled}; our LQ regenerated from {ts.recipe}, "
                           "the paper scored its own LQ files", ours)
    return cell(SAME, f"{where}, {name}{scaled}", ours)


def compare_table(t: PaperTable, board: list[dict]) -> list[Cell]:
    """Every printed cell of ``t`` with ours and its verdict."""
    idents: dict[tuple[str, str], tuple[str, str]] = {}
    cells = []
    for r in t.rows:
        ts = t.test_set(r.test_set)
        found = []
        for b in board:
            if str(b.get("method")) != r.ours or ts.recipe == NONE:
                continue
            key = (str(b["split"]), str(b.get("split_sha256")))
            if key not in idents:
                idents[key] = split_identity(*key)
            if matches(idents[key], ts):
                found.append(b)
        row, others = _pick(found, ts.recipe)
        for col, value in zip(t.columns, r.values):
            if value is not None:
                cells.append(judge(t, r, col, value, row, others))
    return cells


# --- output ------------------------------------------------------------------------------

def _decimals(value: str) -> int:
    return len(value.split(".", 1)[1]) if "." in value else 0


def _fmt(c: Cell, x: Optional[float], signed: bool = False) -> str:
    if x is None:
        return ""
    return f"{x:+.{_decimals(c.paper_value)}f}" if signed else f"{x:.{_decimals(c.paper_value)}f}"


def _frame(cells: list[Cell]) -> pd.DataFrame:
    return pd.DataFrame([{"method": c.method, "test set": c.test_set, "column": c.column, "paper": c.paper_value,
                          "ours": _fmt(c, c.ours), "Δ": _fmt(c, c.delta, True), "verdict": c.verdict,
                          "note": c.note} for c in cells])


def _header(t: PaperTable) -> list[tuple[str, list[str]]]:
    """(heading, lines) describing the table's mapping and protocol."""
    cols = [f"{c.paper} → {c.ours}" + (f" (paper backend: {c.backend})" if c.backend else "")
            + (f" x{c.scale:g}" if c.scale != 1 else "") for c in t.columns]
    lq = {"regenerated": "regenerated (as the paper)", "paper": "the paper scored its own files"}
    sets = [f"{s.name} → none" if s.recipe == NONE else
            f"{s.name} → recipe {s.recipe}" + (f", {s.hq_source} data" if s.hq_source else "") + f", LQ: {lq[s.lq_source]}"
            for s in t.test_sets]
    facts = [f"{f.topic}: {f.value} ({'stated' if f.stated else 'left open'}; {f.source})" for f in t.protocol]
    return [("Columns", cols), ("Test sets", sets), ("Protocol", facts)]


def _counts(cells: list[Cell]) -> str:
    n = {v: sum(c.verdict == v for c in cells) for v in VERDICTS}
    return ", ".join(f"{k} {v}" for k, v in n.items() if v)


def render(tables: list[PaperTable], cells: dict[str, list[Cell]], fmt: str = "md", results: str = "") -> str:
    """The comparison as markdown, HTML or CSV (CSV: one table, columns :data:`CSV_COLUMNS`)."""
    if fmt == "csv":
        rows = [{"paper": c.paper, "table": c.table, "method": c.method, "test_set": c.test_set, "column": c.column,
                 "paper_value": c.paper_value, "ours": "" if c.ours is None else repr(c.ours),
                 "delta": "" if c.delta is None else repr(c.delta), "verdict": c.verdict}
                for t in tables for c in cells[t.name]]
        return pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(index=False)
    out = []
    for t in tables:
        cs = cells[t.name]
        title = f"{t.label} ({t.name}): {t.title}"
        sub = f"{t.citation}. Source: {t.source}. Ours from {results or 'results'}/leaderboard.csv."
        if fmt == "html":
            parts = [f"<h2>{html.escape(title)}</h2>", f"<p>{html.escape(sub)}</p>"]
            for head, lines in _header(t):
                parts.append(f"<h3>{head}</h3><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>")
            parts.append(_frame(cs).to_html(index=False) + f"\n<p>{html.escape(_counts(cs))}</p>")
            out.append("\n".join(parts))
        else:
            parts = [f"## {title}", "", sub, ""]
            for head, lines in _header(t):
                parts += [f"{head}:", ""] + [f"- {x}" for x in lines] + [""]
            parts += [_frame(cs).to_markdown(index=False, disable_numparse=True), "", f"Verdicts: {_counts(cs)}."]
            out.append("\n".join(parts))
    return "\n\n".join(out) + "\n"


def compare(tables: list[PaperTable], results: Path) -> dict[str, list[Cell]]:
    board = read_board(results)
    return {t.name: compare_table(t, board) for t in tables}


# --- README paper tables -----------------------------------------------------------------

_BLOCK = re.compile(r"<!-- papers (?P<args>.*?) -->\n(?P<body>.*?)<!-- /papers -->", re.S)


def _csv(text: Optional[str]) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def render_view(args: str) -> str:
    """A README table of paper numbers from ``configs/papers/`` (no results involved).

    ``args`` are the marker's ``key=value`` words: ``tables=`` (names, in order),
    ``methods=`` (our method names) and/or ``rows=`` (methods as printed) select rows,
    ``main=`` (printed headers) picks the columns shown on their own; the other columns
    with a value go to ``other``. Rows printed identically in several tables (KEEP Table 1
    and Table A2) are shown once, with every table in ``reported in``.
    """
    opts = dict(w.split("=", 1) for w in shlex.split(args))
    bad = set(opts) - {"tables", "methods", "rows", "main"}
    if bad:
        raise ValueError(f"unknown key(s) {', '.join(sorted(bad))} in '<!-- papers {args} -->'")
    tables = [load_table(n) for n in _csv(opts.get("tables"))]
    methods, rows = set(_csv(opts.get("methods"))), set(_csv(opts.get("rows")))
    entries: list[dict] = []
    arrows: dict[str, bool] = {}
    order: list[str] = []
    for t in tables:
        for c in t.columns:
            arrows.setdefault(c.paper, c.higher_is_better)
            if c.paper not in order:
                order.append(c.paper)
        for r in t.rows:
            if r.ours not in methods and r.method not in rows:
                continue
            vals = {c.paper: v for c, v in zip(t.columns, r.values) if v is not None}
            same = next((e for e in entries if e["paper"] == t.paper and e["method"] == r.method
                         and e["test_set"] == r.test_set and e["values"] == vals), None)
            if same:
                same["tables"].append(t.table)
            else:
                entries.append({"paper": t.paper, "tables": [t.table], "method": r.method,
                                "test_set": r.test_set, "values": vals})
    shown = [h for h in order if any(h in e["values"] for e in entries)]
    main = [h for h in (_csv(opts.get("main")) or shown) if h in shown]
    other = [h for h in shown if h not in main]
    with_method = len({e["method"] for e in entries}) > 1
    head = ["reported in", "test set"] + (["method"] if with_method else []) + \
        [f"{h} {'↑' if arrows[h] else '↓'}" for h in main] + (["other"] if other else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        cells = [f"{e['paper']} {', '.join(e['tables'])}", e["test_set"]] + ([e["method"]] if with_method else [])
        cells += [e["values"].get(h, "–") for h in main]
        if other:
            cells.append(", ".join(f"{h} {e['values'][h]}" for h in other if h in e["values"]) or "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_readme(text: str) -> str:
    """``text`` with the body of every ``<!-- papers ... -->`` block re-rendered."""
    return _BLOCK.sub(lambda m: f"<!-- papers {m['args']} -->\n\n{render_view(m['args'])}\n\n<!-- /papers -->", text)


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """(args, body) of every paper-table block of a README."""
    return [(m["args"], m["body"]) for m in _BLOCK.finditer(text)]


def update_readme(path: Path) -> bool:
    """Re-render the paper tables of the README at ``path`` (atomically); True when it changed."""
    path = Path(path)
    old = path.read_text()
    new = render_readme(old)
    if new == old:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)
    return True
