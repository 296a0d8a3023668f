"""SSIM with basicsr's definition (``basicsr.metrics.psnr_ssim.calculate_ssim``).

Per frame and channel: 8-bit levels (as PSNR), an 11x11 Gaussian window with
sigma 1.5 (``cv2.getGaussianKernel``), 'valid' filtering (basicsr filters with
OpenCV and crops 5 pixels), C1 = (0.01*255)^2, C2 = (0.03*255)^2, mean of the
SSIM map, then mean over channels. Range: (-1, 1], higher is better.

Speed with basicsr's accuracy: the local moments are filtered in float32 from
inputs centred on 127.5 (so x^2 stays small and float32 keeps ~1e-3 absolute
accuracy on the moments; the variances only need x^2 + y^2, so four planes are
filtered, not five). Two backends, as PSNR's (``psnr.pick_backend``):
``torch`` filters the whole clip in one batched separable convolution and
combines the map in float64 (GPU; TF32 disabled for these convolutions);
``opencv`` walks a CPU clip frame by frame with OpenCV's separable filter on
each plane and a float32 map averaged in float64. Against basicsr's float64
OpenCV filtering the per-frame SSIM agrees to ~2e-9 with either backend (the
tests require 1e-4).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, frames_chunks
from vfr_bench.metrics.psnr import frames_255, pick_backend, prepare

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_CENTRE = 127.5


def gaussian_taps(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``cv2.getGaussianKernel(size, sigma)`` (float64)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def centred_planes(a, b):
    """The four planes whose local means SSIM needs: x, y, x^2 + y^2, xy of x = a - 127.5, y = b - 127.5."""
    x, y = a - _CENTRE, b - _CENTRE
    return x, y, x * x + y * y, x * y


def local_moments(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gaussian-weighted local means of :func:`centred_planes` ('valid' region), float64.

    Args:
        a, b: [N,C,H,W] float in [0,255].
    """
    c = a.shape[1]
    stack = torch.cat([p.float() for p in centred_planes(a, b)], 1)
    k = stack.shape[1]
    taps = gaussian_taps().to(stack)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        stack = F.conv2d(stack, taps.view(1, 1, 1, -1).expand(k, 1, 1, -1), groups=k)
        stack = F.conv2d(stack, taps.view(1, 1, -1, 1).expand(k, 1, -1, 1), groups=k)
    return stack.double().split(c, 1)


def ssim_map(mx, my, mss, mxy):
    """SSIM map from centred local moments; torch tensors or numpy arrays, consumed in place.

    With mu = m + 127.5: 2 mu1 mu2 + C1 = 2 mx my + L and mu1^2 + mu2^2 + C1 =
    mx^2 + my^2 + L, where L = 255 (mx + my) + 2 * 127.5^2 + C1; the (co)variances are
    mxy - mx my and mss - (mx^2 + my^2). In-place updates keep the temporaries few.

    Args:
        mx, my: local means of x - 127.5 and y - 127.5.
        mss: local mean of (x - 127.5)^2 + (y - 127.5)^2 (overwritten).
        mxy: local mean of (x - 127.5)(y - 127.5) (overwritten).
    """
    p = mx * my
    q = mx * mx
    q += my * my
    lum = mx + my
    lum *= 2 * _CENTRE
    lum += 2 * _CENTRE ** 2 + _C1
    mxy -= p  # covariance
    mxy *= 2
    mxy += _C2
    mss -= q  # sum of the variances
    mss += _C2
    p *= 2
    p += lum
    q += lum
    p *= mxy
    q *= mss
    p /= q
    return p


def _ssim_255(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N,C,H,W] in [0,255] -> [N] SSIM (mean over the map, then over channels)."""
    return ssim_map(*local_moments(a, b)).mean(dim=(2, 3)).mean(1)


_TAPS_F32 = gaussian_taps().numpy().astype(np.float32)


def _ssim_frame_opencv(a: np.ndarray, b: np.ndarray) -> float:
    """One frame's SSIM on the CPU: [C,H,W] float32 in [0,255] -> mean over map and channels.

    OpenCV filters each plane of the frame (padded borders); the map is computed on
    contiguous full planes and only its 'valid' region (5-pixel rim cropped, as basicsr)
    is averaged, in float64.
    """
    moments = np.empty((4,) + a.shape, np.float32)
    for plane, out in zip(centred_planes(a, b), moments):
        for c in range(a.shape[0]):
            cv2.sepFilter2D(plane[c], -1, _TAPS_F32, _TAPS_F32, dst=out[c])
    m = ssim_map(*moments)[:, 5:-5, 5:-5]
    return float(m.mean(axis=(1, 2), dtype=np.float64).mean())


def ssim(pred: torch.Tensor, gt: torch.Tensor, crop_border: int = 0, y_channel: bool = False,
         quantize: bool = True, chunk: int = 8, backend: str = "auto") -> torch.Tensor:
    """Per-frame SSIM.

    Args:
        pred: [T,3,H,W] float RGB in [0,1].
        gt: [T,3,H,W] float RGB in [0,1].
        crop_border: pixels removed at each edge before scoring.
        y_channel: score BT.601 luma instead of RGB.
        quantize: round both to 8-bit levels first, as basicsr evaluates uint8 images.
        chunk: frames per batched convolution (bounds memory; ``torch`` backend).
        backend: ``auto``, ``torch`` or ``opencv`` (see the module docstring).

    Returns:
        [T] float64.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"SSIM: pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ")
    if pick_backend(backend, pred) == "opencv":
        return torch.tensor([_ssim_frame_opencv(a.numpy(), b.numpy())
                             for a, b in frames_255(pred, gt, crop_border, y_channel, quantize)],
                            dtype=torch.float64)
    out = [_ssim_255(prepare(pred[s], crop_border, y_channel, quantize),
                     prepare(gt[s], crop_border, y_channel, quantize))
           for s in frames_chunks(pred.shape[0], chunk)]
    return torch.cat(out)


class SSIM(ClipMetric):
    """Mean over frames of the per-frame SSIM; split value = mean over clips."""
    higher_is_better = True

    def __init__(self, y_channel: bool = False, crop_border: int = 0):
        super().__init__()
        self.y_channel, self.crop_border = y_channel, crop_border

    def score(self, ctx: MetricContext) -> ClipScore:
        v = ssim(ctx.pred, ctx.gt, self.crop_border, self.y_channel)
        return ClipScore(float(v.mean()), v.tolist())
