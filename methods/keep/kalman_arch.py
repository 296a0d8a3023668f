"""KEEP's Kalman filter: gain from LQ latents, flow-based state prediction, state update.

KEEP: Feng, Li, Loy, "Kalman-Inspired Feature Propagation for Video Face Super-Resolution",
ECCV 2024; official code https://github.com/jnjaby/KEEP (``basicsr/archs/keep_arch.py``:
``KalmanFilter``, ``BasicTransformerBlock``, ``SparseCausalAttention``; ``arch_util.flow_warp``).
Own re-implementation with the official parameter names.

The uncertainty blocks are Tune-A-Video style: sparse-causal spatial attention (each frame's
queries attend to the tokens of frame 0 and of the previous frame), a GEGLU feed-forward and
a *non-causal* temporal attention over all frames of the clip, each pre-norm with a residual.
Because of the temporal attention, the gain of a frame depends on every frame in the chunk.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfr_bench.methods.codeformer.vqgan_arch import ResBlock

from .attention_arch import Attention, FeedForward, multihead_attention

__all__ = ["SparseCausalAttention", "UncertaintyBlock", "KalmanFilter", "flow_warp"]


def flow_warp(x: Tensor, flow: Tensor) -> Tensor:
    """Sample x at p + flow(p): bilinear, zeros outside, align_corners=True (KEEP ``arch_util.flow_warp``).

    Args:
        x: [N,C,H,W] image or feature.
        flow: [N,2,H,W] displacement in pixels, channel 0 = x.

    Returns:
        [N,C,H,W].
    """
    _, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype, device=flow.device),
                            torch.arange(w, dtype=flow.dtype, device=flow.device), indexing="ij")
    gx = 2.0 * (xs + flow[:, 0]) / max(w - 1, 1) - 1.0
    gy = 2.0 * (ys + flow[:, 1]) / max(h - 1, 1) - 1.0
    grid = torch.stack((gx, gy), dim=3).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


class SparseCausalAttention(Attention):
    """Spatial attention whose keys/values are frame 0's and frame max(f-1, 0)'s tokens."""

    def forward(self, x: Tensor, num_frames: int) -> Tensor:  # type: ignore[override]
        """Args: x: [B*F, L, C] tokens, frames inner. Returns [B*F, L, C]."""
        bf, length, _ = x.shape
        previous = (torch.arange(num_frames, device=x.device) - 1).clamp(min=0)
        first = torch.zeros_like(previous)

        def gather(t: Tensor) -> Tensor:  # [B*F, L, I] -> [B*F, 2L, I]
            t = t.view(bf // num_frames, num_frames, length, t.shape[-1])
            return torch.cat([t[:, first], t[:, previous]], dim=2).flatten(0, 1)

        out = multihead_attention(self.to_q(x), gather(self.to_k(x)), gather(self.to_v(x)), self.heads)
        return self.to_out[0](out)


class UncertaintyBlock(nn.Module):
    """Sparse-causal attention, GEGLU FFN, temporal attention; pre-norm residual each.

    Args:
        dim: token width (the latent channels, 256).
        heads: attention heads.
        dim_head: width per head.
    """

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.attn1 = SparseCausalAttention(dim, heads, dim_head)
        self.norm1 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.attn_temp = Attention(dim, heads, dim_head)
        self.norm_temp = nn.LayerNorm(dim)

    def forward(self, x: Tensor, num_frames: int) -> Tensor:
        """Args: x: [B*F, L, C] tokens (frames inner, tokens row-major). Returns the same shape."""
        x = x + self.attn1(self.norm1(x), num_frames)
        x = x + self.ff(self.norm3(x))
        bf, length, c = x.shape
        # temporal attention: per spatial token, across the frames of the clip
        t = x.view(bf // num_frames, num_frames, length, c).transpose(1, 2).reshape(-1, num_frames, c)
        t = t + self.attn_temp(self.norm_temp(t))
        return t.view(bf // num_frames, length, num_frames, c).transpose(1, 2).reshape(bf, length, c)


class KalmanFilter(nn.Module):
    """Kalman gain estimator plus the predict / update steps.

    Args:
        emb_dim: latent channels.
        num_attention_heads: heads of the uncertainty blocks.
        attention_head_dim: width per head.
        num_uncertainty_layers: number of uncertainty blocks.
    """

    def __init__(self, emb_dim: int = 256, num_attention_heads: int = 8, attention_head_dim: int = 48,
                 num_uncertainty_layers: int = 3):
        super().__init__()
        self.uncertainty_estimator = nn.ModuleList(
            [UncertaintyBlock(emb_dim, num_attention_heads, attention_head_dim)
             for _ in range(num_uncertainty_layers)])
        self.kalman_gain_calculator = nn.Sequential(
            ResBlock(emb_dim, emb_dim), ResBlock(emb_dim, emb_dim), ResBlock(emb_dim, emb_dim),
            nn.Conv2d(emb_dim, 1, kernel_size=1), nn.Sigmoid())

    def uncertainty_tokens(self, z: Tensor) -> Tensor:
        """Args: z: [B,F,C,h,w] LQ latents. Returns [B*F, h*w, C] uncertainty features."""
        b, f, c, h, w = z.shape
        tokens = z.reshape(b * f, c, h * w).transpose(1, 2)
        for block in self.uncertainty_estimator:
            tokens = block(tokens, f)
        return tokens

    def gain_from_tokens(self, tokens: Tensor, num_frames: int, h: int, w: int) -> Tensor:
        """Args: tokens: [B*F, h*w, C]. Returns [B,F,1,h,w] gains in (0,1)."""
        bf, _, c = tokens.shape
        gain = self.kalman_gain_calculator(tokens.transpose(1, 2).reshape(bf, c, h, w))
        return gain.view(bf // num_frames, num_frames, 1, h, w)

    def calc_gain(self, z: Tensor) -> Tensor:
        """Args: z: [B,F,C,h,w] LQ latents. Returns [B,F,1,h,w] Kalman gains."""
        return self.gain_from_tokens(self.uncertainty_tokens(z), z.shape[1], z.shape[3], z.shape[4])

    @staticmethod
    def predict(prev_out: Tensor, flow: Tensor) -> Tensor:
        """Warp the previous frame's output image to the current frame.

        Args:
            prev_out: [B,3,H,W] previous network output ([-1,1] nominal, unclamped).
            flow: [B,2,H,W] backward flow (current -> previous), pixels.
        """
        return flow_warp(prev_out, flow)

    @staticmethod
    def update(z_code: Tensor, z_prime: Tensor, gain: Tensor) -> Tensor:
        """z_hat = (1 - g) * z_code + g * z_prime, g: [B,1,h,w] broadcast over channels."""
        return (1 - gain) * z_code + gain * z_prime
