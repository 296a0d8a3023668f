"""Temporal stability of the restored clip alone (no GT): flicker, landmark jitter, identity drift.

On real footage there is no GT motion to compare with (E_warp's GT flow, TLME), so these
columns ask only whether the restored clip is steady in itself:

* ``flicker[dis|raft]``: E_warp (Lai et al., ECCV 2018; :mod:`~vfr_bench.metrics.ewarp`)
  with flow and occlusion mask estimated on the restored frames (Lai's own protocol,
  ``flow_source="pred"``), reported x1e-3 like ``E_warp``. Its flow is shared with
  ``E_warp`` when that column also runs with ``flow_source="pred"``.
* ``jitter[dlib68|awing98]``: mean over frame triples and landmarks of the norm of the
  second temporal difference of the restored landmarks, in px at 512:

      a_t = 1/K sum_k || p[t+1,k] - 2 p[t,k] + p[t-1,k] ||_2     (t = 1..T-2)
      jitter = mean_t a_t

  A face moving at constant velocity scores 0; landmark noise that changes from frame to
  frame (shimmering eyes, a mouth that twitches) raises it. Per-triple values (T-2).
  Landmarks are scaled to a 512-px frame so clips of other sizes share the scale.
* ``ID_drift[dlib|arcface]``: 1 - cos(e_t, e_{t+1}), the identity change between
  consecutive restored frames, mean over pairs (T-1 values).
* ``ID_spread[dlib|arcface]``: 1 - cos(e_t, mean_s e_s) against the clip's mean unit
  embedding, mean over frames: drift that accumulates slowly (each step small, the face
  at the end another person) shows here and not in ``ID_drift``.

Frames without a face (dlib with a detector box) are left out and counted as
``frames_no_face``. Landmarks and embeddings are the per-clip shared features of
:mod:`~vfr_bench.metrics.landmarks` and :mod:`~vfr_bench.metrics.identity`.
"""
from __future__ import annotations

import numpy as np

from vfr_bench.metrics.base import ClipScore, MetricContext
from vfr_bench.metrics.ewarp import EWarp
from vfr_bench.metrics.identity import IDS, clip_embeddings, cosine_similarity
from vfr_bench.metrics.landmarks import LandmarkMetric

REFERENCE_SIZE = 512.0  # jitter is reported in px of a 512x512 frame


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


class Flicker(EWarp):
    """E_warp of the restored clip with its own flow (no GT), reported x1e-3.

    Args:
        backend: ``dis`` or ``raft``.
    """
    needs_gt = False

    def __init__(self, backend: str = "dis"):
        super().__init__(backend, flow_source="pred")


def second_difference(points: np.ndarray) -> np.ndarray:
    """Per frame triple, mean over landmarks of ||p[t+1] - 2 p[t] + p[t-1]||.

    Args:
        points: [T,K,2] float (x, y); NaN rows for frames without a face.

    Returns:
        [T-2] float64 (NaN where a frame of the triple has no face; empty when T < 3).
    """
    p = np.asarray(points, np.float64)
    if len(p) < 3:
        return np.zeros(0)
    return np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean(-1)


class Jitter(LandmarkMetric):
    """Mean landmark acceleration of the restored clip, px at 512 (no GT).

    Args:
        backend: ``dlib68`` or ``awing98``.
        box: ``template`` (aligned crops) or ``detect``.
    """
    needs_gt = False

    def score(self, ctx: MetricContext) -> ClipScore:
        lm = self.landmarks(ctx, "pred")
        h, w = ctx.pred.shape[-2:]
        pts = lm.points * np.array([REFERENCE_SIZE / w, REFERENCE_SIZE / h])
        pts[~lm.valid] = np.nan
        a = second_difference(pts)
        return ClipScore(_nanmean(a), a.tolist(), {"frames_no_face": int((~lm.valid).sum())})


class IDDrift(IDS):
    """Mean over consecutive restored frames of 1 - identity cosine similarity (no GT).

    Args:
        backend: ``arcface`` or ``dlib``.
    """
    higher_is_better = False
    needs_gt = False

    def distances(self, e: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """[T-1] 1 - cos(e_t, e_{t+1}), NaN where a frame of the pair has no face."""
        e = e.copy()
        e[~ok] = np.nan
        return 1.0 - cosine_similarity(e[:-1], e[1:])

    def score(self, ctx: MetricContext) -> ClipScore:
        e, ok = clip_embeddings(ctx, "pred", self.backend, self.arcface)
        d = self.distances(e, ok)
        return ClipScore(_nanmean(d), d.tolist(), {"frames_no_face": int((~ok).sum())})


class IDSpread(IDDrift):
    """Mean over restored frames of 1 - cos(e_t, the clip's mean unit embedding) (no GT)."""

    def distances(self, e: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """[T] 1 - cos(e_t, mean of the unit embeddings of the frames with a face)."""
        d = np.full(len(e), np.nan)
        if ok.any():
            unit = e[ok] / np.linalg.norm(e[ok], axis=-1, keepdims=True)
            d[ok] = 1.0 - cosine_similarity(unit, np.broadcast_to(unit.mean(0), unit.shape))
        return d
