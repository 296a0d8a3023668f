"""FLAIR's overlapping temporal windows for clips longer than one diffusion batch.

FLAIR (Zou et al., WACV 2025; https://github.com/wustl-cig/FLAIR, ``scripts/video_sample.py``)
cuts a clip into windows of ``FRAME_SLICE_LEN = 10`` frames with step 7 (``OVERLAP = 3``) via
``more_itertools.windowed`` (the padded last window is shorter: 25 frames -> [0-9], [7-16],
[14-23], [21-24]), samples them one after another, and for every window after the first hard-
replaces the first 3 x0-predictions at **every** sampling step with the previous window's last
3 final frames. The output keeps all frames of the first window and drops the first 3 of each
later one (no averaging).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

WINDOW = 10
OVERLAP = 3


def window_bounds(n_frames: int, window: int = WINDOW, overlap: int = OVERLAP) -> list[tuple[int, int]]:
    """[start, end) of each window, as ``more_itertools.windowed(frames, window, step)``.

    A new window starts every ``window - overlap`` frames for as long as the previous one
    did not reach the clip's end; the last one is cut at the end of the clip.
    """
    if n_frames <= 0:
        return []
    step = window - overlap
    starts = [0]
    while starts[-1] + window < n_frames:
        starts.append(starts[-1] + step)
    return [(s, min(s + window, n_frames)) for s in starts]


def overwrite_overlap(x0: torch.Tensor, prev_tail: Optional[torch.Tensor]) -> torch.Tensor:
    """Replace the first frames of an x0-prediction with the previous window's final frames.

    Args:
        x0: [T,3,H,W] x0-prediction of the current window in [-1,1].
        prev_tail: [k,3,H,W] last k final frames of the previous window, or None (first window).
    Returns:
        x0 with x0[:k] = prev_tail (a new tensor; the input is not modified).
    """
    if prev_tail is None:
        return x0
    return torch.cat([prev_tail.to(x0), x0[prev_tail.shape[0]:]], dim=0)


def stitch(outputs: list[torch.Tensor], overlap: int = OVERLAP) -> torch.Tensor:
    """Concatenate window outputs: all of the first, each later one without its first frames."""
    return torch.cat([outputs[0]] + [o[overlap:] for o in outputs[1:]], dim=0)


def run_windows(frames: torch.Tensor,
                sample_window: Callable[[torch.Tensor, Optional[torch.Tensor]], torch.Tensor],
                window: int = WINDOW, overlap: int = OVERLAP) -> torch.Tensor:
    """Sample a whole clip window by window.

    Args:
        frames: [T,...] per-frame input of the clip (e.g. the LQ frames).
        sample_window: (frames[s:e], prev_tail) -> [e-s,...] final frames of that window;
            prev_tail is None for the first window, else the previous window's last
            ``overlap`` final frames, to be imposed on the x0-prediction at every step.
    Returns:
        [T,...] the stitched output.
    """
    outputs, prev_tail = [], None
    for s, e in window_bounds(frames.shape[0], window, overlap):
        out = sample_window(frames[s:e], prev_tail)
        outputs.append(out)
        prev_tail = out[-overlap:]
    return stitch(outputs, overlap)
