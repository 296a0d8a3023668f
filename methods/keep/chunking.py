"""Chunked inference of KEEP over a whole clip, as in the official ``inference_keep.py``.

KEEP (Feng, Li, Loy, ECCV 2024, https://github.com/jnjaby/KEEP) cuts the preprocessed clip
into consecutive chunks of ``max_length`` frames ([0,20), [20,40), ...). Every chunk is an
independent forward call: no Kalman state, cross-frame feature or flow crosses a chunk
boundary. A 1-frame chunk (e.g. the last frame of a 21-frame clip, or a 1-frame video) is
duplicated to 2 frames and only output frame 0 is kept.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["chunk_spans", "restore_in_chunks"]


def chunk_spans(num_frames: int, max_length: int = 20) -> list[tuple[int, int]]:
    """Consecutive [start, stop) spans of at most ``max_length`` frames covering the clip.

    Raises:
        ValueError: for an empty clip or max_length < 1.
    """
    if num_frames < 1:
        raise ValueError(f"clip has no frames (num_frames={num_frames})")
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1 (got {max_length})")
    return [(s, min(s + max_length, num_frames)) for s in range(0, num_frames, max_length)]


def restore_in_chunks(frames: Tensor, forward: Callable[[Tensor], Tensor], max_length: int = 20) -> Tensor:
    """Run ``forward`` on each chunk independently and concatenate the outputs.

    Args:
        frames: [T,3,H,W] network input (for KEEP: float RGB in [-1,1]).
        forward: maps a [1,n,3,H,W] chunk (n >= 2) to [1,n,C,H',W'] (e.g. ``KEEP.forward``).
        max_length: frames per chunk (official default 20).

    Returns:
        [T,C,H',W'] outputs in frame order.
    """
    outs = []
    for start, stop in chunk_spans(frames.shape[0], max_length):
        chunk = frames[start:stop]
        if chunk.shape[0] == 1:  # a single frame is duplicated; output frame 0 is kept
            outs.append(forward(chunk.repeat(2, 1, 1, 1)[None])[0, :1])
        else:
            outs.append(forward(chunk[None])[0])
    return torch.cat(outs, dim=0)
