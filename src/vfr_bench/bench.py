"""The benchmark runner: methods x one split on Lightning's predict loop.

The data walk, one way: ``SplitDataModule`` yields one clip per step (Lightning shards clips
over ranks and nodes, no duplicates) -> ``VideoRestorer.predict_step`` restores it ->
``ClipScoreWriter`` (a ``BasePredictionWriter``) scores it and writes its record -> after a
barrier, the global-zero process alone builds the leaderboard row from the clip records and
logs W&B. One Trainer serves every method of the command, so every process knows its rank
from the first ``predict`` on, also for methods that are fully resumed (their ``predict`` has
no clips).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from vfr_bench import provenance
from vfr_bench import weights as weight_registry
from vfr_bench.datasets.splits import Split, load_split
from vfr_bench.methods import build_method, method_names
from vfr_bench.metrics import DEFAULT_GT_FREE_METRICS, DEFAULT_METRICS, build_metric
from vfr_bench.metrics.base import ClipScore
from vfr_bench.registry import unknown
from vfr_bench.results import (ClipRecord, check_writable, format_table, merge_leaderboard, read_features, read_records,
                               reusable, run_folder)

PRECISION = {"off": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
NO_GT = "not applicable: split has no GT"


@dataclass
class BenchOptions:
    """What ``vfr-bench bench`` was asked to do.

    Attributes:
        methods: method names, or ``["all"]`` for every registered method whose weights are present.
        split: split name or folder.
        out: results root (per-clip files and leaderboard.csv).
        metrics: column names, or None for the default set.
        overrides: method params from ``--set key=value`` (applied to every method given).
        num_nodes: machines taking part (Lightning's ``num_nodes``; SLURM or torchrun start them).
    """
    methods: list[str]
    split: str = "sample"
    out: Path = Path("results")
    devices: int = 1
    num_nodes: int = 1
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
    fid_ref: Optional[Path] = None      # reference statistics of FID[ref] (added to the metrics when given)


class BenchError(RuntimeError):
    """A request that cannot run (missing weights of a named method...); exit code 2."""


def _quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for msg in (".*does not have many workers.*", ".*LeafSpec.*", ".*infer the batch indices.*",
                ".*Total length of `DataLoader` across ranks is zero.*", ".*litmodels.*"):
        warnings.filterwarnings("ignore", message=msg)


def config_sha256(describe: dict) -> str:
    return hashlib.sha256(json.dumps(describe, sort_keys=True, default=str).encode()).hexdigest()


def select_methods(requested: list[str], split: Split, overrides: dict):
    """(runnable restorers built for the split, {name: reason skipped}).

    With ``all``, methods whose weights are missing or that do not apply to the split are
    skipped. A method named explicitly with missing weights raises BenchError naming the
    file, the folder and the URL.
    """
    explicit = requested != ["all"]
    names = requested if explicit else method_names()
    restorers, skipped = [], {}
    for name in names:
        r = build_method(name, overrides if explicit else None, split.degradation)
        why = r.applicable(split.degradation)
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


def select_metrics(requested: Optional[list[str]], has_gt: bool = True, fid_ref: Optional[Path] = None):
    """(metrics to run, {name: reason not run}): missing weights, or a full-reference metric
    on a split without GT (by default such a split runs the GT-free set). ``fid_ref`` adds
    ``FID[ref]``; an unreadable file raises BenchError."""
    names = list(requested or (DEFAULT_METRICS if has_gt else DEFAULT_GT_FREE_METRICS))
    names += ["FID[ref]"] * (fid_ref is not None and "FID[ref]" not in names)
    metrics, unavailable = [], {}
    if not requested and not has_gt:  # the default full-reference columns are named, not run
        unavailable.update({n: NO_GT for n in DEFAULT_METRICS})
    for name in names:
        m = build_metric(name, ref_stats=fid_ref)
        if name == "FID[ref]" and fid_ref is not None:
            try:
                m.reference_stats()
            except ValueError as e:
                raise BenchError(f"--fid-ref: {e}") from None
        why = NO_GT if (m.needs_gt and not has_gt) else m.unavailable_reason()
        if why:
            unavailable[name] = why
        else:
            metrics.append(m)
    return metrics, unavailable


def summarize(method: str, split: Split, run_key: dict, records: dict[str, ClipRecord],
              metric_names: list[str], run_dir: Path, notes: str, fid_ref: Optional[Path] = None) -> dict:
    """One leaderboard row from the clip records of a run (resumed or new alike): each
    metric's ``reduce`` over the clip scores (with the features stored beside each clip)."""
    ok = [records[c.id] for c in split.clips if c.id in records and records[c.id].status == "ok"]
    row = {"method": method, "split": split.name, "track": split.track,
           "checkpoint_sha256": run_key["weights"][0][1] if run_key["weights"] else "none",
           "split_sha256": split.manifest_sha256}
    for name in metric_names:
        scores = []
        for rec in ok:
            d = rec.metrics[name]
            feats = read_features(run_dir, rec.clip_id).get(name)
            scores.append(ClipScore(d["value"], d.get("per_frame"), d.get("extra") or {}, feats))
        row[name] = build_metric(name, ref_stats=fid_ref).reduce(scores)
    n_frames = sum(r.n_frames for r in ok)
    seconds = sum(r.seconds_restore for r in ok)
    row.update(n_clips=len(split.clips), n_failed=len(split.clips) - len(ok), n_frames=n_frames,
               seconds=round(seconds, 3), fps=round(n_frames / seconds, 3) if seconds > 0 else math.nan,
               timestamp=provenance.now(), version=provenance.version(), git_commit=provenance.git_commit(),
               notes=notes)
    return row


def make_trainer(opts: BenchOptions, writer):
    """The one Trainer of a bench command: predict only, no logger or checkpoints; DDP over
    ``devices`` x ``num_nodes`` when more than one process takes part (``strategy: auto``)."""
    import pytorch_lightning as pl
    if opts.amp not in PRECISION:
        raise BenchError(f"--amp must be off, bf16 or fp16, not {opts.amp!r}")
    return pl.Trainer(accelerator=opts.accelerator, devices=opts.devices, num_nodes=opts.num_nodes,
                      strategy=opts.strategy, precision=PRECISION[opts.amp], logger=False,
                      callbacks=[writer], enable_checkpointing=False, enable_model_summary=False,
                      enable_progress_bar=opts.progress, inference_mode=True)


def subset(split: Split, clip_ids: Optional[list[str]]) -> Split:
    """The split restricted to ``clip_ids`` (all clips when None); unknown ids list the valid ones."""
    if clip_ids is None:
        return split
    known = {c.id for c in split.clips}
    for cid in clip_ids:
        if cid not in known:
            raise unknown("clip", cid, known)
    return dataclasses.replace(split, clips=tuple(c for c in split.clips if c.id in set(clip_ids)))


def run_bench(opts: BenchOptions, log=print) -> int:
    """Run the benchmark; returns the process exit code (0 ok, 1 a method failed on every clip).

    Raises:
        UnknownNameError: unknown method, split or metric (message lists the valid names).
        BenchError: a named method cannot run (missing weights), or a bad option.
    """
    from vfr_bench.datasets.datamodule import SplitDataModule
    from vfr_bench.wandb_log import log_run, resolve_mode
    from vfr_bench.writer import ClipScoreWriter
    _quiet_lightning()
    if opts.amp == "fp16" and opts.accelerator == "cpu":
        raise BenchError("--amp fp16 needs a CUDA device; use --amp bf16 on CPU")
    split = subset(load_split(opts.split), opts.clips)
    check_writable(Path(opts.out))  # before any clip is restored
    restorers, skipped = select_methods(opts.methods, split, opts.overrides)
    metrics, unavailable = select_metrics(opts.metrics, split.has_gt, opts.fid_ref)
    metric_names = [m.name for m in metrics]
    trimmed = [f"subset: {len(split.clips)} clips"] * (opts.clips is not None) + \
        [f"subset: first {opts.max_frames} frames"] * (opts.max_frames is not None)
    no_gt = [k for k, v in unavailable.items() if v == NO_GT]
    notes = "; ".join(trimmed + [f"autocast {opts.amp}"] * (opts.amp != "off") +
                      [f"{', '.join(no_gt)} {NO_GT}"] * bool(no_gt) +
                      [f"{k} unavailable: {v}" for k, v in unavailable.items() if v != NO_GT])
    writer = ClipScoreWriter(metrics)
    trainer = make_trainer(opts, writer) if restorers else None
    wandb_mode = resolve_mode(opts.wandb)
    csv_path = Path(opts.out) / "leaderboard.csv"
    status, board = 0, None
    for restorer in restorers:
        desc = restorer.describe()
        run_key = {"method": restorer.method_name, "config_sha256": config_sha256(desc),
                   "weights": [[w, provenance.weights_sha256(w)] for w in restorer.required_weights()],
                   "split": split.name, "split_sha256": split.manifest_sha256, "amp": opts.amp,
                   "max_frames": opts.max_frames}
        run_dir = run_folder(opts.out, restorer.method_name, split.name, split.manifest_sha256)
        done = {cid for cid, r in read_records(run_dir).items() if reusable(r, run_key, metric_names)}
        todo = [c.id for c in split.clips if c.id not in done]
        writer.begin(run_dir, run_key, [c.id for c in split.clips[:opts.previews]])
        t0 = time.perf_counter()
        # every process calls predict, also with nothing to do: ranks are known from here on
        try:
            trainer.predict(restorer, datamodule=SplitDataModule(split, todo, opts.max_frames, opts.num_workers),
                            return_predictions=False)
            trainer.strategy.barrier("vfr_bench_clips_written")
        except RuntimeError as e:
            if trainer.world_size <= 1:
                raise
            raise BenchError(f"a DDP rank died before finishing its clips ({str(e).splitlines()[0][:200]}); "
                             f"finished clips are kept in {run_dir}; re-run the same command to resume") from e
        if not trainer.is_global_zero:
            continue
        log(f"{restorer.method_name} on {split.name}: {len(done)} clips resumed from {run_dir}, "
            f"{len(todo)} to run" + (f" (done in {time.perf_counter() - t0:.1f}s)" if todo else ""))
        records = {cid: r for cid, r in read_records(run_dir).items() if r.run == run_key}
        for c in split.clips:
            r = records.get(c.id)
            if r is not None and r.status == "failed":
                log(f"  clip {c.id} failed: {r.error}")
        row = summarize(restorer.method_name, split, run_key, records, metric_names, run_dir, notes, opts.fid_ref)
        if row["n_failed"] == row["n_clips"]:
            status = 1
        board = merge_leaderboard(csv_path, row)
        if wandb_mode:
            local = log_run(wandb_mode, Path(opts.out), row, run_key, desc, metric_names, records, run_dir, notes)
            if local:
                log(f"W&B ({wandb_mode}) run: {local}")
    if trainer is not None and not trainer.is_global_zero:
        return status
    if no_gt:
        log(f"metrics {', '.join(no_gt)} {NO_GT}")
    for k, v in unavailable.items():
        if v != NO_GT:
            log(f"metric {k} unavailable: {v}")
    for name, why in skipped.items():
        log(f"skipped {name}: {why}")
    if board is not None:
        log("\n" + format_table(board, f"{split.name}@{split.manifest_sha256}") + f"\n\nleaderboard: {csv_path}")
    elif not restorers:
        log("no method ran")
    hint = weight_registry.fetch_hint(missing_weights(skipped, unavailable, split.degradation))
    if hint:
        log(hint)
    return status


def missing_weights(skipped: dict, unavailable: dict, degradation: str) -> list[str]:
    """Registry names of the absent files behind the skipped methods and unavailable metrics."""
    needed = [w for name, why in skipped.items() if why.startswith("weights missing")
              for w in build_method(name, None, degradation).required_weights()]
    needed += [w for name, why in unavailable.items() if why != NO_GT for w in build_metric(name).weights]
    return [w for w in dict.fromkeys(needed) if not weight_registry.is_present(w)]
