"""AKD / sigma_AKD on dlib68 landmarks: zero for identical clips, 5 px for a (3,4) shift;
frames without a face are excluded and counted."""
from __future__ import annotations

import numpy as np
import pytest

from tests.metrics.synthetic import shift
from vfr_bench.metrics import build_metric
from vfr_bench.metrics.akd import keypoint_distances
from vfr_bench.metrics.base import MetricContext


def test_keypoint_distances_arrays():
    g = np.random.default_rng(0).uniform(0, 512, size=(4, 68, 2))
    assert keypoint_distances(g + [3.0, 4.0], g) == pytest.approx([5.0] * 4)


def test_zero_for_identical_clips(sample_gt):
    ctx = MetricContext(sample_gt, sample_gt.clone())
    akd, sak = build_metric("AKD[dlib68]"), build_metric("sigma_AKD[dlib68]")
    a, s = akd.score(ctx), sak.score(ctx)
    assert a.value == 0.0 and s.value == 0.0
    assert a.extra["frames_no_face"] == 0 and len(a.per_frame) == len(sample_gt)


def test_shift_by_3_4_gives_5px(sample_gt):
    pred = shift(sample_gt, 3, 4)
    ctx = MetricContext(pred, sample_gt)
    s = build_metric("AKD[dlib68]").score(ctx)
    assert s.value == pytest.approx(5.0, abs=0.5)
    # the landmarks computed for AKD are reused, not recomputed (one pass per frame)
    key = "landmarks[dlib68,template]:pred"
    cached = ctx._cache[key]
    build_metric("sigma_AKD[dlib68]").score(ctx)
    build_metric("TLME[dlib68]").score(ctx)
    assert ctx._cache[key] is cached


def test_frames_without_a_face_are_excluded_and_counted(sample_gt):
    """With detection on, a blank frame has no face: it is dropped from the mean and counted."""
    from vfr_bench.metrics.akd import AKD
    pred = shift(sample_gt, 3, 4)
    pred[2] = 0.5  # a flat grey frame
    s = AKD(box="detect").score(MetricContext(pred, sample_gt))
    assert s.extra["frames_no_face"] == 1
    assert np.isnan(s.per_frame[2])
    assert s.value == pytest.approx(np.nanmean(s.per_frame)) and np.isfinite(s.value)
