"""SSIM with basicsr's definition (``basicsr.metrics.psnr_ssim.calculate_ssim``).

Per frame and channel, in float64: 8-bit levels (as PSNR), an 11x11 Gaussian
window with sigma 1.5 (``cv2.getGaussianKernel``), 'valid' filtering (basicsr
filters with OpenCV and crops 5 pixels), C1 = (0.01*255)^2, C2 = (0.03*255)^2,
mean of the SSIM map, then mean over channels. Batched over frames with a
depthwise convolution. Range: (-1, 1], higher is better.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, frames_chunks
from vfr_bench.metrics.psnr import prepare

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float64, device=None) -> torch.Tensor:
    """[size,size] outer product of the normalised 1-D Gaussian (cv2.getGaussianKernel)."""
    r = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def _ssim_255(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N,C,H,W] float64 in [0,255] -> [N] SSIM (mean over map and channels)."""
    c = a.shape[1]
    w = gaussian_window(dtype=a.dtype, device=a.device).expand(c, 1, 11, 11)
    filt = lambda x: F.conv2d(x, w, groups=c)  # noqa: E731  valid mode
    mu1, mu2 = filt(a), filt(b)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = filt(a * a) - mu1_sq
    s2 = filt(b * b) - mu2_sq
    s12 = filt(a * b) - mu12
    m = ((2 * mu12 + _C1) * (2 * s12 + _C2)) / ((mu1_sq + mu2_sq + _C1) * (s1 + s2 + _C2))
    return m.mean(dim=(2, 3)).mean(1)


def ssim(pred: torch.Tensor, gt: torch.Tensor, crop_border: int = 0, y_channel: bool = False,
         quantize: bool = True, chunk: int = 8) -> torch.Tensor:
    """Per-frame SSIM.

    Args:
        pred: [T,3,H,W] float RGB in [0,1].
        gt: [T,3,H,W] float RGB in [0,1].
        crop_border: pixels removed at each edge before scoring.
        y_channel: score BT.601 luma instead of RGB.
        quantize: round both to 8-bit levels first, as basicsr evaluates uint8 images.
        chunk: frames per batched convolution (bounds float64 memory).

    Returns:
        [T] float64.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"SSIM: pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ")
    out = [_ssim_255(prepare(pred[s], crop_border, y_channel, quantize),
                     prepare(gt[s], crop_border, y_channel, quantize))
           for s in frames_chunks(pred.shape[0], chunk)]
    return torch.cat(out)


class SSIM(ClipMetric):
    """Mean over frames of the per-frame SSIM; split value = mean over clips."""
    higher_is_better = True

    def __init__(self, y_channel: bool = False, crop_border: int = 0):
        self.y_channel, self.crop_border = y_channel, crop_border
        self.name = "SSIM[Y]" if y_channel else "SSIM"
        super().__init__()

    def score(self, ctx: MetricContext) -> ClipScore:
        v = ssim(ctx.pred, ctx.gt, self.crop_border, self.y_channel)
        return ClipScore(float(v.mean()), v.tolist())
