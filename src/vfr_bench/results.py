"""Results on disk: one JSON per finished clip, and the leaderboard CSV.

``<out>/<method>/<split>@<sha8>/<clip_id>.json`` (:func:`run_folder`) is written atomically as each clip
finishes (split-level features, e.g. FVD's, in ``<clip_id>.npz`` beside it). A
re-run reuses a clip file only when its run key (method, config, checkpoint
hashes, split manifest hash) matches and it holds every requested metric.
``<out>/leaderboard.csv`` holds one row per (method, split), a split being identified by
its manifest hash (``split_sha256``), never by its display name alone: a run replaces only
the row of the same method on the same split, and two splits that share a name are shown as
``name@sha8``.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

SCHEMA = 1
FRONT = ["method", "split", "track", "checkpoint_sha256", "split_sha256"]
TAIL = ["n_clips", "n_failed", "n_frames", "seconds", "fps", "timestamp", "version", "git_commit", "notes"]


@dataclass
class ClipRecord:
    """One clip's outcome.

    Attributes:
        clip_id: clip name.
        status: ``ok`` or ``failed``.
        run: the run key the result is valid for.
        metrics: column name -> {"value", "per_frame", "extra"}.
        error: why it failed.
        n_frames: frames restored.
        seconds_restore: wall time of ``restore`` (device synchronised).
        seconds_metrics: wall time of all metrics.
        method_stats: the restorer's counters for this clip (``VideoRestorer.clip_stats``).
        provenance: version, git commit, time.
    """
    clip_id: str
    status: str
    run: dict
    metrics: dict[str, dict] = field(default_factory=dict)
    error: Optional[str] = None
    n_frames: int = 0
    seconds_restore: float = 0.0
    seconds_metrics: float = 0.0
    method_stats: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    schema: int = SCHEMA


def run_folder(out: Path, method: str, split: str, split_sha256: str) -> Path:
    """Where a (method, split) run keeps its clip records: ``<out>/<method>/<split>@<sha256[:8]>``,
    so two splits that share a display name never share (or overwrite) records."""
    return Path(out) / method / f"{split}@{split_sha256[:8]}"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_record(run_dir: Path, rec: ClipRecord, features: Optional[dict[str, np.ndarray]] = None) -> Path:
    """Write one clip's record (and its split-level features) atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if features:
        tmp = run_dir / f".{rec.clip_id}.{os.getpid()}.npz"
        np.savez(tmp, **features)
        os.replace(tmp, run_dir / f"{rec.clip_id}.npz")
    path = run_dir / f"{rec.clip_id}.json"
    _atomic_write(path, json.dumps(asdict(rec), indent=1).encode())
    return path


def read_records(run_dir: Path) -> dict[str, ClipRecord]:
    """All readable clip records of a run folder (unreadable ones are ignored: they get re-run)."""
    out = {}
    if not run_dir.is_dir():
        return out
    for p in sorted(run_dir.glob("*.json")):
        try:
            d = json.loads(p.read_text())
            if d.get("schema") == SCHEMA:
                out[d["clip_id"]] = ClipRecord(**d)
        except (ValueError, TypeError, KeyError):
            continue
    return out


def read_features(run_dir: Path, clip_id: str) -> dict[str, np.ndarray]:
    p = run_dir / f"{clip_id}.npz"
    if not p.is_file():
        return {}
    with np.load(p) as z:
        return {k: z[k] for k in z.files}


def reusable(rec: ClipRecord, run_key: dict, metric_names: list[str]) -> bool:
    """A finished, matching record that holds every requested metric."""
    return rec.status == "ok" and rec.run == run_key and all(m in rec.metrics for m in metric_names)


def _fmt(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


class NotWritableError(PermissionError):
    """An output folder that cannot be written; raised before any work is done."""


def check_writable(out: Path) -> None:
    """Fail early, with one clear message, when ``out`` (or the folder it would be made in)
    cannot be written: a results folder found read-only after the first restored clip costs
    the whole clip. Probes by creating and removing a temporary file (``os.access`` says yes
    to root on a read-only mount); creates nothing that stays.

    Raises:
        NotWritableError: ``out`` is a file, or neither it nor its nearest existing parent
            accepts a new file.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotWritableError(f"{out} is a file, not a folder; choose another output folder")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise NotWritableError(f"cannot create {out}: {probe} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".vfr-bench-write-check-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        where = "" if probe == out else f" (it would be created in {probe})"
        raise NotWritableError(f"cannot write to {out}{where}: {e.strerror or e}; choose a writable "
                               f"output folder or fix its permissions") from None


def _read_board(csv_path: Path) -> pd.DataFrame:
    return pd.read_csv(csv_path, dtype={"method": str, "split": str, "checkpoint_sha256": str,
                                        "split_sha256": str, "git_commit": str})


def merge_leaderboard(csv_path: Path, row: dict) -> pd.DataFrame:
    """Put ``row`` into the CSV and rewrite it atomically.

    It replaces only the row of the same method on the same split, the split matched by
    ``split_sha256`` (its manifest hash), never by the display name: a run on another split
    that happens to share the name (two folders built from one recipe) adds a row.
    """
    new = pd.DataFrame([{k: _fmt(v) for k, v in row.items()}])
    if csv_path.is_file():
        old = _read_board(csv_path)
        old_sha = old["split_sha256"] if "split_sha256" in old else pd.Series(None, index=old.index, dtype=str)
        same = (old["method"] == row["method"]) & (old_sha == row["split_sha256"])
        old = old[~same]
        df = pd.concat([old, new], ignore_index=True) if len(old) else new
    else:
        df = new
    metric_cols = [c for c in df.columns if c not in FRONT and c not in TAIL]
    df = df[[c for c in FRONT + metric_cols + TAIL if c in df.columns]]
    df = df.sort_values(["split", "split_sha256", "method"], kind="stable").reset_index(drop=True)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(csv_path, df.to_csv(index=False).encode())
    return df


def split_labels(df: pd.DataFrame) -> pd.Series:
    """Per row, how the split is shown: its name, or ``name@sha8`` (the first 8 hex digits of
    its manifest hash) where that name belongs to more than one split in ``df``."""
    sha = df["split_sha256"].astype(str)
    n_hashes = sha.groupby(df["split"]).transform("nunique")
    return df["split"].where(n_hashes <= 1, df["split"] + "@" + sha.str[:8])


def split_matches(name: str, sha256: str, query: str) -> bool:
    """Whether ``query`` (``name``, or ``name@HASH_PREFIX`` with at least 4 hex digits, as
    printed by :func:`split_labels`) selects the split ``name`` with manifest hash ``sha256``."""
    q_name, at, q_hash = query.partition("@")
    if not at:
        return query == name
    return q_name == name and len(q_hash) >= 4 and str(sha256).startswith(q_hash)


def format_table(df: pd.DataFrame, split: Optional[str] = None) -> str:
    """The leaderboard as a text table (metric columns and speed), one block per split.

    Args:
        split: show only this split: a name (every split of that name), or ``name@HASH_PREFIX``.
    """
    blocks = []
    df = df.assign(_label=split_labels(df))
    for (label, sha), part in df.groupby(["_label", "split_sha256"], sort=True, dropna=False):
        name = part["split"].iloc[0]
        if split is not None and not split_matches(name, sha, split):
            continue
        metric_cols = [c for c in part.columns if c not in FRONT and c not in TAIL and c != "_label"
                       and part[c].notna().any()]
        show = part[["method"] + metric_cols + ["n_clips", "n_failed", "fps"]].copy()
        blocks.append(f"split: {label}\n" + show.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return "\n\n".join(blocks)
