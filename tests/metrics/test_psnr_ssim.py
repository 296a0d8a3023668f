"""PSNR/SSIM against basicsr's own implementation (an independent numpy/OpenCV reference)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img

from vfr_bench.datasets.clips import read_frames, to_tensor
from vfr_bench.metrics import build_metric
from vfr_bench.metrics.base import ClipScore, MetricContext
from vfr_bench.metrics.psnr import pick_backend, psnr
from vfr_bench.metrics.ssim import ssim


BACKENDS = ("torch", "opencv")


def _compare(pred: torch.Tensor, gt: torch.Tensor, crop: int, y: bool, backend: str) -> None:
    """Our per-frame values against basicsr's tensor2img -> calculate_psnr/calculate_ssim."""
    before = pred.clone(), gt.clone()
    ours_p = psnr(pred, gt, crop_border=crop, y_channel=y, backend=backend)
    ours_s = ssim(pred, gt, crop_border=crop, y_channel=y, backend=backend)
    assert torch.equal(pred, before[0]) and torch.equal(gt, before[1])  # scratch buffers, not the inputs
    for t in range(pred.shape[0]):
        a, b = tensor2img(pred[t], rgb2bgr=True), tensor2img(gt[t], rgb2bgr=True)
        ref_p = calculate_psnr(a, b, crop_border=crop, test_y_channel=y)
        ref_s = calculate_ssim(a, b, crop_border=crop, test_y_channel=y)
        assert abs(float(ours_p[t]) - ref_p) < 1e-4, (t, float(ours_p[t]), ref_p)
        assert abs(float(ours_s[t]) - ref_s) < 1e-4, (t, float(ours_s[t]), ref_s)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("crop,y", [(0, False), (4, True)])
def test_matches_basicsr_on_sample_frames(sample_split, crop, y, backend):
    clip = sample_split.clips[0]
    gt = to_tensor(read_frames(clip.gt)[:3])
    lq = to_tensor(read_frames(clip.lq)[:3])
    pred = torch.nn.functional.interpolate(lq, size=gt.shape[-2:], mode="bicubic", align_corners=False)
    _compare(pred.clamp(0, 1), gt, crop, y, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("crop,y", [(0, False), (0, True), (3, False)])
def test_matches_basicsr_on_random_images(crop, y, backend):
    g = torch.Generator().manual_seed(7)
    gt = torch.rand(2, 3, 48, 40, generator=g)
    pred = (gt + 0.08 * torch.randn(2, 3, 48, 40, generator=g)).clamp(0, 1)  # not on 8-bit levels
    _compare(pred, gt, crop, y, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("y", [False, True])
def test_float64_clips_score_as_their_float32_values(backend, y):
    # tensor2img casts to float32 first; so do we (float64 restorer outputs, conformance runs)
    g = torch.Generator().manual_seed(3)
    gt = torch.rand(2, 3, 24, 20, generator=g)
    pred = (gt + 0.05 * torch.randn(2, 3, 24, 20, generator=g)).clamp(0, 1)
    for fn in (psnr, ssim):
        assert torch.equal(fn(pred.double(), gt.double(), y_channel=y, backend=backend),
                           fn(pred, gt, y_channel=y, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_frames(backend):
    x = torch.rand(2, 3, 32, 32)
    assert torch.isinf(psnr(x, x, backend=backend)).all()
    assert torch.allclose(ssim(x, x, backend=backend), torch.ones(2, dtype=torch.float64))


def test_auto_backend_walks_frames_on_cpu_only():
    x = torch.zeros(1, 3, 8, 8)
    assert pick_backend("auto", x) == "opencv" and pick_backend("torch", x) == "torch"
    assert pick_backend("auto", torch.zeros(1, device="meta")) == "torch"
    with pytest.raises(ValueError, match="unknown backend"):
        pick_backend("numpy", x)


def test_clip_metric_keeps_per_frame_values_and_reduces_over_clips():
    m = build_metric("PSNR")
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 3, 16, 16, generator=g), torch.rand(3, 3, 16, 16, generator=g)
    s1 = m.score(MetricContext(a, b))
    s2 = m.score(MetricContext(a, (a + 0.01).clamp(0, 1)))
    assert len(s1.per_frame) == 3 and s1.value == pytest.approx(np.mean(s1.per_frame))
    assert m.reduce([s1, s2]) == pytest.approx((s1.value + s2.value) / 2)
    assert m.reduce([s1, ClipScore(float("nan"))]) == pytest.approx(s1.value)  # undefined clips skipped
    assert np.isnan(m.reduce([]))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_basicsr_on_flat_bright_images(backend):
    """Worst case for the float32 moments: tiny variances on large values."""
    g = torch.Generator().manual_seed(3)
    gt = torch.full((2, 3, 40, 40), 250 / 255) + (torch.rand(2, 3, 40, 40, generator=g) < 0.05) / 255
    pred = gt.clone()
    pred[:, :, ::7, ::5] -= 2 / 255
    _compare(pred.clamp(0, 1), gt.clamp(0, 1), 0, False, backend)
    _compare(pred.clamp(0, 1), gt.clamp(0, 1), 0, True, backend)
