"""Weights & Biases dashboards: one run per (method, split), never blocking a benchmark.

Offline by default (the run directory is written under ``<out>/wandb`` and can be synced
later with ``wandb sync``); online only when the user is logged in or asks for it. Any
W&B failure is reported as a warning and the benchmark result stands.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from vfr_bench.results import ClipRecord

CURVE_METRICS = ("PSNR", "IDS[arcface]", "IDS[dlib]")


def resolve_mode(requested: str) -> Optional[str]:
    """``off`` (or ``WANDB_MODE=disabled``) -> None; ``online``/``offline`` as asked; ``auto`` -> online if logged in, else offline."""
    if requested == "off" or os.environ.get("WANDB_MODE") == "disabled":
        return None
    if requested in ("online", "offline"):
        return requested
    has_key = bool(os.environ.get("WANDB_API_KEY")) or (Path.home() / ".netrc").is_file() and \
        "api.wandb.ai" in (Path.home() / ".netrc").read_text(errors="ignore")
    return "online" if has_key else "offline"


def log_run(mode: str, out: Path, row: dict, run_key: dict, describe: dict, metric_names: list[str],
            records: dict[str, ClipRecord], run_dir: Path, notes: str) -> Optional[Path]:
    """Log one (method, split) run; returns the local run directory, or None if W&B failed."""
    try:
        return _log(mode, out, row, run_key, describe, metric_names, records, run_dir, notes)
    except Exception as e:  # a dashboard must never fail a benchmark
        warnings.warn(f"W&B logging skipped: {type(e).__name__}: {e}")
        return None


def _log(mode, out, row, run_key, describe, metric_names, records, run_dir, notes):
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    save_dir = Path(out) / "wandb"
    save_dir.mkdir(parents=True, exist_ok=True)
    config = {"method": row["method"], "split": row["split"], "checkpoint_sha256": row["checkpoint_sha256"],
              "split_sha256": row["split_sha256"], "metrics": metric_names, "method_config": describe["config"],
              "weights": run_key["weights"], "unavailable": notes}
    logger = WandbLogger(project="vfr-bench", name=f"{row['method']}/{row['split']}", save_dir=str(save_dir),
                         offline=(mode == "offline"), config=config,
                         settings=wandb.Settings(silent=True, init_timeout=60))
    run = logger.experiment
    ok = {cid: r for cid, r in sorted(records.items()) if r.status == "ok"}
    run.summary.update({k: v for k, v in row.items() if isinstance(v, (int, float)) and np.isfinite(v)})
    # the same row as plain JSON in the run's files (readable offline, synced with the run)
    (Path(run.dir) / "vfr_bench_summary.json").write_text(json.dumps(row, indent=1, default=str))
    cols = ["clip_id", "status", "n_frames", "seconds_restore"] + metric_names + ["error"]
    table = wandb.Table(columns=cols)
    for cid, r in sorted(records.items()):
        table.add_data(cid, r.status, r.n_frames, r.seconds_restore,
                       *[r.metrics.get(m, {}).get("value") for m in metric_names], r.error)
    run.log({"clips": table})
    for m in (m for m in CURVE_METRICS if m in metric_names):
        scored = sorted((r.metrics[m]["value"], cid) for cid, r in ok.items() if r.metrics[m].get("per_frame"))
        if not scored:
            continue
        picks = {"worst": scored[0][1], "best": scored[-1][1]}
        ys = [ok[cid].metrics[m]["per_frame"] for cid in picks.values()]
        run.log({f"per_frame/{m}": wandb.plot.line_series(
            xs=list(range(max(len(y) for y in ys))), ys=ys,
            keys=[f"{k} ({cid})" for k, cid in picks.items()], title=f"{m} per frame", xname="frame")})
    for cid in ok:
        video, profile = run_dir / f"{cid}.preview.mp4", run_dir / f"{cid}.profile.png"
        if video.is_file():
            run.log({f"preview/{cid}": wandb.Video(str(video), format="mp4", caption="LQ | restored | GT")})
        if profile.is_file():
            run.log({f"temporal_profile/{cid}": wandb.Image(str(profile), caption="column over time: LQ | restored | GT")})
    local = Path(run.dir).parent
    logger.finalize("success")
    wandb.finish()
    return local
