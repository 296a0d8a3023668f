"""Codebook mixture weights from the Dirichlet concentration (no VQ lookup at inference).

DicFace (Chen et al., ICCV 2025; official repo fudan-generative-vision/DicFace) predicts, per
token, a Dirichlet concentration ``alpha`` over the 1024 codebook entries and feeds the
generator the convex mixture ``weights @ codebook``. The official code draws ``weights`` with
``Dirichlet(alpha).rsample()`` from the unseeded global generator even at inference, so its
outputs change from run to run. We offer:

* ``sample``: the same Gamma-normalise draw (``torch._sample_dirichlet``, the op behind
  ``Dirichlet.rsample``) from a generator seeded by (seed, clip id, output frame), so a run is
  reproducible and independent of batching and windowing;
* ``mean``: the Dirichlet mean ``alpha / alpha.sum(-1)`` (deterministic).
"""
from __future__ import annotations

import hashlib

import torch

MIXTURE_MODES = ("sample", "mean")


def frame_seed(seed: int, clip_id: str, frame: int) -> int:
    """A 63-bit seed that depends only on (seed, clip id, output frame index)."""
    digest = hashlib.sha256(f"dicface|{seed}|{clip_id}|{frame}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def dirichlet_mean(alpha: torch.Tensor) -> torch.Tensor:
    """Mean of Dirichlet(alpha) over the last axis.

    Args:
        alpha: [..., K] float, > 0.
    """
    return alpha / alpha.sum(-1, keepdim=True)


def dirichlet_sample(alpha: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One Dirichlet(alpha) draw over the last axis (Gamma(alpha_k, 1) normalised).

    Args:
        alpha: [..., K] float, > 0.
        generator: on ``alpha``'s device; None uses the global generator (official behaviour).
    """
    return torch._sample_dirichlet(alpha, generator=generator)


def mixture_weights(
    alpha: torch.Tensor,
    mode: str,
    *,
    seed: int = 0,
    clip_id: str = "",
    frames: list[int] | None = None,
) -> torch.Tensor:
    """Mixture weights for the kept frames of a batch.

    Args:
        alpha: [N,HW,K] float, Dirichlet concentration of N kept output frames.
        mode: ``"sample"`` or ``"mean"``.
        seed, clip_id: identify the run and the clip (``sample`` only).
        frames: the N output frame indices (``sample`` only); frame ``s`` is drawn from a
            generator seeded by ``frame_seed(seed, clip_id, s)`` over its own alpha only.

    Returns:
        [N,HW,K] weights, each row on the simplex.
    """
    if mode == "mean":
        return dirichlet_mean(alpha)
    if mode != "sample":
        raise ValueError(f"unknown DicFace mixture {mode!r}; choose one of {MIXTURE_MODES}")
    if frames is None or len(frames) != alpha.shape[0]:
        raise ValueError("mixture 'sample' needs one output frame index per alpha row")
    draws = []
    for row, frame in zip(alpha, frames):  # one seeded generator per output frame
        gen = torch.Generator(device=alpha.device).manual_seed(frame_seed(seed, clip_id, frame))
        draws.append(dirichlet_sample(row, gen))
    return torch.stack(draws)
