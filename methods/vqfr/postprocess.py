"""VQFR output image -> RGB in [0,1].

The official demo saves ``basicsr.utils.tensor2img(main_dec, min_max=(-1, 1))``: cast to
float32, clamp to [-1,1], map to [0,1], then x255 and round to uint8. This is that
mapping up to (not including) the uint8 rounding, so a benchmark that quantises to 8 bits
reproduces the demo's files (https://github.com/TencentARC/VQFR, ``vqfr/demo_util.py``).
"""
from __future__ import annotations

import torch

__all__ = ["dec_to_rgb01"]


def dec_to_rgb01(dec: torch.Tensor) -> torch.Tensor:
    """dec: [B,3,H,W] network image, RGB nominally in [-1,1] -> [B,3,H,W] float32 RGB in [0,1]."""
    x = dec.float().clamp(-1, 1)
    return (x + 1) / 2  # [-1,1] -> [0,1]
