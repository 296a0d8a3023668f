"""Modulated deformable convolution (DCNv2) that is fast on CPU.

DCNv2 (Zhu et al., "Deformable ConvNets v2: More Deformable, Better Results", CVPR 2019)
samples every kernel tap at a learned fractional offset, scales it by a learned mask and
applies the convolution weight. ``torchvision.ops.deform_conv2d`` is the reference (and is
fast on CUDA), but its CPU kernel is a scalar im2col loop that dominates FLAIR's and VQFR's
CPU time. Here the im2col is one bilinear ``F.grid_sample`` per row block (all deformable
groups and taps at once) followed by one matmul with the weight.

Semantics follow torchvision's CPU kernel: a sample point at (y, x) is bilinearly
interpolated from its four integer neighbours, each neighbour outside the image counting
as 0 (so points with y <= -1, y >= H, x <= -1 or x >= W give 0). ``grid_sample`` with
``align_corners=True, padding_mode='zeros'`` implements exactly this rule.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
import torchvision

__all__ = ["deform_conv2d"]

# Elements of the sampled-column buffer [N, Cin*kh*kw, rows*W] per row block: bounds memory
# (VQFR runs 128 channels at 512x512, whose full buffer is 2.4 GB in float64).
_MAX_COLUMN_ELEMENTS = 1 << 23


def _pair(v: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                  bias: Optional[torch.Tensor] = None, *, padding: Union[int, Tuple[int, int]] = 0,
                  mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Drop-in for ``torchvision.ops.deform_conv2d`` with stride 1 and dilation 1.

    On CPU it samples with ``grid_sample`` and applies the weight with one matmul per image
    and row block (the row blocks bound the sampled-column buffer); elsewhere (or for shapes the fast path does not cover: grouped weights, a
    1-pixel-wide input) it calls torchvision's op.

    Args:
        x: [N, Cin, H, W] float input.
        offset: [N, 2*G*kh*kw, Ho, Wo] (dy, dx) pairs per group g and tap k = i*kw + j,
            channel 2*(g*kh*kw + k) holding dy; G deformable groups split Cin contiguously.
        weight: [Cout, Cin, kh, kw].
        bias: [Cout] or None.
        padding: zero padding (int or (ph, pw)).
        mask: [N, G*kh*kw, Ho, Wo] modulation per group and tap, or None (all ones).

    Returns:
        [N, Cout, Ho, Wo] with Ho = H + 2*ph - kh + 1, Wo = W + 2*pw - kw + 1.
    """
    n, cin, h, w = x.shape
    cout, cin_w, kh, kw = weight.shape
    taps = kh * kw
    groups = offset.shape[1] // (2 * taps)
    if (x.device.type != "cpu" or cin_w != cin or h < 2 or w < 2 or groups < 1
            or cin % groups != 0):
        return torchvision.ops.deform_conv2d(x, offset, weight, bias, padding=padding, mask=mask)
    ph, pw = _pair(padding)
    ho, wo = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
    dtype = x.dtype
    inp = x.reshape(n * groups, cin // groups, h, w)
    w_mat = weight.reshape(cout, cin * taps)
    # grid_sample reads the grid's last axis as (along W, along H); giving it the input with H
    # and W swapped (a view) lets that axis be torchvision's (dy, dx) order, so the grid is
    # one fused op: undeformed tap position + offset * scale, in normalised coordinates.
    inp = inp.transpose(2, 3)
    # The grid is built in float64: normalised coordinates lose ~(size/2) x their rounding error
    # when grid_sample maps them back to pixels, so a float32 grid would be 4x less accurate
    # than torchvision's own float32 arithmetic (measured at 256 px).
    f64 = torch.float64
    scale = torch.tensor([2.0 / (h - 1), 2.0 / (w - 1)], dtype=f64)
    tap_y = torch.arange(kh, dtype=f64).repeat_interleave(kw).view(taps, 1, 1)
    tap_x = torch.arange(kw, dtype=f64).repeat(kh).view(taps, 1, 1)
    base = torch.stack(torch.broadcast_tensors(
        torch.arange(ho, dtype=f64).view(1, ho, 1) - ph + tap_y,
        torch.arange(wo, dtype=f64).view(1, 1, wo) - pw + tap_x), dim=-1) * scale - 1.0
    offset = offset.reshape(n, groups, taps, 2, ho, wo).permute(0, 1, 2, 4, 5, 3)
    if mask is not None:
        mask = mask.reshape(n * groups, 1, taps, ho, wo)
    out = x.new_empty(n, cout, ho, wo)
    rows_per_block = max(1, _MAX_COLUMN_ELEMENTS // (n * cin * taps * wo))
    for r0 in range(0, ho, rows_per_block):
        r1 = min(ho, r0 + rows_per_block)
        rows = r1 - r0
        grid = torch.addcmul(base[:, r0:r1], offset[:, :, :, r0:r1], scale).to(dtype)  # [N,G,taps,rows,Wo,2]
        sampled = F.grid_sample(inp, grid.view(n * groups, taps * rows, wo, 2), mode="bilinear",
                                padding_mode="zeros", align_corners=True)
        sampled = sampled.view(n * groups, cin // groups, taps, rows, wo)
        if mask is not None:
            sampled.mul_(mask[..., r0:r1, :])
        # channel order (g, c, tap) = (cin, tap), matching weight.reshape(Cout, Cin*kh*kw)
        columns = sampled.view(n, cin * taps, rows * wo)
        for i in range(n):
            out[i, :, r0:r1] = torch.mm(w_mat, columns[i]).view(cout, rows, wo)
    if bias is not None:
        out += bias.view(1, cout, 1, 1)
    return out
