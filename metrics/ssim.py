"""SSIM with basicsr's definition (``basicsr.metrics.psnr_ssim.calculate_ssim``).

Per frame and channel, in float64: 8-bit levels (as PSNR), an 11x11 Gaussian
window with sigma 1.5 (``cv2.getGaussianKernel``), 'valid' filtering (basicsr
filters with OpenCV and crops 5 pixels), applied separably, C1 = (0.01*255)^2, C2 = (0.03*255)^2,
mean of the SSIM map, then mean over channels. Batched over frames with a
frames in chunks. Range: (-1, 1], higher is better.
"""
from __future__ import annotations

import torch

from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, frames_chunks
from vfr_bench.metrics.psnr import prepare

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def gaussian_taps(size: int = 11, sigma: float = 1.5, dtype=torch.float64) -> list[float]:
    """The normalised 1-D Gaussian of cv2.getGaussianKernel(size, sigma)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    return (g / g.sum()).tolist()


def filter_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable 'valid' filtering of [..., H, W] with the outer product of ``taps``.

    Sums of shifted slices: float64 depthwise convolutions fall back to im2col on CPU,
    which is ~50x slower and allocates the unfolded image.
    """
    k = len(taps)
    h, w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    rows = sum(t * x[..., i:i + h, :] for i, t in enumerate(taps))
    return sum(t * rows[..., :, i:i + w] for i, t in enumerate(taps))


def _ssim_255(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N,C,H,W] float64 in [0,255] -> [N] SSIM (mean over map and channels)."""
    taps = gaussian_taps()
    filt = lambda x: filter_valid(x, taps)  # noqa: E731
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
