"""The prediction writer: scores each restored clip and writes its record as it finishes.

A ``BasePredictionWriter`` callback of ``trainer.predict``: for every clip the
``VideoRestorer.predict_step`` returns, it checks the output (shape, finite, in [0,1]),
runs every metric's pure ``score`` on one shared :class:`MetricContext`, writes the clip
record atomically (features of split-level metrics beside it) and, for the first clips,
the previews. A clip that could not be read or restored, or whose output is malformed, is
recorded as failed with the reason; the run goes on. Each rank writes only its own clips,
so no state is gathered: the summary reads the records.
"""
from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Optional, Sequence

import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from vfr_bench import provenance
from vfr_bench.interface import sync_device
from vfr_bench.metrics.base import ClipMetric, MetricContext, SharedNetworks
from vfr_bench.previews import write_previews
from vfr_bench.results import ClipRecord, write_record

RANGE_SLACK = 1e-4  # outputs may overshoot [0,1] by rounding only


class InvalidOutput(ValueError):
    """A method returned something that is not a clip in [0,1] of the expected shape."""


def check_output(pred: torch.Tensor, shape: torch.Size) -> None:
    """Raise InvalidOutput naming what is wrong (shape, non-finite values, range with min/max)."""
    if not isinstance(pred, torch.Tensor):
        raise InvalidOutput(f"restore returned {type(pred).__name__}, not a tensor")
    if pred.shape != shape:
        raise InvalidOutput(f"output shape {tuple(pred.shape)} != expected {tuple(shape)}")
    finite = torch.isfinite(pred)
    if not bool(finite.all()):
        raise InvalidOutput(f"output has {int((~finite).sum())} NaN/Inf values")
    lo, hi = float(pred.min()), float(pred.max())
    if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
        raise InvalidOutput(f"output range [{lo:.4g}, {hi:.4g}] is outside [0, 1]")


class ClipScoreWriter(BasePredictionWriter):
    """Scores and writes one clip record per prediction.

    One writer serves every method of a bench command: :meth:`begin` points it at the next
    (method, split) run; the metrics' networks are built once, on the module's device.

    Args:
        metrics: the metrics to run.
    """

    def __init__(self, metrics: Sequence[ClipMetric]):
        super().__init__(write_interval="batch")
        self.metrics = torch.nn.ModuleList(metrics)
        self.nets = SharedNetworks()
        self.device: Optional[torch.device] = None
        self.run_dir: Optional[Path] = None
        self.run_key: dict = {}
        self.preview_ids: set[str] = set()

    def begin(self, run_dir: Path, run_key: dict, preview_ids: Sequence[str] = ()) -> None:
        """Write the next clips into ``run_dir`` under ``run_key`` (what a record is valid for:
        method, config, checkpoints, split hash...); previews for ``preview_ids``."""
        self.run_dir, self.run_key, self.preview_ids = Path(run_dir), run_key, set(preview_ids)

    def setup(self, trainer, pl_module, stage: Optional[str] = None) -> None:
        device = trainer.strategy.root_device  # the module is moved there after this hook
        if self.device != device:
            self.device = device
            for m in self.metrics:
                m.setup(self.device, self.nets)

    def _record(self, clip_id: str, **kw) -> ClipRecord:
        prov = {"version": provenance.version(), "git_commit": provenance.git_commit(), "time": provenance.now()}
        return ClipRecord(clip_id=clip_id, run=self.run_key, provenance=prov, **kw)

    def write_on_batch_end(self, trainer, pl_module, prediction: dict, batch_indices, batch: dict,
                           batch_idx: int, dataloader_idx: int = 0) -> None:
        rec, features = self.score(prediction, batch)
        write_record(self.run_dir, rec, features)

    def score(self, prediction: dict, batch: dict):
        """(record, features) of one clip: failed with the reason, or every metric's score."""
        cid = batch["clip_id"]
        if "error" in prediction:
            n = int(batch["lq"].shape[0]) if "lq" in batch else 0
            return self._record(cid, status="failed", error=prediction["error"], n_frames=n), None
        lq, gt, pred, meta = batch["lq"], batch.get("gt"), prediction["pred"], prediction["meta"]
        try:
            check_output(pred, torch.Size((lq.shape[0], 3, *meta.gt_size)))
            pred = pred.float().clamp(0, 1)
            ctx = MetricContext(pred, gt, meta, lq)
            sync_device(pred.device)
            t0 = time.perf_counter()
            scores = {m.name: m.score(ctx) for m in self.metrics}
            sync_device(pred.device)
            seconds_metrics = time.perf_counter() - t0
        except Exception as e:  # one clip failing never stops the run
            err = traceback.format_exception_only(type(e), e)[-1].strip()
            return self._record(cid, status="failed", error=err, n_frames=int(lq.shape[0])), None
        if cid in self.preview_ids:
            write_previews(self.run_dir, cid, lq, pred, gt, meta.fps)
        metrics = {n: {"value": s.value, "per_frame": s.per_frame, "extra": s.extra} for n, s in scores.items()}
        features = {n: s.features for n, s in scores.items() if s.features is not None}
        rec = self._record(cid, status="ok", metrics=metrics, n_frames=int(pred.shape[0]),
                           seconds_restore=prediction["seconds"], seconds_metrics=seconds_metrics,
                           method_stats=prediction["method_stats"])
        return rec, features

