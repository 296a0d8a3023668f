"""PSNR with basicsr's definition (``basicsr.metrics.psnr_ssim.calculate_psnr``).

Per frame, in float64 on the tensors' device: both images are quantised to 8-bit
levels as basicsr's ``tensor2img`` does for the prediction (round half to even),
optionally converted to BT.601 luma (``PSNR[Y]``), cropped by ``crop_border``, and
``10 log10(255^2 / MSE)``. Identical frames give ``inf``, as in basicsr.
Range: [0, inf) dB, higher is better.
"""
from __future__ import annotations

import torch

from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext

# BT.601 luma for RGB in [0,1] -> [16,235] (basicsr bgr2ycbcr, y_only, RGB order here)
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def to_255(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """[0,1] float -> float64 in [0,255], rounded to 8-bit levels when ``quantize``."""
    x = x.to(torch.float64).clamp(0, 1) * 255.0
    return torch.round(x) if quantize else x


def rgb_to_y(x255: torch.Tensor) -> torch.Tensor:
    """[T,3,H,W] RGB in [0,255] -> [T,1,H,W] BT.601 Y in [16,235] (basicsr ``to_y_channel``)."""
    w = x255.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
    return (x255 / 255.0 * w).sum(1, keepdim=True) + 16.0


def prepare(img: torch.Tensor, crop_border: int, y_channel: bool, quantize: bool) -> torch.Tensor:
    """The shared PSNR/SSIM preprocessing: 8-bit levels, crop, optional Y."""
    x = to_255(img, quantize)
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_y(x) if y_channel else x


def psnr(pred: torch.Tensor, gt: torch.Tensor, crop_border: int = 0, y_channel: bool = False,
         quantize: bool = True) -> torch.Tensor:
    """Per-frame PSNR.

    Args:
        pred: [T,3,H,W] float RGB in [0,1].
        gt: [T,3,H,W] float RGB in [0,1].
        crop_border: pixels removed at each edge before scoring.
        y_channel: score BT.601 luma instead of RGB.
        quantize: round both to 8-bit levels first (basicsr evaluates uint8 images).

    Returns:
        [T] float64 dB.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"PSNR: pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ")
    a = prepare(pred, crop_border, y_channel, quantize)
    b = prepare(gt, crop_border, y_channel, quantize)
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(255.0 ** 2 / mse)  # mse == 0 -> inf, as basicsr


class PSNR(ClipMetric):
    """Mean over frames of the per-frame PSNR; split value = mean over clips."""
    higher_is_better = True

    def __init__(self, y_channel: bool = False, crop_border: int = 0):
        self.y_channel, self.crop_border = y_channel, crop_border
        self.name = "PSNR[Y]" if y_channel else "PSNR"
        super().__init__()

    def score(self, ctx: MetricContext) -> ClipScore:
        v = psnr(ctx.pred, ctx.gt, self.crop_border, self.y_channel)
        return ClipScore(float(v.mean()), v.tolist())
