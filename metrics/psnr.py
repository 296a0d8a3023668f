"""PSNR with basicsr's definition (``basicsr.metrics.psnr_ssim.calculate_psnr``).

Per frame: both images are quantised to 8-bit levels as basicsr's ``tensor2img`` does
for the prediction (float32 ``x * 255`` rounded half to even), optionally converted to
BT.601 luma (``PSNR[Y]``), cropped by ``crop_border``, and ``10 log10(255^2 / MSE)`` with
the squared errors summed in float64. Identical frames give ``inf``, as in basicsr.
Range: [0, inf) dB, higher is better.

Two backends with the same definition (both tested against basicsr): ``torch`` scores the
whole clip in batched tensor ops on its device (GPU), ``opencv`` walks the frames of a CPU
clip one at a time through two reused frame buffers (SSIM filters them with OpenCV, hence
the name). On CPU the frame walk is the fast one: a 512x512 frame's planes stay in cache,
whereas a clip-sized tensor op streams every intermediate through memory (measured 5-20x
slower per frame on 2 cores; ``vfr-bench perf``). ``auto`` picks ``opencv`` for CPU
tensors, ``torch`` otherwise.
"""
from __future__ import annotations

from typing import Iterator

import torch

from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext

# BT.601 luma for RGB in [0,1] -> [16,235] (basicsr bgr2ycbcr, y_only, RGB order here)
_Y_WEIGHTS = (65.481, 128.553, 24.966)


BACKENDS = ("auto", "torch", "opencv")


def to_255(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """[0,1] float -> float64 in [0,255], rounded to 8-bit levels when ``quantize``.

    The rounding is done on the float32 product, as basicsr's ``tensor2img``.
    """
    x = x.float().clamp(0, 1) * 255.0
    return (torch.round(x) if quantize else x).to(torch.float64)


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


def pick_backend(backend: str, x: torch.Tensor) -> str:
    """Resolve ``auto``: ``opencv`` (frame walk) for CPU tensors, ``torch`` on other devices."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "opencv" if x.device.type == "cpu" else "torch"
    return backend


def frames_255(pred: torch.Tensor, gt: torch.Tensor, crop_border: int, y_channel: bool,
               quantize: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Frame pairs for the ``opencv`` backend, prepared as :func:`prepare` does.

    The quantisation runs in place in two float32 frame buffers allocated once per clip
    (torch's vectorised, threaded kernels; no fresh pages per frame), so each yielded pair
    is scratch space: consume it, and feel free to overwrite it, before the next one.

    Args:
        pred, gt: [T,3,H,W] float RGB in [0,1] on the CPU.
    Yields:
        per frame, two contiguous [C,H',W'] float32 tensors in [0,255] (C = 1 with ``y_channel``).
    """
    w = torch.tensor(_Y_WEIGHTS, dtype=torch.float64).div(255.0).view(3, 1, 1)
    bufs = [torch.empty(pred.shape[1:], dtype=torch.float32) for _ in range(2)]
    for a, b in zip(pred.detach(), gt.detach()):
        out = []
        for x, buf in zip((a, b), bufs):
            torch.clamp(x.float(), 0, 1, out=buf).mul_(255)  # the float32 product, as tensor2img
            if quantize:
                buf.round_()  # half to even
            x = buf
            if crop_border:
                x = x[:, crop_border:-crop_border, crop_border:-crop_border]
            if y_channel:  # float64 dot product as basicsr's bgr2ycbcr, kept in float32
                x = (x.double().mul(w).sum(0, keepdim=True) + 16.0).float()
            out.append(x.contiguous())
        yield out[0], out[1]


def psnr(pred: torch.Tensor, gt: torch.Tensor, crop_border: int = 0, y_channel: bool = False,
         quantize: bool = True, backend: str = "auto") -> torch.Tensor:
    """Per-frame PSNR.

    Args:
        pred: [T,3,H,W] float RGB in [0,1].
        gt: [T,3,H,W] float RGB in [0,1].
        crop_border: pixels removed at each edge before scoring.
        y_channel: score BT.601 luma instead of RGB.
        quantize: round both to 8-bit levels first (basicsr evaluates uint8 images).
        backend: ``auto``, ``torch`` or ``opencv`` (see the module docstring).

    Returns:
        [T] float64 dB.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"PSNR: pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ")
    if pick_backend(backend, pred) == "opencv":
        # differences and squares in float32 (exact for 8-bit levels), summed in float64 as basicsr
        mse = torch.stack([a.sub_(b).square_().sum(dtype=torch.float64) / a.numel()
                           for a, b in frames_255(pred, gt, crop_border, y_channel, quantize)])
        return 10.0 * torch.log10(255.0 ** 2 / mse)
    a = prepare(pred, crop_border, y_channel, quantize)
    b = prepare(gt, crop_border, y_channel, quantize)
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(255.0 ** 2 / mse)  # mse == 0 -> inf, as basicsr


class PSNR(ClipMetric):
    """Mean over frames of the per-frame PSNR; split value = mean over clips."""
    higher_is_better = True

    def __init__(self, y_channel: bool = False, crop_border: int = 0):
        super().__init__()
        self.y_channel, self.crop_border = y_channel, crop_border

    def score(self, ctx: MetricContext) -> ClipScore:
        v = psnr(ctx.pred, ctx.gt, self.crop_border, self.y_channel)
        return ClipScore(float(v.mean()), v.tolist())
