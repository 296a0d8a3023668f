"""Reading the leaderboard: means with bootstrap confidence intervals and paired tests.

A difference between two methods is only worth printing when it is larger than the
clip-to-clip noise of the split. For each (split, method, metric) we report the mean
over clips with a seeded percentile-bootstrap 95% interval over clips, and for each pair
of methods on the same split a Wilcoxon signed-rank test on their paired clip values.
Clip values come from the per-clip result files, so they are exactly the numbers the
leaderboard row averages. A split is its manifest hash: rows of two splits that share a name
are reported apart, as ``name@sha8``.
"""
from __future__ import annotations

import html
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from vfr_bench.results import FRONT, TAIL, ClipRecord, read_records, split_labels, split_matches

N_BOOT = 2000
NO_PAIRS = ("no paired tests: only one method has a row on this split (a Wilcoxon test compares "
            "two methods on the same clips; run another method on this split)")


class NoResultsError(ValueError):
    """No leaderboard to read, or no row for the requested split."""


@dataclass
class Interval:
    mean: float
    low: float
    high: float
    n: int


def bootstrap_ci(values, seed: int = 0, n_boot: int = N_BOOT, level: float = 0.95) -> Interval:
    """Mean and percentile-bootstrap interval of ``values`` (resampling clips with replacement).

    Draws ``rng.integers(0, n, (n_boot, n))`` from ``np.random.default_rng(seed)``.
    """
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, (n_boot, v.size))].mean(1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return Interval(float(v.mean()), float(lo), float(hi), int(v.size))


def wilcoxon_p(a, b) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired values; NaN when undefined
    (fewer than 2 pairs, or every difference zero)."""
    from scipy.stats import wilcoxon
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2 or np.all(a == b):
        return math.nan
    return float(wilcoxon(a, b).pvalue)


def metric_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in FRONT and c not in TAIL and c != "track" and df[c].notna().any()]


def higher_is_better(name: str) -> Optional[bool]:
    from vfr_bench.metrics import METRICS, build_metric
    return build_metric(name).higher_is_better if name in METRICS else None


def run_records(results: Path, method: str, split_sha256: str) -> dict[str, ClipRecord]:
    """clip id -> finished record of ``method`` on the split with manifest hash ``split_sha256``.

    Every clip folder under ``<results>/<method>/`` is read and records are kept by the split
    hash in their run key, so the folder layout (``<split>/``, or one that carries the hash)
    does not matter and a split that shares its name with another never mixes with it.
    """
    base = Path(results) / method
    out: dict[str, ClipRecord] = {}
    if not base.is_dir():
        return out
    for d in sorted({p.parent for p in base.rglob("*.json")}):
        for cid, r in read_records(d).items():
            if r.status == "ok" and r.run.get("split_sha256") == split_sha256:
                out[cid] = r
    return out


def clip_values(results: Path, row: pd.Series, metric: str,
                records: Optional[dict[str, ClipRecord]] = None) -> dict[str, float]:
    """clip id -> clip value of ``metric`` for the run behind a leaderboard row."""
    recs = run_records(results, row["method"], row["split_sha256"]) if records is None else records
    return {cid: float(r.metrics[metric]["value"]) for cid, r in recs.items()
            if metric in r.metrics and r.metrics[metric]["value"] is not None}


@dataclass
class SplitReport:
    split: str                   # display label: the name, or name@sha8 when the name is shared
    table: pd.DataFrame          # method x metric -> Interval
    pairs: pd.DataFrame          # method_a, method_b, metric, mean_diff, p_value, n
    directions: dict[str, Optional[bool]]
    split_sha256: str = ""
    track: str = "synthetic"     # "real" when the split has no GT (see split_tracks)


def read_board(results: Path) -> pd.DataFrame:
    """``<results>/leaderboard.csv``.

    Raises:
        NoResultsError: the file is absent, empty or unreadable; the message says what to run.
    """
    csv_path = Path(results) / "leaderboard.csv"
    if not csv_path.is_file():
        raise NoResultsError(f"no leaderboard in {results} ({csv_path.name} not found); run vfr-bench bench "
                             f"--out {results} first, or point --results at a results folder")
    try:
        board = pd.read_csv(csv_path, dtype={"method": str, "split": str, "split_sha256": str,
                                             "checkpoint_sha256": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise NoResultsError(f"{csv_path} cannot be read ({str(e).splitlines()[0]}); re-run vfr-bench bench "
                             f"to rewrite it") from None
    missing = [c for c in ("method", "split", "split_sha256") if c not in board.columns]
    if missing or board.empty:
        why = f"no column(s) {', '.join(missing)}" if missing else "no rows"
        raise NoResultsError(f"{csv_path} has {why}; run vfr-bench bench --out {results}")
    return board


TRACKS = ("synthetic", "real")
TRACK_TITLES = {"synthetic": "synthetic track (degraded from GT)", "real": "real track (no GT: GT-free metrics only)"}


def split_tracks(board: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(split, split_sha256) -> ``real`` or ``synthetic`` for every leaderboard row.

    A split is ``real`` when its manifest says ``gt: none``. The manifest is looked up among
    the built splits by its hash (the split's identity in results), else by the split's
    folder name; a ``track`` column in the CSV wins; unknown splits count as synthetic.
    """
    import json

    from vfr_bench import paths
    from vfr_bench.datasets.splits import manifest_hash
    d = paths.splits_dir()
    by_hash, by_name = {}, {}
    for f in sorted(d.glob("*/manifest.json")) if d.is_dir() else []:
        try:
            m = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        track = "real" if m.get("gt") == "none" else "synthetic"
        by_hash[manifest_hash(m)] = by_name[f.parent.name] = track
    out = {}
    for _, r in board.iterrows():
        given = r.get("track") if "track" in board.columns else None
        key = (r["split"], str(r["split_sha256"]))
        out[key] = (given if given in TRACKS else by_hash.get(key[1]) or by_name.get(key[0])
                    or ("real" if key[0] == "sample-real" else "synthetic"))
    return out


def build_reports(results: Path, split: Optional[str] = None, seed: int = 0,
                  n_boot: int = N_BOOT) -> list[SplitReport]:
    """One report per split of the leaderboard (``split``: a name, or ``name@HASH_PREFIX``).

    Raises:
        NoResultsError: no leaderboard, or no row for ``split`` (the message lists the splits).
    """
    board = read_board(results)
    board = board.assign(_label=split_labels(board))
    tracks = split_tracks(board)
    reports = []
    for (label, sha), part in board.groupby(["_label", "split_sha256"], sort=True, dropna=False):
        if split is not None and not split_matches(part["split"].iloc[0], sha, split):
            continue
        part = part.drop(columns="_label")
        metrics = metric_columns(part)
        recs = {r["method"]: run_records(results, r["method"], r["split_sha256"]) for _, r in part.iterrows()}
        values = {(r["method"], m): clip_values(results, r, m, recs[r["method"]])
                  for _, r in part.iterrows() for m in metrics}
        cells = {r["method"]: {m: bootstrap_ci(list(values[(r["method"], m)].values()), seed, n_boot)
                               for m in metrics} for _, r in part.iterrows()}
        dirs = {m: higher_is_better(m) for m in metrics}
        table = pd.DataFrame.from_dict(cells, orient="index")[metrics] if metrics else pd.DataFrame(index=list(cells))
        if metrics:
            m0, up = metrics[0], dirs[metrics[0]]
            table = table.iloc[sorted(range(len(table)), key=lambda i: -table.iloc[i][m0].mean
                                      if up is not False else table.iloc[i][m0].mean)]
        rows = []
        for a, b in itertools.combinations(sorted(part["method"]), 2):
            for m in metrics:
                va, vb = values[(a, m)], values[(b, m)]
                common = sorted(set(va) & set(vb))
                x, y = [va[c] for c in common], [vb[c] for c in common]
                diff = float(np.mean(np.subtract(x, y))) if common else math.nan
                rows.append({"method_a": a, "method_b": b, "metric": m, "mean_diff": diff,
                             "p_value": wilcoxon_p(x, y), "n": len(common)})
        name = part["split"].iloc[0]
        track = "real" if tracks.get((name, str(sha))) == "real" else "synthetic"
        reports.append(SplitReport(label, table, pd.DataFrame(rows), dirs, str(sha), track))
    if split is not None and not reports:
        shown = ", ".join(sorted(set(board["_label"])))
        raise NoResultsError(f"no rows for split {split!r} in {Path(results) / 'leaderboard.csv'}; "
                             f"splits there: {shown}")
    return sorted(reports, key=lambda r: (TRACKS.index(r.track), r.split))


def _arrow(up: Optional[bool]) -> str:
    return {True: "↑", False: "↓"}.get(up, "")


def _cell(iv: Interval) -> str:
    return "n/a" if iv.n == 0 else f"{iv.mean:.4f} [{iv.low:.4f}, {iv.high:.4f}]"


def render(reports: list[SplitReport], fmt: str = "md") -> str:
    """The reports as markdown, HTML or CSV (CSV: one row per split/method/metric)."""
    if fmt == "csv":
        rows = [{"track": r.track, "split": r.split, "split_sha256": r.split_sha256, "method": meth, "metric": m,
                 "mean": iv.mean, "ci_low": iv.low, "ci_high": iv.high, "n_clips": iv.n,
                 "higher_is_better": r.directions[m]}
                for r in reports for meth, row in r.table.iterrows() for m, iv in row.items()]
        return pd.DataFrame(rows).to_csv(index=False)
    out = []
    for i, r in enumerate(reports):
        if i == 0 or reports[i - 1].track != r.track:  # one heading per track
            out.append(f"<h1>{TRACK_TITLES[r.track]}</h1>" if fmt == "html" else f"# {TRACK_TITLES[r.track]}")
        shown = r.table.apply(lambda col: col.map(_cell))
        shown.columns = [f"{m} {_arrow(r.directions[m])}" for m in r.table.columns]
        shown.index.name = "method"
        title = f"split {r.split}: mean over clips [95% bootstrap CI]"
        pairs = r.pairs.copy()
        why = NO_PAIRS if len(r.table) < 2 else "no paired tests: no metric column has clip values"
        if fmt == "html":
            tests = pairs.to_html(index=False) if len(pairs) else f"<p>{html.escape(why)}</p>"
            out.append(f"<h2>{html.escape(title)}</h2>\n" + shown.to_html() +
                       "\n<h3>paired Wilcoxon signed-rank tests over clips</h3>\n" + tests)
        else:
            out.append(f"## {title}\n\n" + shown.to_markdown() +
                       ("\n\nPaired Wilcoxon signed-rank tests over clips (p < 0.05: the difference is "
                        "unlikely to be clip noise):\n\n" + pairs.to_markdown(index=False, floatfmt=".4g")
                        if len(pairs) else f"\n\nPaired Wilcoxon signed-rank tests over clips: {why}."))
    if fmt == "html":
        # A page of its own: the charset is declared, so the arrows and the CI brackets show as
        # written whatever the browser's default encoding.
        return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>vfr-bench leaderboard</title>\n"
                "</head>\n<body>\n" + "\n\n".join(out) + "\n</body>\n</html>\n")
    return "\n\n".join(out) + "\n"


def write_plots(reports: list[SplitReport], folder: Path) -> list[Path]:
    """Per-metric bar charts with CIs per split, and a quality-vs-temporal-stability scatter
    (LPIPS vs TLME when both exist, else the first two metrics)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for r in reports:
        for m in r.table.columns:
            ivs = r.table[m]
            fig, ax = plt.subplots(figsize=(max(3, 1 + 0.8 * len(ivs)), 3))
            means = [iv.mean for iv in ivs]
            err = np.array([[iv.mean - iv.low for iv in ivs], [iv.high - iv.mean for iv in ivs]])
            ax.bar(range(len(ivs)), means, yerr=err, capsize=4)
            ax.set_xticks(range(len(ivs)), list(r.table.index), rotation=30, ha="right")
            ax.set_title(f"{m} {_arrow(r.directions[m])} on {r.split}")
            fig.tight_layout()
            p = folder / f"{r.split}_{m.replace('[', '_').replace(']', '')}.png"
            fig.savefig(p, dpi=100)
            plt.close(fig)
            written.append(p)
        cols = list(r.table.columns)
        pair = ("LPIPS", "TLME[dlib68]") if {"LPIPS", "TLME[dlib68]"} <= set(cols) else tuple(cols[:2])
        if len(pair) == 2:
            fig, ax = plt.subplots(figsize=(4, 4))
            for meth, row in r.table.iterrows():
                ax.scatter(row[pair[0]].mean, row[pair[1]].mean)
                ax.annotate(meth, (row[pair[0]].mean, row[pair[1]].mean))
            ax.set_xlabel(f"{pair[0]} {_arrow(r.directions[pair[0]])}")
            ax.set_ylabel(f"{pair[1]} {_arrow(r.directions[pair[1]])}")
            ax.set_title(f"{r.split}")
            fig.tight_layout()
            p = folder / f"{r.split}_scatter.png"
            fig.savefig(p, dpi=100)
            plt.close(fig)
            written.append(p)
    return written


# --- metric agreement -------------------------------------------------------------------------

@dataclass
class Agreement:
    """Spearman rank correlations between the metric columns of one split.

    Units are (method, clip) pairs; each metric is oriented so that higher is better (a ↓ metric
    is negated, one of unknown direction is left as is), so a positive rho means two metrics
    agree on which outputs are better.
    """
    split: str
    track: str
    rho: pd.DataFrame   # metric x metric
    n: pd.DataFrame     # metric x metric: units with both values


def spearman(x, y) -> float:
    """Spearman's rho of paired values (``scipy.stats.spearmanr``); NaN for < 3 pairs or a constant side."""
    import warnings

    from scipy.stats import spearmanr
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(x, y)[0])


def agreement(results: Path, split: Optional[str] = None) -> list[Agreement]:
    """Per split, Spearman's rho between every two metric columns over (method, clip) units,
    from the per-clip result files (the values the leaderboard rows average)."""
    board = read_board(results)
    tracks = split_tracks(board)
    out = []
    for name, part in board.groupby("split", sort=True):
        if split is not None and name != split:
            continue
        metrics = metric_columns(part)
        units: dict[tuple[str, str], dict[str, float]] = {}
        for _, row in part.iterrows():
            for m in metrics:
                sign = -1.0 if higher_is_better(m) is False else 1.0
                for cid, v in clip_values(results, row, m).items():
                    if np.isfinite(v):
                        units.setdefault((row["method"], cid), {})[m] = sign * v
        rho = pd.DataFrame(np.eye(len(metrics)), index=metrics, columns=metrics)
        n = pd.DataFrame(0, index=metrics, columns=metrics)
        for a, b in itertools.product(metrics, repeat=2):
            both = [(u[a], u[b]) for u in units.values() if a in u and b in u]
            n.loc[a, b] = len(both)
            if a < b:
                rho.loc[a, b] = rho.loc[b, a] = spearman(*zip(*both)) if both else math.nan
        track = "real" if any(tracks[(name, str(h))] == "real" for h in part["split_sha256"]) else "synthetic"
        out.append(Agreement(name, track, rho, n))
    return sorted(out, key=lambda g: (TRACKS.index(g.track), g.split))


def render_agreement(tables: list[Agreement], fmt: str = "md") -> str:
    """The agreement matrices as markdown or HTML, or CSV with one row per (split, metric pair)."""
    if fmt == "csv":
        rows = [{"track": g.track, "split": g.split, "metric_a": a, "metric_b": b, "spearman_rho": g.rho.loc[a, b],
                 "n": int(g.n.loc[a, b])} for g in tables for a, b in itertools.combinations(g.rho.index, 2)]
        return pd.DataFrame(rows).to_csv(index=False)
    out = []
    for g in tables:
        shown = g.rho.copy()
        shown.index = shown.columns = [f"{m} {_arrow(higher_is_better(m))}".strip() for m in g.rho.index]
        off = g.n.values[~np.eye(len(g.n), dtype=bool)]
        units = f"{off.min()}-{off.max()}" if off.size and off.min() != off.max() else f"{off.max() if off.size else 0}"
        title = (f"split {g.split} ({g.track} track): Spearman rho between metrics over {units} (method, clip) "
                 f"pairs, each metric oriented so higher is better")
        if fmt == "html":
            out.append(f"<h2>{title}</h2>\n" + shown.to_html(float_format=lambda v: f"{v:.3f}"))
        else:
            out.append(f"## {title}\n\n" + shown.to_markdown(floatfmt=".3f"))
    return "\n\n".join(out) + "\n"
