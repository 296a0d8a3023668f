"""AKD (average keypoint distance) and sigma_AKD, as KEEP reports them.

KEEP (Feng et al., ECCV 2024, Sec. 4 "Metrics"; official repo jnjaby/KEEP) follows
Tzaban et al. 2022: AKD is "the average distance of detected landmarks between the
generated and ground-truth video frames", and sigma_AKD "the standard deviation of
keypoint distances over the video". DicFace (Table 1) and VQFR's landmark-distance
script report the same quantity (VQFR with AWing 98 points).

Our definition, per clip of T frames with K landmarks (p: GT, p^: restored), in pixels
of the GT resolution:

    d_t = 1/K sum_k || p^[t,k] - p[t,k] ||_2          (per-frame value)
    AKD = mean_t d_t,   sigma_AKD = std_t d_t (population, ddof=0)

over the frames where a face was found in both clips (the others are counted in
``frames_no_face``). Split value: mean over clips. Range [0, inf) px, lower is better.
Backends: ``dlib68`` (offline), ``awing98`` (facexlib AWing, when its file is present);
landmarks come from :mod:`vfr_bench.metrics.landmarks` (one pass per frame, shared with
TLME and IDS[dlib]).
"""
from __future__ import annotations

import numpy as np

from vfr_bench.metrics.base import ClipScore, MetricContext
from vfr_bench.metrics.landmarks import Landmarks, LandmarkMetric


def keypoint_distances(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame mean L2 distance between corresponding landmarks.

    Args:
        pred: [T,K,2] float (x, y) pixels; NaN rows for frames without a face.
        gt: [T,K,2] float, same layout.

    Returns:
        [T] float64 (NaN where either frame has no face).
    """
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1).mean(-1)


def both_valid(pred: Landmarks, gt: Landmarks) -> np.ndarray:
    return pred.valid & gt.valid


class AKD(LandmarkMetric):
    """Mean over frames of the per-frame landmark distance (px); frames without a face excluded."""

    def clip_value(self, d: np.ndarray) -> float:
        return float(np.mean(d))

    def score(self, ctx: MetricContext) -> ClipScore:
        p, g = self.pair(ctx)
        ok = both_valid(p, g)
        d = keypoint_distances(p.points, g.points)
        d[~ok] = np.nan
        value = self.clip_value(d[ok]) if ok.any() else float("nan")
        return ClipScore(value, d.tolist(), {"frames_no_face": int((~ok).sum())})


class SigmaAKD(AKD):
    """Standard deviation over frames of the per-frame landmark distance (px), as KEEP."""

    def clip_value(self, d: np.ndarray) -> float:
        return float(np.std(d))
