"""flicker, jitter, ID_drift / ID_spread on the restored clip alone.

flicker: an independent float64 reference of Lai's warping error (OpenCV DIS flows computed
directly, scipy bilinear sampling), 0 on a static clip, rising with flicker. jitter: a numpy
loop on the shared landmarks, 0 for constant velocity. ID_drift / ID_spread: scipy's cosine
distance on the shared embeddings.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy.ndimage import map_coordinates
from scipy.spatial.distance import cosine

from tests.metrics.synthetic import shift, translated_clip
from vfr_bench.metrics import build_metric
from vfr_bench.metrics.base import MetricContext
from vfr_bench.metrics.identity import clip_embeddings
from vfr_bench.metrics.landmarks import clip_landmarks
from vfr_bench.metrics.temporal import second_difference

SHIFTS = [(0.37 * t, 0.21 * t + 0.05 * t * t) for t in range(5)]


def flickering(clip: torch.Tensor, amplitude: float) -> torch.Tensor:
    gain = 1 + amplitude * torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])[:len(clip)].view(-1, 1, 1, 1)
    return (clip * gain).clamp(0, 1)


# --- flicker -------------------------------------------------------------------------------
def reference_flicker(clip: torch.Tensor) -> np.ndarray:
    """Lai et al.'s E_warp with flow from the clip itself, float64, x1e3: cv2 DIS (medium) on
    8-bit BT.601 luma, forward-backward and motion-boundary occlusion test, pixels whose flow
    leaves the frame dropped, bilinear sampling with edge replication (scipy)."""
    x = clip.double().permute(0, 2, 3, 1).numpy()
    u8 = np.round(np.clip(clip.permute(0, 2, 3, 1).numpy(), 0, 1) * 255).astype(np.uint8)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in u8]
    h, w = gray[0].shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)

    def sample(img, fx, fy):  # img [H,W,C] at (x + fx, y + fy), bilinear, coordinates clamped
        cy, cx = np.clip(ys + fy, 0, h - 1), np.clip(xs + fx, 0, w - 1)
        return np.stack([map_coordinates(img[..., c], [cy, cx], order=1) for c in range(img.shape[-1])], -1)

    out = []
    for t in range(len(clip) - 1):
        fw = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(gray[t], gray[t + 1], None)
        bw = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(gray[t + 1], gray[t], None)
        fw, bw = fw.astype(np.float64), bw.astype(np.float64)
        bw_at = sample(bw, fw[..., 0], fw[..., 1])
        sq = lambda v: (v ** 2).sum(-1)  # noqa: E731
        occluded = sq(fw + bw_at) > 0.01 * (sq(fw) + sq(bw_at)) + 0.5
        dx = np.zeros_like(fw)
        dy = np.zeros_like(fw)
        dx[:, :-1] = fw[:, 1:] - fw[:, :-1]
        dy[:-1] = fw[1:] - fw[:-1]
        boundary = sq(dx) + sq(dy) > 0.01 * sq(fw) + 0.002
        tx, ty = xs + fw[..., 0], ys + fw[..., 1]
        outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
        keep = ~(occluded | boundary | outside)
        diff = ((x[t] - sample(x[t + 1], fw[..., 0], fw[..., 1])) ** 2).sum(-1)
        out.append(diff[keep].sum() / keep.sum() * 1e3)
    return np.array(out)


@pytest.fixture(scope="module")
def moving():
    return translated_clip(SHIFTS, 160, 160)


def test_flicker_equals_independent_reference(moving):
    m = build_metric("flicker[dis]")
    assert m.unavailable_reason() is None and not m.needs_gt and not m.higher_is_better
    for clip in (moving, flickering(moving, 0.05)):
        s = m.score(MetricContext(clip))
        assert s.extra["flow_source"] == "pred" and len(s.per_frame) == len(clip) - 1
        # float32 warp and masks in ours: a few borderline mask pixels may flip
        assert s.per_frame == pytest.approx(reference_flicker(clip).tolist(), rel=2e-3, abs=1e-6)


def test_flicker_static_zero_and_rises_with_flicker(moving):
    m = build_metric("flicker[dis]")
    static = m.score(MetricContext(moving[:1].expand(4, -1, -1, -1).contiguous())).value
    assert static < 1e-9
    vals = [m.score(MetricContext(flickering(moving, a))).value for a in (0.0, 0.02, 0.05, 0.1)]
    assert all(b > a for a, b in zip(vals, vals[1:])), vals
    assert vals[2] > 10 * vals[0]


def test_flicker_needs_no_gt_but_raft_needs_its_file():
    why = build_metric("flicker[raft]").unavailable_reason()
    assert why is not None and "raft_large_C_T_SKHT_V2-ff5fadd5.pth" in why
    assert not build_metric("flicker[raft]").needs_gt


# --- jitter --------------------------------------------------------------------------------
def test_second_difference_constant_velocity_is_zero_and_matches_numpy_loop():
    rng = np.random.default_rng(0)
    p0, v = rng.uniform(100, 400, (68, 2)), rng.uniform(-3, 3, (68, 2))
    steady = np.stack([p0 + v * t for t in range(8)])
    assert np.abs(second_difference(steady)).max() < 1e-12
    noisy = steady + rng.normal(0, 1.0, steady.shape)
    want = [np.mean([np.sqrt(((noisy[t + 1, k] - 2 * noisy[t, k] + noisy[t - 1, k]) ** 2).sum()) for k in range(68)])
            for t in range(1, 7)]
    assert second_difference(noisy) == pytest.approx(want, rel=1e-12)
    assert len(second_difference(noisy[:2])) == 0


def test_jitter_metric_equals_reference_on_shared_landmarks(sample_gt):
    clip = torch.nn.functional.interpolate(sample_gt, size=(256, 256), mode="bilinear", antialias=True)
    ctx = MetricContext(clip)
    m = build_metric("jitter[dlib68]")
    assert m.unavailable_reason() is None and not m.needs_gt and not m.higher_is_better
    s = m.score(ctx)
    lm = clip_landmarks(ctx, "pred", "dlib68")  # the shared pass the metric used
    assert lm.valid.all()
    p = lm.points * 2.0  # px at 512 (the clip is 256)
    want = [np.linalg.norm(p[t + 1] - 2 * p[t] + p[t - 1], axis=-1).mean() for t in range(1, len(p) - 1)]
    assert s.per_frame == pytest.approx(want, rel=1e-12)
    assert s.value == pytest.approx(np.mean(want), rel=1e-12)


def test_jitter_static_zero_and_a_jumping_frame_raises_it(sample_gt):
    m = build_metric("jitter[dlib68]")
    assert m.score(MetricContext(sample_gt[:1].expand(4, -1, -1, -1).contiguous())).value == 0.0
    steady = m.score(MetricContext(sample_gt)).value
    jumpy = sample_gt.clone()
    jumpy[3] = shift(sample_gt[3:4], 6, 0)[0]  # one frame's face 6 px to the right
    assert m.score(MetricContext(jumpy)).value > steady + 1.0


# --- ID_drift / ID_spread ------------------------------------------------------------------
def test_id_drift_and_spread_equal_scipy_cosine(sample_gt, sample_lq_up):
    clip = torch.cat([sample_gt[:3], sample_lq_up[3:]])  # sharp, then blurry: the identity moves
    ctx = MetricContext(clip)
    drift, spread = build_metric("ID_drift[dlib]"), build_metric("ID_spread[dlib]")
    for m in (drift, spread):
        assert m.unavailable_reason() is None and not m.needs_gt and not m.higher_is_better
    d, s = drift.score(ctx), spread.score(ctx)
    e, ok = clip_embeddings(ctx, "pred", "dlib")
    assert ok.all()
    want_d = [cosine(e[t], e[t + 1]) for t in range(len(e) - 1)]
    assert d.per_frame == pytest.approx(want_d, rel=1e-9, abs=1e-12)
    assert d.value == pytest.approx(np.mean(want_d), rel=1e-9)
    centre = np.mean([v / np.linalg.norm(v) for v in e], axis=0)
    want_s = [cosine(v, centre) for v in e]
    assert s.per_frame == pytest.approx(want_s, rel=1e-9, abs=1e-12)
    # the sharp -> blurry step is the largest change between consecutive frames
    assert int(np.argmax(want_d)) == 2


def test_id_drift_of_a_static_clip_is_zero_and_arcface_needs_its_file(sample_gt):
    still = sample_gt[:1].expand(3, -1, -1, -1).contiguous()
    assert build_metric("ID_drift[dlib]").score(MetricContext(still)).value == pytest.approx(0.0, abs=1e-12)
    assert build_metric("ID_spread[dlib]").score(MetricContext(still)).value == pytest.approx(0.0, abs=1e-12)
    for name in ("ID_drift[arcface]", "ID_spread[arcface]"):
        assert "recognition_arcface_ir_se50.pth" in build_metric(name).unavailable_reason()
