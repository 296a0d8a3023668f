"""TLME (temporal landmark mean error), the temporal-stability column of DicFace and PGTFormer.

DicFace (Chen et al. 2025, Table 1, "TLME", after PGTFormer, Xu et al. 2024) reports it
without spelling out the formula. Our reading, documented here and in the README: the
restored clip's landmark *motion* should follow the GT's motion, so with p: GT and
p^: restored landmarks of frames t = 0..T-1, K points, pixels of the GT resolution,

    e_t = 1/K sum_k || (p^[t+1,k] - p^[t,k]) - (p[t+1,k] - p[t,k]) ||_2     (t = 0..T-2)
    TLME = mean_t e_t

over the consecutive pairs where both frames have a face in both clips. A constant
landmark offset (a shifted but steady restoration) scores 0; per-frame jitter raises it.
Range [0, inf) px, lower is better. Per-pair values are reported (length T-1).
Backends as AKD: ``dlib68`` or ``awing98`` landmarks, shared with AKD/IDS.
"""
from __future__ import annotations

import numpy as np

from vfr_bench.metrics.base import ClipScore, MetricContext
from vfr_bench.metrics.landmarks import LandmarkMetric


def landmark_motion_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per consecutive pair, mean over landmarks of the motion difference.

    Args:
        pred: [T,K,2] float (x, y) pixels; NaN rows for frames without a face.
        gt: [T,K,2] float.

    Returns:
        [T-1] float64 (NaN where a frame of the pair has no face).
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    return np.linalg.norm(np.diff(pred, axis=0) - np.diff(gt, axis=0), axis=-1).mean(-1)


def tlme(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean of :func:`landmark_motion_error` over the pairs where it is defined."""
    e = landmark_motion_error(pred, gt)
    e = e[~np.isnan(e)]
    return float(e.mean()) if e.size else float("nan")


class TLME(LandmarkMetric):
    """Mean over consecutive frame pairs of the landmark-motion difference (px)."""

    def score(self, ctx: MetricContext) -> ClipScore:
        p, g = self.pair(ctx)
        ok = p.valid & g.valid
        pp, gg = p.points.copy(), g.points.copy()
        pp[~ok] = np.nan
        gg[~ok] = np.nan
        e = landmark_motion_error(pp, gg)
        defined = ~np.isnan(e)
        value = float(e[defined].mean()) if defined.any() else float("nan")
        return ClipScore(value, e.tolist(), {"frames_no_face": int((~ok).sum())})
