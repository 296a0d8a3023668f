"""Scoring one clip inside the Lightning test loop: restore, check, measure, write.

Previews (side-by-side video, temporal profile) are written for the clips named in
``preview_ids``. A clip that cannot be read, whose LQ and GT frame counts differ, or whose output
is malformed (wrong shape, NaN/Inf, outside [0,1]) is recorded as failed with the
reason; the run goes on.
"""
from __future__ import annotations

import contextlib
import time
import traceback
from pathlib import Path
from typing import Sequence

import torch

from vfr_bench import provenance
from vfr_bench.interface import ClipMeta, VideoRestorer
from vfr_bench.metrics.base import ClipMetric, MetricContext
from vfr_bench.previews import write_previews
from vfr_bench.results import ClipRecord, write_record

RANGE_SLACK = 1e-4  # outputs may overshoot [0,1] by rounding only


class InvalidOutput(ValueError):
    """A method returned something that is not a clip in [0,1] of the GT's shape."""


def check_output(pred: torch.Tensor, shape: torch.Size) -> None:
    """Raise InvalidOutput naming what is wrong (shape, non-finite values, range with min/max)."""
    if not isinstance(pred, torch.Tensor):
        raise InvalidOutput(f"restore returned {type(pred).__name__}, not a tensor")
    if pred.shape != shape:
        raise InvalidOutput(f"output shape {tuple(pred.shape)} != GT shape {tuple(shape)}")
    finite = torch.isfinite(pred)
    if not bool(finite.all()):
        raise InvalidOutput(f"output has {int((~finite).sum())} NaN/Inf values")
    lo, hi = float(pred.min()), float(pred.max())
    if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
        raise InvalidOutput(f"output range [{lo:.4g}, {hi:.4g}] is outside [0, 1]")


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(amp: str, device: torch.device):
    """``torch.autocast`` for the method's forward passes (``off``, ``bf16``, ``fp16``).

    Metrics always run in the precision they define; only ``restore`` is autocast.
    """
    if amp == "off":
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be off, bf16 or fp16, not {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs a CUDA device; use bf16 on CPU")
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ClipEvaluator:
    """Restores a clip with the method, scores it with every metric and writes its record."""

    def __init__(self, metrics: Sequence[ClipMetric], run_dir: Path, run_key: dict, degradation: str,
                 preview_ids: Sequence[str] = (), amp: str = "off"):
        self.metrics = list(metrics)
        self.amp = amp
        self.preview_ids = set(preview_ids)
        self.run_dir = run_dir
        self.run_key = run_key
        self.degradation = degradation
        self._ready = False

    def _setup(self, device: torch.device) -> None:
        if not self._ready:
            for m in self.metrics:
                m.setup(device)
            self._ready = True

    def _record(self, clip_id: str, **kw) -> ClipRecord:
        prov = {"version": provenance.version(), "git_commit": provenance.git_commit(), "time": provenance.now()}
        return ClipRecord(clip_id=clip_id, run=self.run_key, provenance=prov, **kw)

    def evaluate(self, restorer: VideoRestorer, batch: dict) -> ClipRecord:
        cid = batch["clip_id"]
        if "error" in batch:
            rec = self._record(cid, status="failed", error=batch["error"])
        else:
            rec, features = self._score(restorer, batch)
            write_record(self.run_dir, rec, features)
            return rec
        write_record(self.run_dir, rec)
        return rec

    def _score(self, restorer: VideoRestorer, batch: dict):
        cid, lq, gt = batch["clip_id"], batch["lq"], batch["gt"]
        if lq.shape[0] != gt.shape[0]:
            return self._record(cid, status="failed",
                                error=f"LQ has {lq.shape[0]} frames, GT has {gt.shape[0]}"), None
        meta = ClipMeta(cid, float(batch["fps"]), tuple(gt.shape[-2:]), batch.get("mask"), self.degradation)
        try:
            self._setup(gt.device)
            _sync(gt.device)
            t0 = time.perf_counter()
            with autocast(self.amp, gt.device):
                pred = restorer.restore(lq, meta)
            _sync(gt.device)
            t1 = time.perf_counter()
            stats = restorer.clip_stats()
            check_output(pred, gt.shape)
            pred = pred.float().clamp(0, 1)
            ctx = MetricContext(pred, gt, meta)
            scores = {m.name: m.update(pred, gt, ctx) for m in self.metrics}
            _sync(gt.device)
            t2 = time.perf_counter()
        except Exception as e:  # one clip failing never stops the run
            tb = traceback.format_exception_only(type(e), e)[-1].strip()
            return self._record(cid, status="failed", error=tb, n_frames=int(lq.shape[0])), None
        if cid in self.preview_ids:
            write_previews(self.run_dir, cid, lq, pred, gt, meta.fps)
        metrics = {n: {"value": s.value, "per_frame": s.per_frame, "extra": s.extra} for n, s in scores.items()}
        features = {n: s.features for n, s in scores.items() if s.features is not None}
        rec = self._record(cid, status="ok", metrics=metrics, n_frames=int(pred.shape[0]),
                           seconds_restore=t1 - t0, seconds_metrics=t2 - t1, method_stats=stats)
        return rec, features
