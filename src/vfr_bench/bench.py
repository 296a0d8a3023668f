"""The benchmark runner: methods x one split, on a Lightning Trainer's test loop.

For each method: check its weights (before any clip is touched), reuse finished
clip files, restore and score the remaining clips (one clip per test step,
sharded over ranks), then summarise every clip file into one leaderboard row.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from vfr_bench import provenance
from vfr_bench import weights as weight_registry
from vfr_bench.datasets.splits import Split, load_split
from vfr_bench.methods import build_method, method_names
from vfr_bench.metrics import DEFAULT_METRICS, build_metric
from vfr_bench.metrics.base import ClipMetric, ClipScore
from vfr_bench.registry import unknown
from vfr_bench.results import (ClipRecord, format_table, merge_leaderboard, read_features, read_records,
                               reusable)


@dataclass
class BenchOptions:
    """What ``vfr-bench bench`` was asked to do.

    Attributes:
        methods: method names, or ``["all"]`` for every registered method whose weights are present.
        split: split name or folder.
        out: results root (per-clip files and leaderboard.csv).
        metrics: column names, or None for the default set.
        overrides: method params from ``--set key=value`` (applied to every method given).
    """
    methods: list[str]
    split: str = "sample"
    out: Path = Path("results")
    devices: int = 1
    accelerator: str = "auto"
    strategy: str = "auto"
    metrics: Optional[list[str]] = None
    num_workers: int = 0
    overrides: dict = field(default_factory=dict)
    progress: bool = True
    wandb: str = "auto"      # auto (online if logged in, else offline) | online | offline | off
    previews: int = 2        # clips per run with a side-by-side video and a temporal profile
    amp: str = "off"         # autocast of the methods' forward passes: off | bf16 | fp16 (CUDA)
    clips: Optional[list[str]] = None   # a subset of the split's clips (smoke runs)
    max_frames: Optional[int] = None    # only the first N frames of each clip (smoke runs)


class BenchError(RuntimeError):
    """A request that cannot run (missing weights of a named method...); exit code 2."""


def _quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # A dead DDP rank: Lightning's observer logs it at INFO, then terminates every process. Say it.
    observer = logging.getLogger("lightning_fabric.strategies.launchers.subprocess_script")
    if not observer.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "vfr-bench: error: a DDP rank died: %(message)s\nvfr-bench: finished clips are kept; "
            "re-run the same command to resume."))
        observer.addHandler(handler)
        observer.setLevel(logging.INFO)
        observer.propagate = False
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def config_sha256(describe: dict) -> str:
    return hashlib.sha256(json.dumps(describe, sort_keys=True, default=str).encode()).hexdigest()


def select_methods(requested: list[str], split: Split, overrides: dict):
    """(runnable restorers, {name: reason skipped}).

    With ``all``, methods whose weights are missing or that do not apply to the split are
    skipped. A method named explicitly with missing weights raises BenchError naming the
    file, the folder and the URL.
    """
    explicit = requested != ["all"]
    names = requested if explicit else method_names()
    restorers, skipped = [], {}
    for name in names:
        r = build_method(name, overrides if explicit else None)
        why = r.applicable(split.degradation)  # first: e.g. FLAIR picks its task (and weights) here
        if why:
            skipped[name] = f"not applicable to split {split.name}: {why}"
            continue
        missing = [w for w in r.required_weights() if not weight_registry.is_present(w)]
        if missing:
            msg = "; ".join(weight_registry.missing_message(weight_registry.get(w)) for w in missing)
            if explicit:
                raise BenchError(f"{name}: {msg}")
            skipped[name] = f"weights missing: {msg}"
            continue
        restorers.append(r)
    return restorers, skipped


def select_metrics(requested: Optional[list[str]]):
    """(metrics to run, {name: reason unavailable})."""
    metrics, unavailable = [], {}
    for name in requested or DEFAULT_METRICS:
        m = build_metric(name)
        why = m.unavailable_reason()
        if why:
            unavailable[name] = why
        else:
            metrics.append(m)
    return metrics, unavailable


def summarize(restorer, split: Split, run_key: dict, records: dict[str, ClipRecord],
              metric_names: list[str], run_dir: Path, notes: str) -> dict:
    """One leaderboard row from the clip records of a run (resumed or new alike)."""
    ok = [records[c.id] for c in split.clips if c.id in records and records[c.id].status == "ok"]
    row = {"method": restorer.method_name, "split": split.name,
           "checkpoint_sha256": run_key["weights"][0][1] if run_key["weights"] else "none",
           "split_sha256": split.manifest_sha256}
    for name in metric_names:
        m: ClipMetric = build_metric(name)
        for rec in ok:
            d = rec.metrics[name]
            feats = read_features(run_dir, rec.clip_id).get(name)
            m.add(ClipScore(d["value"], d.get("per_frame"), d.get("extra") or {}, feats))
        row[name] = m.compute()
    n_frames = sum(r.n_frames for r in ok)
    seconds = sum(r.seconds_restore for r in ok)
    row.update(n_clips=len(split.clips), n_failed=len(split.clips) - len(ok), n_frames=n_frames,
               seconds=round(seconds, 3), fps=round(n_frames / seconds, 3) if seconds > 0 else math.nan,
               timestamp=provenance.now(), version=provenance.version(), git_commit=provenance.git_commit(),
               notes=notes)
    return row


def _trainer(opts: BenchOptions):
    import pytorch_lightning as pl
    return pl.Trainer(accelerator=opts.accelerator, devices=opts.devices, strategy=opts.strategy,
                      logger=False, enable_checkpointing=False, enable_model_summary=False,
                      use_distributed_sampler=False, enable_progress_bar=opts.progress,
                      inference_mode=True)


def subset(split: Split, clip_ids: Optional[list[str]]) -> Split:
    """The split restricted to ``clip_ids`` (all clips when None); unknown ids list the valid ones."""
    if clip_ids is None:
        return split
    known = {c.id for c in split.clips}
    for cid in clip_ids:
        if cid not in known:
            raise unknown("clip", cid, known)
    return dataclasses.replace(split, clips=tuple(c for c in split.clips if c.id in set(clip_ids)))


def launched_rank() -> int:
    """Global rank of this process when Lightning's DDP launcher started it (0 otherwise).

    Lightning re-runs the command line in each child process, so every rank executes this
    runner; only rank 0 prints, summarises and writes the leaderboard.
    """
    import os
    return int(os.environ.get("NODE_RANK", 0)) * int(os.environ.get("LOCAL_WORLD_SIZE", 1)) + \
        int(os.environ.get("LOCAL_RANK", 0))


def run_bench(opts: BenchOptions, log=print) -> int:
    """Run the benchmark; returns the process exit code (0 ok, 1 a method failed on every clip).

    Raises:
        UnknownNameError: unknown method, split or metric (message lists the valid names).
        BenchError: a named method cannot run (missing weights).
    """
    from vfr_bench.datasets.clips import clip_loader
    from vfr_bench.evaluate import ClipEvaluator
    from vfr_bench.wandb_log import log_run, resolve_mode
    _quiet_lightning()
    if launched_rank() != 0:
        log = lambda *a, **k: None  # noqa: E731
    split = subset(load_split(opts.split), opts.clips)
    restorers, skipped = select_methods(opts.methods, split, opts.overrides)
    metrics, unavailable = select_metrics(opts.metrics)
    metric_names = [m.name for m in metrics]
    trimmed = [f"subset: {len(split.clips)} clips"] * (opts.clips is not None) + \
        [f"subset: first {opts.max_frames} frames"] * (opts.max_frames is not None)
    notes = "; ".join(trimmed + [f"autocast {opts.amp}"] * (opts.amp != "off") +
                      [f"{k} unavailable: {v}" for k, v in unavailable.items()])
    for k, v in unavailable.items():
        log(f"metric {k} unavailable: {v}")
    csv_path = Path(opts.out) / "leaderboard.csv"
    wandb_mode = resolve_mode(opts.wandb)
    status, rank = 0, 0
    board = None
    for restorer in restorers:
        desc = restorer.describe()
        run_key = {"method": restorer.method_name, "config_sha256": config_sha256(desc),
                   "weights": [[w, provenance.weights_sha256(w)] for w in restorer.required_weights()],
                   "split": split.name, "split_sha256": split.manifest_sha256, "amp": opts.amp,
                   "max_frames": opts.max_frames}
        run_dir = Path(opts.out) / restorer.method_name / split.name
        done = {cid for cid, r in read_records(run_dir).items() if reusable(r, run_key, metric_names)}
        todo = [c for c in split.clips if c.id not in done]
        log(f"{restorer.method_name} on {split.name}: {len(split.clips) - len(todo)} clips resumed from "
            f"{run_dir}, {len(todo)} to run")
        if todo:
            restorer.evaluator = ClipEvaluator([build_metric(n) for n in metric_names], run_dir, run_key,
                                               split.degradation, [c.id for c in split.clips[:opts.previews]],
                                               opts.amp)
            trainer = _trainer(opts)
            t0 = time.perf_counter()
            trainer.test(restorer, dataloaders=clip_loader(todo, opts.num_workers, opts.max_frames), verbose=False)
            rank = trainer.global_rank
            if trainer.world_size > 1:
                try:
                    trainer.strategy.barrier("vfr_bench_clips_written")
                except RuntimeError as e:  # gloo/nccl: a peer died
                    raise BenchError(f"a DDP rank died before finishing its clips ({str(e).splitlines()[0]}); "
                                     f"finished clips are kept in {run_dir}; re-run the same command to "
                                     f"resume") from e
            log(f"{restorer.method_name}: {len(todo)} clips in {time.perf_counter() - t0:.1f}s")
        if rank != 0:
            continue
        records = {cid: r for cid, r in read_records(run_dir).items() if r.run == run_key}
        for c in split.clips:
            r = records.get(c.id)
            if r is not None and r.status == "failed":
                log(f"  clip {c.id} failed: {r.error}")
        row = summarize(restorer, split, run_key, records, metric_names, run_dir, notes)
        if row["n_failed"] == row["n_clips"]:
            status = 1
        board = merge_leaderboard(csv_path, row)
        if wandb_mode:
            local = log_run(wandb_mode, Path(opts.out), row, run_key, desc, metric_names, records, run_dir, notes)
            if local:
                log(f"W&B ({wandb_mode}) run: {local}")
    if rank != 0:
        return status
    for name, why in skipped.items():
        log(f"skipped {name}: {why}")
    if board is not None:
        log("\n" + format_table(board, split.name) + f"\n\nleaderboard: {csv_path}")
    elif not restorers:
        log("no method ran")
    return status
