"""Temporal layers of the FLAIR video UNets.

FLAIR (Zou et al., WACV 2025, https://github.com/wustl-cig/FLAIR; ``unet.TemporalAttention``,
``sr3.TemporalWrapper2``, ``unet_new.TemporalWrapper``) turns an image diffusion UNet into a
video one with layers that mix frames: temporal 3-D ResBlocks (``layers_arch.ResBlock`` with
``dims=3``), sliding-window temporal self-attention, and the recurrent feature enhancement
(``propagation_arch``). In sr3 every temporal layer is gated by the timestep embedding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers_arch import PerFrame, clip_norm, maybe_checkpoint, timestep_embedding, zero_module

__all__ = ["TemporalAttention", "TemporalWrapper", "GatedTemporalWrapper"]


class TemporalAttention(nn.Module):
    """Sliding-window attention along time, per pixel.

    For frame t the query is frame t, keys/values are the other frames of the window
    ``t-k..t+k`` (``num_frames = 2k+1``; the clip's edge frames are replicated beyond its
    ends). Fixed sinusoidal embeddings of the offsets (guided-diffusion ``[cos, sin]``,
    dim = channels) are added to the query and key inputs, not to the values. Heads of
    ``head_channels``, scale ``1/sqrt(head_channels)``; output through a zero-initialised
    1x1 conv, added to the input.

    Forward: ``h [B,T,C,H,W]`` -> ``[B,T,C,H,W]``.
    """

    def __init__(self, channels: int, num_frames: int, head_channels: int = 64,
                 use_checkpoint: bool = False):
        super().__init__()
        if num_frames % 2 != 1:
            raise ValueError(f"TemporalAttention: num_frames must be odd, got {num_frames}")
        if channels % head_channels:
            raise ValueError(f"TemporalAttention: channels {channels} not divisible by "
                             f"head_channels {head_channels}")
        self.channels = channels
        self.num_frames = num_frames
        self.num_heads = channels // head_channels
        self.use_checkpoint = use_checkpoint
        self.q_linear = nn.Linear(channels, channels)
        self.k_linear = nn.Linear(channels, channels)
        self.v_linear = nn.Linear(channels, channels)
        self.proj = zero_module(PerFrame(nn.Conv2d(channels, channels, 1)))
        self.norm = clip_norm(channels)

    def offset_embeddings(self, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(centre ``[C]``, others ``[F-1, C]``) sinusoidal embeddings of offsets -k..k."""
        r = self.num_frames // 2
        offsets = torch.arange(self.num_frames, device=device) - r
        emb = timestep_embedding(offsets, self.channels, sin_first=False, dtype=dtype)
        keep = offsets != 0
        return emb[r].to(dtype), emb[keep].to(dtype)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return maybe_checkpoint(self._forward, h, enabled=self.use_checkpoint)

    def _forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, c, hh, ww = h.shape
        r = self.num_frames // 2
        x = self.norm(h)
        # window frame indices with edge replication: [T, F-1] (centre excluded)
        offsets = torch.cat([torch.arange(-r, 0), torch.arange(1, r + 1)]).to(h.device)
        idx = (torch.arange(t, device=h.device)[:, None] + offsets[None]).clamp(0, t - 1)
        xq = x.permute(0, 1, 3, 4, 2)  # [B,T,H,W,C]
        kv = xq[:, idx]  # [B,T,F-1,H,W,C]
        kv = kv.permute(0, 1, 3, 4, 2, 5).reshape(-1, self.num_frames - 1, c)  # [N,F-1,C]
        xq = xq.reshape(-1, 1, c)  # [N,1,C]
        t_q, t_kv = self.offset_embeddings(x.dtype, x.device)
        d = c // self.num_heads
        q = self.q_linear(xq + t_q).view(-1, 1, self.num_heads, d).transpose(1, 2)
        k = self.k_linear(kv + t_kv).view(-1, self.num_frames - 1, self.num_heads, d).transpose(1, 2)
        v = self.v_linear(kv).view(-1, self.num_frames - 1, self.num_heads, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # [N,heads,1,d]
        out = out.reshape(b, t, hh, ww, c).permute(0, 1, 4, 2, 3)
        return self.proj(out) + h


class TemporalWrapper(nn.Module):
    """unet_new wrapper: runs the temporal layer unless cross-frame layers are disabled."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.wrapped_module = module

    def forward(self, x: torch.Tensor, *args, enable_cross_frames: bool = True, **kwargs):
        if not enable_cross_frames:
            return x
        return self.wrapped_module(x, *args, **kwargs)


class GatedTemporalWrapper(nn.Module):
    """sr3 gate (official ``TemporalWrapper2``): ``(1-s) x + s f(x)``.

    ``s = sigmoid(Linear(SiLU(emb)))`` per frame and channel, the Linear zero-initialised
    (so an untrained gate is 0.5). Forward: ``x [B,T,C,H,W]``, ``emb [B*T,E]``, further
    arguments go to the wrapped layer.
    """

    def __init__(self, module: nn.Module, channels: int, emb_channels: int):
        super().__init__()
        self.wrapped_module = module
        self.emb_layers = nn.Sequential(nn.SiLU(),
                                        zero_module(nn.Linear(emb_channels, channels)))

    def forward(self, x: torch.Tensor, emb: torch.Tensor, *args,
                enable_cross_frames: bool = True, **kwargs) -> torch.Tensor:
        if not enable_cross_frames:
            return x
        out = self.wrapped_module(x, *args, **kwargs)
        b, t, c = x.shape[:3]
        s = torch.sigmoid(self.emb_layers(emb).view(b, t, c, 1, 1).to(x.dtype))
        return (1 - s) * x + s * out
