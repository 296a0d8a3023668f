"""Synthetic clips for the metric tests: integer shifts, analytic translated patterns."""
from __future__ import annotations

import numpy as np
import torch


def shift(clip: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Translate [T,3,H,W] by integer (dx, dy) pixels (content moves right/down), edges replicated."""
    h, w = clip.shape[-2:]
    pad = torch.nn.functional.pad(clip, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)), mode="replicate")
    y0, x0 = max(-dy, 0), max(-dx, 0)
    return pad[..., y0:y0 + h, x0:x0 + w]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# Analytic pattern: per channel a sum of sinusoids A sin(kx x + ky y + phase) around 0.5.
WAVES = [(0.08, 0.21, 0.13), (0.06, -0.11, 0.29), (0.05, 0.37, -0.07), (0.04, 0.05, 0.45)]


def pattern(h: int, w: int, dx: float, dy: float) -> torch.Tensor:
    """[3,H,W] float64 in [0,1]: the pattern translated by (dx, dy) px, evaluated exactly (no resampling)."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    x, y = xs - dx, ys - dy
    chans = []
    for c in range(3):
        v = torch.full_like(x, 0.5)
        for i, (a, kx, ky) in enumerate(WAVES):
            v = v + a * torch.sin(kx * x + ky * y + 1.3 * c + 0.7 * i)
        chans.append(v)
    return torch.stack(chans)


def bilinear_error_bound() -> float:
    """Upper bound of |bilinear interpolation - pattern| per channel at unit pixel spacing.

    Bilinear interpolation of f on a unit grid errs by at most
    (max|f_xx| + 2 max|f_xy| + max|f_yy|) / 8; for A sin(kx x + ky y + p) that is
    A (|kx| + |ky|)^2 / 8, summed over the waves.
    """
    return sum(a * (abs(kx) + abs(ky)) ** 2 / 8 for a, kx, ky in WAVES)


def translated_clip(shifts: list[tuple[float, float]], h: int = 192, w: int = 192) -> torch.Tensor:
    """[T,3,H,W] float32 clip of the pattern at the given cumulative sub-pixel shifts."""
    return torch.stack([pattern(h, w, dx, dy) for dx, dy in shifts]).float()
