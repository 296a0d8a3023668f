"""Building blocks shared by both FLAIR video UNets.

FLAIR (Zou et al., "Flair: A Conditional Diffusion Framework with Applications to Face
Video Restoration", WACV 2025; official code https://github.com/wustl-cig/FLAIR) runs its
image layers on every frame and its temporal layers on the whole clip. Features travel
between layers as ``[B, T, C, H, W]``. Two wrappers carry the official state-dict names
(``wrapped_module``): :class:`PerFrame` (official ``LazyReshaper2D``) folds frames into the
batch, :class:`AcrossFrames` (official ``LazyReshaper3D``) hands the layer ``[B, C, T, H, W]``,
so every GroupNorm pools its statistics over all frames of the clip.

Dtypes follow the official fp16 layout: norms compute in float32 when fed float16
(and keep float64 when fed float64, which the conformance goldens need), sinusoidal
embeddings are computed in the dtype of the layer that consumes them.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

__all__ = [
    "PerFrame", "AcrossFrames", "GroupNorm32", "ResBlock", "Upsample", "Downsample",
    "timestep_embedding", "maybe_checkpoint", "zero_module", "compute_dtype",
]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs, the input dtype otherwise (float32/float64)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def zero_module(module: nn.Module) -> nn.Module:
    """Zero the parameters of ``module`` (official init of output projections)."""
    for p in module.parameters():
        p.detach().zero_()
    return module


def maybe_checkpoint(fn: Callable, *args, enabled: bool):
    """Activation checkpointing as in the official ``use_checkpoint=True``.

    Only active while gradients are recorded; under ``torch.no_grad()`` it is a plain call.
    """
    if enabled and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def timestep_embedding(t: torch.Tensor, dim: int, *, sin_first: bool,
                       dtype: Optional[torch.dtype] = None,
                       max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``[N, dim]`` of ``t`` ``[N]`` (any real values).

    Frequencies ``exp(-ln(max_period) k / (dim//2))``, k = 0..dim//2-1. ``sin_first``
    selects the sr3/WaveGrad order ``[sin, cos]``; otherwise guided-diffusion's ``[cos, sin]``.
    Computed in ``dtype`` (default: float32, or ``t``'s dtype when that is float64).
    """
    if dtype is None:
        dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    dtype = compute_dtype(dtype)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=dtype, device=t.device) / half)
    args = t.to(dtype)[:, None] * freqs[None]
    pair = (torch.sin(args), torch.cos(args)) if sin_first else (torch.cos(args), torch.sin(args))
    emb = torch.cat(pair, dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class PerFrame(nn.Module):
    """Apply a 2-D (image) layer to every frame: ``[B,T,C,H,W] -> [B,T,C',H',W']``."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.wrapped_module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        y = self.wrapped_module(x.flatten(0, 1))
        return y.unflatten(0, (b, t))


class AcrossFrames(nn.Module):
    """Apply a layer to the clip as a volume ``[B,C,T,H,W]`` (3-D convs, clip-wide norms)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.wrapped_module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wrapped_module(x.transpose(1, 2)).transpose(1, 2)


class GroupNorm32(nn.GroupNorm):
    """GroupNorm that computes in float32 for half inputs and returns the input dtype.

    Officially (``guided_diffusion.nn.GroupNorm32``) it always computes in float32; here a
    float64 input stays float64 (the goldens were made that way).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dt = compute_dtype(x.dtype)
        w = None if self.weight is None else self.weight.to(dt)
        b = None if self.bias is None else self.bias.to(dt)
        return F.group_norm(x.to(dt), self.num_groups, w, b, self.eps).to(x.dtype)


def clip_norm(channels: int, groups: int = 32) -> AcrossFrames:
    """GroupNorm whose statistics span all frames of the clip (official ``normalization``)."""
    return AcrossFrames(GroupNorm32(groups, channels))


class Upsample(nn.Module):
    """Nearest x2 upsampling of ``[N,C,H,W]`` (no conv: ``use_conv=False`` everywhere used)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


class Downsample(nn.Module):
    """2x2 average pooling of ``[N,C,H,W]`` (official Downsample with ``use_conv=False``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=2, stride=2)


class ResBlock(nn.Module):
    """guided-diffusion residual block conditioned on a timestep embedding.

    ``dims=2``: spatial block, convs per frame (optionally resampling with ``up``/``down``).
    ``dims=3``: temporal block, 3-D convs over ``[B,C,T,H,W]`` (kernel ``kernel_size``).
    Norms are clip-wide GroupNorm(32). Forward: ``x [B,T,C,H,W]``, ``emb [B*T, E]``.
    """

    def __init__(self, channels: int, emb_channels: int, out_channels: Optional[int] = None,
                 *, dims: int = 2, kernel_size=3, padding=1, use_scale_shift_norm: bool = False,
                 up: bool = False, down: bool = False, dropout: float = 0.0,
                 use_checkpoint: bool = False):
        super().__init__()
        self.out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.use_checkpoint = use_checkpoint

        def conv(cin, cout, k, p):
            if dims == 2:
                return PerFrame(nn.Conv2d(cin, cout, k, padding=p))
            return AcrossFrames(nn.Conv3d(cin, cout, k, padding=p))

        self.in_layers = nn.Sequential(
            clip_norm(channels), nn.SiLU(),
            conv(channels, self.out_channels, kernel_size, padding))
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = PerFrame(Upsample()), PerFrame(Upsample())
        elif down:
            self.h_upd, self.x_upd = PerFrame(Downsample()), PerFrame(Downsample())
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(),
            nn.Linear(emb_channels, 2 * self.out_channels if use_scale_shift_norm
                      else self.out_channels))
        self.out_layers = nn.Sequential(
            clip_norm(self.out_channels), nn.SiLU(), nn.Dropout(p=dropout),
            zero_module(conv(self.out_channels, self.out_channels, kernel_size, padding)))
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = conv(channels, self.out_channels, 1, 0)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return maybe_checkpoint(self._forward, x, emb, enabled=self.use_checkpoint)

    def _forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.h_upd(h)
            x = self.x_upd(x)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).to(h.dtype).unflatten(0, (h.shape[0], h.shape[1]))
        emb_out = emb_out[..., None, None]  # [B,T,C',1,1]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=2)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h
