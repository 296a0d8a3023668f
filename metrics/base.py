"""The metric API every vfr-bench metric implements.

A metric scores one clip at a time (:meth:`ClipMetric.update`), keeps the
per-clip scores it has seen, and reduces them over a split (:meth:`compute`).
Per-frame values are kept wherever the metric defines them. The math lives in
pure functions (``psnr(pred, gt) -> Tensor[T]``); the class only holds state
(STYLE: torchmetrics' split of ``image/psnr.py`` and ``functional/image/psnr.py``).

Metrics that need the same expensive per-frame features (landmarks, identity
embeddings, optical flow) get them from :class:`MetricContext`, which computes
each feature once per clip, so e.g. IDS, AKD and TLME share one detection pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import torch

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
    """One clip's prediction and ground truth plus a cache of derived features.

    Args:
        pred: [T,3,H,W] float in [0,1] RGB, the restored clip.
        gt: [T,3,H,W] float in [0,1] RGB, the ground truth.
        meta: anything the metrics may need about the clip (id, fps).
    """

    def __init__(self, pred: torch.Tensor, gt: torch.Tensor, meta: Any = None):
        self.pred = pred
        self.gt = gt
        self.meta = meta
        self._cache: dict[str, Any] = {}

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per clip under ``key`` (e.g. ``"landmarks[dlib68]:pred"``)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


class ClipMetric:
    """Base class: per-clip scoring, split reduction, declared weights.

    Subclasses set ``name`` (the leaderboard column, backend in brackets:
    ``IDS[dlib]``), ``higher_is_better`` and ``weights`` (registry names needed),
    and implement :meth:`score`.
    """
    name: str = ""
    higher_is_better: ClassVar[bool]
    weights: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.reset()

    # --- availability and set-up -------------------------------------------------
    def unavailable_reason(self) -> Optional[str]:
        """Why this metric cannot run here (missing weights or backend), or None."""
        for w in self.weights:
            if not weight_registry.is_present(w):
                return weight_registry.missing_message(weight_registry.get(w))
        return None

    def setup(self, device: torch.device) -> None:
        """Load networks onto ``device``; called once before the first clip."""

    # --- state ------------------------------------------------------------------
    def reset(self) -> None:
        self.scores: list[ClipScore] = []

    def score(self, ctx: MetricContext) -> ClipScore:
        raise NotImplementedError

    def update(self, pred: torch.Tensor, gt: torch.Tensor,
               ctx: Optional[MetricContext] = None) -> ClipScore:
        """Score one clip, keep the result and return it."""
        s = self.score(ctx if ctx is not None else MetricContext(pred, gt))
        self.scores.append(s)
        return s

    def add(self, score: ClipScore) -> None:
        """Add a clip score computed earlier (a resumed run)."""
        self.scores.append(score)

    def compute(self) -> float:
        """Mean of the clip values, ignoring clips where the metric is undefined (NaN)."""
        vals = [s.value for s in self.scores if not math.isnan(s.value)]
        return float(np.mean(vals)) if vals else float("nan")


def frames_chunks(n: int, chunk: int):
    """Slices covering range(n) in steps of ``chunk`` (bounds memory of batched frame math)."""
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))
