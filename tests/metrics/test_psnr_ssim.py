"""PSNR/SSIM against basicsr's own implementation (an independent numpy/OpenCV reference)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim

from vfr_bench.datasets.clips import read_frames, to_tensor
from vfr_bench.metrics import build_metric
from vfr_bench.metrics.psnr import psnr
from vfr_bench.metrics.ssim import ssim


def _bgr_u8(x: torch.Tensor) -> np.ndarray:
    """[3,H,W] in [0,1] -> HWC BGR uint8, rounded as basicsr's tensor2img."""
    return np.round(x.permute(1, 2, 0).double().clamp(0, 1).numpy() * 255).astype(np.uint8)[..., ::-1]


def _compare(pred: torch.Tensor, gt: torch.Tensor, crop: int, y: bool) -> None:
    ours_p = psnr(pred, gt, crop_border=crop, y_channel=y)
    ours_s = ssim(pred, gt, crop_border=crop, y_channel=y)
    for t in range(pred.shape[0]):
        a, b = _bgr_u8(pred[t]), _bgr_u8(gt[t])
        ref_p = calculate_psnr(a, b, crop_border=crop, test_y_channel=y)
        ref_s = calculate_ssim(a, b, crop_border=crop, test_y_channel=y)
        assert abs(float(ours_p[t]) - ref_p) < 1e-4, (t, float(ours_p[t]), ref_p)
        assert abs(float(ours_s[t]) - ref_s) < 1e-4, (t, float(ours_s[t]), ref_s)


@pytest.mark.parametrize("crop,y", [(0, False), (4, True)])
def test_matches_basicsr_on_sample_frames(sample_split, crop, y):
    clip = sample_split.clips[0]
    gt = to_tensor(read_frames(clip.gt)[:3])
    lq = to_tensor(read_frames(clip.lq)[:3])
    pred = torch.nn.functional.interpolate(lq, size=gt.shape[-2:], mode="bicubic", align_corners=False)
    _compare(pred.clamp(0, 1), gt, crop, y)


@pytest.mark.parametrize("crop,y", [(0, False), (0, True), (3, False)])
def test_matches_basicsr_on_random_images(crop, y):
    g = torch.Generator().manual_seed(7)
    gt = torch.rand(2, 3, 48, 40, generator=g)
    pred = (gt + 0.08 * torch.randn(2, 3, 48, 40, generator=g)).clamp(0, 1)  # not on 8-bit levels
    _compare(pred, gt, crop, y)


def test_identical_frames():
    x = torch.rand(2, 3, 32, 32)
    assert torch.isinf(psnr(x, x)).all()
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))


def test_clip_metric_keeps_per_frame_values_and_reduces_over_clips():
    m = build_metric("PSNR")
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 3, 16, 16, generator=g), torch.rand(3, 3, 16, 16, generator=g)
    s1 = m.update(a, b)
    s2 = m.update(a, (a + 0.01).clamp(0, 1))
    assert len(s1.per_frame) == 3 and s1.value == pytest.approx(np.mean(s1.per_frame))
    assert m.compute() == pytest.approx((s1.value + s2.value) / 2)
    m.reset()
    assert np.isnan(m.compute())


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_matches_basicsr_on_flat_bright_images():
    """Worst case for the float32 moments: tiny variances on large values."""
    g = torch.Generator().manual_seed(3)
    gt = torch.full((2, 3, 40, 40), 250 / 255) + (torch.rand(2, 3, 40, 40, generator=g) < 0.05) / 255
    pred = gt.clone()
    pred[:, :, ::7, ::5] -= 2 / 255
    _compare(pred.clamp(0, 1), gt.clamp(0, 1), 0, False)
    _compare(pred.clamp(0, 1), gt.clamp(0, 1), 0, True)
