"""The metric API every vfr-bench metric implements.

A metric is an ``nn.Module`` (its networks are submodules, so they move with ``.to()``)
with three parts:

* :meth:`ClipMetric.setup` builds its networks on a device, once per run; networks that
  several metrics use (ArcFace for IDS and sigma_IDS) come from one :class:`SharedNetworks`;
* :meth:`ClipMetric.score` is pure: one clip's :class:`MetricContext` -> :class:`ClipScore`
  (per-frame values kept where the metric defines them);
* :meth:`ClipMetric.reduce` turns the clip scores of a split into the split value (the
  mean by default; FVD pools the features stored beside each clip).

No state is kept between clips, so the per-clip result files are the only state: a
resumed run, several DDP ranks or nodes reduce the same records. The column name is
written once, in the registry (``vfr_bench.metrics.METRICS``), and set on the instance by
``build_metric``. The math lives in pure functions (``psnr(pred, gt) -> Tensor[T]``)
that are usable alone (STYLE: torchmetrics' ``functional/`` split).

Metrics that need the same expensive per-frame features (landmarks, identity
embeddings, optical flow) get them from :class:`MetricContext`, which computes each
feature once per clip, so IDS, AKD and TLME share one landmark pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, Sequence

import numpy as np
import torch
from torch import nn

from vfr_bench import weights as weight_registry


@dataclass
class ClipScore:
    """One clip's result for one metric.

    Attributes:
        value: the clip's score (NaN when undefined for this clip).
        per_frame: per-frame values where the metric defines them (length T, or T-1
            for metrics on consecutive pairs); None otherwise.
        extra: counters that qualify the value, e.g. ``{"frames_no_face": 2}``.
        features: arrays a split-level metric reduces over all clips (FVD); they are
            stored beside the clip's result so a resumed run can still reduce them.
    """
    value: float
    per_frame: Optional[list[float]] = None
    extra: dict[str, Any] = field(default_factory=dict)
    features: Optional[np.ndarray] = None


class MetricContext:
    """One clip's prediction, ground truth and input, plus a cache of derived features.

    Args:
        pred: [T,3,H,W] float in [0,1] RGB, the restored clip.
        gt: [T,3,H,W] float in [0,1] RGB, the ground truth; None on splits without GT.
        meta: anything the metrics may need about the clip (id, fps).
        lq: [T,3,h,w] float in [0,1] RGB, the method's input (GT-free metrics compare with it).
    """

    def __init__(self, pred: torch.Tensor, gt: Optional[torch.Tensor] = None, meta: Any = None,
                 lq: Optional[torch.Tensor] = None):
        self.pred = pred
        self.gt = gt
        self.meta = meta
        self.lq = lq
        self._cache: dict[str, Any] = {}

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per clip under ``key`` (e.g. ``"landmarks[dlib68]:pred"``)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


class SharedNetworks:
    """The networks of one run's metrics, built once and shared (IDS and sigma_IDS use one
    ArcFace). Owned by whoever runs the metrics (the prediction writer, perf), never global."""

    def __init__(self) -> None:
        self._nets: dict[str, nn.Module] = {}

    def get(self, key: str, build: Callable[[], nn.Module], device: torch.device) -> nn.Module:
        """The network ``key``, built by ``build()`` on first use, eval, on ``device``."""
        if key not in self._nets:
            self._nets[key] = build().eval()
        return self._nets[key].to(device)


class ClipMetric(nn.Module):
    """Base class: per-clip scoring, split reduction, declared weights.

    Subclasses set ``higher_is_better``, ``weights`` (registry names needed; an instance
    attribute where it depends on the backend) and ``needs_gt``, and implement
    :meth:`score`; those with networks build them in :meth:`setup`. ``name`` (the
    leaderboard column) is set by the registry.
    """
    name: str = ""
    higher_is_better: ClassVar[bool]
    needs_gt: ClassVar[bool] = True
    weights: tuple[str, ...] = ()

    # --- availability and set-up -------------------------------------------------
    def unavailable_reason(self) -> Optional[str]:
        """Why this metric cannot run here (missing weights or backend), or None."""
        for w in self.weights:
            if not weight_registry.is_present(w):
                return weight_registry.missing_message(weight_registry.get(w))
        return None

    def setup(self, device: torch.device, nets: Optional[SharedNetworks] = None) -> "ClipMetric":
        """Build the metric's networks on ``device`` (from ``nets`` where shared); returns self."""
        return self

    # --- one clip, one split ------------------------------------------------------
    def score(self, ctx: MetricContext) -> ClipScore:
        raise NotImplementedError

    def reduce(self, scores: Sequence[ClipScore]) -> float:
        """The split value: mean of the clip values, ignoring clips where it is undefined (NaN)."""
        vals = [s.value for s in scores if s.value is not None and not math.isnan(s.value)]
        return float(np.mean(vals)) if vals else float("nan")


def frames_chunks(n: int, chunk: int):
    """Slices covering range(n) in steps of ``chunk`` (bounds memory of batched frame math)."""
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))
