"""SSIM with basicsr's definition (``basicsr.metrics.psnr_ssim.calculate_ssim``).

Per frame and channel: 8-bit levels (as PSNR), an 11x11 Gaussian window with
sigma 1.5 (``cv2.getGaussianKernel``), 'valid' filtering (basicsr filters with
OpenCV and crops 5 pixels), C1 = (0.01*255)^2, C2 = (0.03*255)^2, mean of the
SSIM map, then mean over channels. Range: (-1, 1], higher is better.

Speed with basicsr's accuracy: the five local moments (x, y, x^2, y^2, xy) are
filtered in one batched separable float32 convolution of inputs centred on
127.5 (so x^2 stays small and float32 keeps ~1e-3 absolute accuracy on the
moments), and combined into the SSIM map in float64. Against basicsr's float64
OpenCV filtering the per-frame SSIM agrees to ~1e-9 (tests require 1e-4).
TF32 is disabled for these convolutions on CUDA.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, frames_chunks
from vfr_bench.metrics.psnr import prepare

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_CENTRE = 127.5


def gaussian_taps(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``cv2.getGaussianKernel(size, sigma)`` (float64)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def local_moments(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gaussian-weighted local means of a, b, a^2, b^2, ab ('valid' region), float64.

    Args:
        a, b: [N,C,H,W] float in [0,255].
    """
    c = a.shape[1]
    x, y = (a - _CENTRE).float(), (b - _CENTRE).float()
    stack = torch.cat([x, y, x * x, y * y, x * y], 1)
    k = stack.shape[1]
    taps = gaussian_taps().to(stack)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        stack = F.conv2d(stack, taps.view(1, 1, 1, -1).expand(k, 1, 1, -1), groups=k)
        stack = F.conv2d(stack, taps.view(1, 1, -1, 1).expand(k, 1, -1, 1), groups=k)
    mx, my, mxx, myy, mxy = stack.double().split(c, 1)
    return mx, my, mxx, myy, mxy


def _ssim_255(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N,C,H,W] in [0,255] -> [N] SSIM (mean over the map, then over channels)."""
    mx, my, mxx, myy, mxy = local_moments(a, b)
    s1, s2, s12 = mxx - mx * mx, myy - my * my, mxy - mx * my  # centring cancels in (co)variances
    mu1, mu2 = mx + _CENTRE, my + _CENTRE
    m = ((2 * mu1 * mu2 + _C1) * (2 * s12 + _C2)) / ((mu1 * mu1 + mu2 * mu2 + _C1) * (s1 + s2 + _C2))
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
        chunk: frames per batched convolution (bounds memory).

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
