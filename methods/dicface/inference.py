"""DicFace sliding-window inference: an efficient cached path and the official-cost path.

DicFace (Chen et al., ICCV 2025; official repo fudan-generative-vision/DicFace,
``scripts/inference.py``). The official script runs ``max_length`` frames through encoder,
transformer and generator for every output frame and keeps one. Only one 5-frame sub-clip
influences the kept frame (see ``windows.py``), and encoder and generator work per frame, so:

* ``restore_cached`` encodes every source frame once (encoder latent -> ``lq_feat``, plus the
  skip features the generator fusions need), runs only the 5-frame transformer per window,
  and decodes only the kept frame with its own cached skips. Frames are processed in chunks
  of ``chunk`` output frames; the cache is rolling: ``lq_feat`` is dropped once no later
  window needs it, skips once the frame is decoded, so memory is bounded by about
  ``chunk + 4`` frames whatever the clip length.
* ``restore_naive`` reproduces the official cost: one full ``forward`` (all ``max_length``
  frames) per output frame, keeping position ``pre``. For tests and the perf harness.

Both paths use the same mixture weights for a kept frame: the mean, or a Dirichlet draw from
a generator seeded by (seed, clip id, output frame) over that frame's alpha only (frames
whose output is discarded use the mean in the naive path).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from .mixture import MIXTURE_MODES, dirichlet_mean, mixture_weights
from .windows import FRAME_LENGTH, WINDOW_MODES, official_full_window, window_for, windows


@dataclass(frozen=True)
class WindowSettings:
    """How a clip is cut into windows and how mixtures are chosen.

    Attributes:
        window: ``official`` (the script's window for ``max_length``) or ``center``
            (the paper's centred 5-frame window).
        max_length: the official ``--max_length`` (README example 10; script default 20).
        mixture: ``sample`` (seeded Dirichlet draw, the official behaviour made
            reproducible) or ``mean``.
        seed: base seed for ``sample``.
        w: fusion weight; the official scripts use 1.0.
        chunk: output frames per batched step of the cached path (memory vs speed).
    """

    window: str = "official"
    max_length: int = 10
    mixture: str = "sample"
    seed: int = 0
    w: float = 1.0
    chunk: int = 4

    def __post_init__(self):
        if self.window not in WINDOW_MODES:
            raise ValueError(f"unknown DicFace window {self.window!r}; choose one of {WINDOW_MODES}")
        if self.mixture not in MIXTURE_MODES:
            raise ValueError(f"unknown DicFace mixture {self.mixture!r}; choose one of {MIXTURE_MODES}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {self.chunk}")
        window_for("official", 1, 0, self.max_length)  # validates max_length


@torch.no_grad()
def restore_cached(model, clip: Tensor, settings: WindowSettings, clip_id: str = "") -> Tensor:
    """Restore a clip, encoding each frame once and decoding only kept frames.

    Args:
        model: a ``DicFace`` (eval mode).
        clip: [T,3,H,W] float RGB in [-1,1], T >= 1.
        settings: window and mixture settings.
        clip_id: identifies the clip for seeded sampling.

    Returns:
        [T,3,H,W] raw network output (nominally [-1,1], not clamped).
    """
    n = clip.shape[0]
    plan = windows(settings.window, n, settings.max_length)
    lq_cache: dict[int, Tensor] = {}                 # frame -> lq_feat [C,h,w]
    skip_cache: dict[int, dict[str, Tensor]] = {}    # frame -> {size: [C,s,s]} until decoded
    encoded = 0                                      # frames [0, encoded) went through the encoder
    outputs = []
    for start in range(0, n, settings.chunk):
        group = plan[start:start + settings.chunk]
        need = max(f for win in group for f in win.frames) + 1
        for lo in range(encoded, need, settings.chunk):  # encode new frames in bounded batches
            hi = min(lo + settings.chunk, need)
            enc_latent, skips = model.encode(clip[lo:hi])
            lq_feat = model.fuse_scales(enc_latent, skips)
            for j, frame in enumerate(range(lo, hi)):
                lq_cache[frame] = lq_feat[j]
                skip_cache[frame] = {s: skips[s][j] for s in model.connect_list}
            del enc_latent, skips, lq_feat
        encoded = max(encoded, need)

        lq_batch = torch.stack([lq_cache[f] for win in group for f in win.frames])
        tokens = model.transform(lq_batch)                               # [HW, G*5, C]
        kept = [g * FRAME_LENGTH + win.keep for g, win in enumerate(group)]
        alpha = model.concentration(tokens[:, kept])                     # [G, HW, K]
        weights = mixture_weights(alpha, settings.mixture, seed=settings.seed, clip_id=clip_id,
                                  frames=[win.output for win in group])
        skips = {s: torch.stack([skip_cache[win.output][s] for win in group])
                 for s in model.connect_list}
        for win in group:  # each kept frame is decoded exactly once
            del skip_cache[win.output]
        outputs.append(model.decode(model.mix(weights), skips, settings.w))
        del tokens, alpha, weights, skips

        if start + settings.chunk < n:  # drop lq_feat no later window reads
            first_needed = plan[start + settings.chunk].frames[0]
            for frame in [f for f in lq_cache if f < first_needed]:
                del lq_cache[frame]
    return torch.cat(outputs)


@torch.no_grad()
def restore_naive(model, clip: Tensor, settings: WindowSettings, clip_id: str = "",
                  outputs: Optional[Sequence[int]] = None) -> Tensor:
    """Restore a clip at the official cost: one full forward per output frame.

    ``official``: the ``max_length`` frames ``s-pre .. s+post`` (replicated at the ends),
    keep position ``pre``; ``center``: the centred 5-frame window, keep position 2.

    Args and returns as ``restore_cached``, except ``outputs``: the output frames to compute
    (default all, in order); the perf harness times a prefix, each output costing the same.
    """
    n = clip.shape[0]
    results = []
    for s in (range(n) if outputs is None else outputs):
        if settings.window == "official":
            frames = official_full_window(n, s, settings.max_length)
            keep = settings.max_length // 2
        else:
            win = window_for("center", n, s)
            frames, keep = win.frames, win.keep

        def mix_fn(alpha: Tensor, keep=keep, s=s) -> Tensor:
            weights = dirichlet_mean(alpha)  # discarded frames: any weights will do
            weights[keep] = mixture_weights(alpha[keep:keep + 1], settings.mixture,
                                            seed=settings.seed, clip_id=clip_id, frames=[s])[0]
            return weights

        out, _, _ = model(clip[list(frames)], w=settings.w, mix_fn=mix_fn)
        results.append(out[keep:keep + 1])
    return torch.cat(results)
