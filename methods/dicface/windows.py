"""Which source frames each DicFace output frame sees (pure index arithmetic, no tensors).

DicFace (Chen et al., ICCV 2025; official repo fudan-generative-vision/DicFace) has a fixed
temporal length T=5 (``position_emb_temporal`` is (5, 512)), so every output frame comes from
one 5-frame sub-clip and one kept position in it.

Two modes:

* ``official``: what ``scripts/inference.py`` computes. For output frame ``s`` it builds the
  ``max_length`` frames ``s-pre .. s+post`` (``pre = max_length // 2``, replication padding) and
  keeps position ``pre``. The network cuts that window into ``max_length / 5`` independent
  sub-clips, so only sub-clip ``pre // 5`` matters: for even multiples of 5 (10, 20) this is
  ``[s .. s+4]`` keeping position 0 (forward-looking); for 5 and 15 it is ``[s-2 .. s+2]``
  keeping position 2. Unlike the official script we replicate on both sides when a clip is
  shorter than the window (the official code only pads one side and crashes on
  ``num_frames <= max_length - 2``); where the official code runs, the frames are identical.
* ``center``: the paper's description, a 5-frame stride-1 window centred on ``s`` with
  replication padding at both ends (same as official with ``max_length`` 5).
"""
from __future__ import annotations

from dataclasses import dataclass

FRAME_LENGTH = 5
WINDOW_MODES = ("official", "center")


@dataclass(frozen=True)
class Window:
    """One network call's worth of frames for one output frame.

    Attributes:
        output: index of the output frame this window produces.
        frames: the FRAME_LENGTH source frame indices fed to the network, in order.
        keep: position in ``frames`` whose output is kept (``frames[keep] == output``).
    """

    output: int
    frames: tuple[int, ...]
    keep: int


def official_offset(max_length: int) -> tuple[int, int]:
    """(first-frame offset relative to s, kept position) of the sub-clip that matters.

    Args:
        max_length: the official ``--max_length``, a positive multiple of 5.

    Raises:
        ValueError: when ``max_length`` is not a positive multiple of 5 (the official
            reshape fails there).
    """
    if max_length <= 0 or max_length % FRAME_LENGTH:
        raise ValueError(
            f"DicFace max_length must be a positive multiple of {FRAME_LENGTH}, got {max_length}"
        )
    pre = max_length // 2
    sub_clip = pre // FRAME_LENGTH
    return FRAME_LENGTH * sub_clip - pre, pre % FRAME_LENGTH


def official_full_window(num_frames: int, s: int, max_length: int) -> tuple[int, ...]:
    """All ``max_length`` source frames of the official window of output frame ``s``.

    Used by the naive (official-cost) path, which runs every sub-clip.
    """
    _check(num_frames)
    pre = max_length // 2
    post = max_length - pre - 1
    return tuple(_clamp(i, num_frames) for i in range(s - pre, s + post + 1))


def window_for(mode: str, num_frames: int, s: int, max_length: int = 10) -> Window:
    """The 5-frame window that produces output frame ``s``.

    Args:
        mode: ``"official"`` or ``"center"``.
        num_frames: clip length, >= 1.
        s: output frame index in ``[0, num_frames)``.
        max_length: official window length (ignored by ``center``).
    """
    _check(num_frames)
    if not 0 <= s < num_frames:
        raise IndexError(f"output frame {s} outside clip of {num_frames} frames")
    if mode == "official":
        offset, keep = official_offset(max_length)
    elif mode == "center":
        offset, keep = -(FRAME_LENGTH // 2), FRAME_LENGTH // 2
    else:
        raise ValueError(f"unknown DicFace window mode {mode!r}; choose one of {WINDOW_MODES}")
    frames = tuple(_clamp(s + offset + j, num_frames) for j in range(FRAME_LENGTH))
    return Window(output=s, frames=frames, keep=keep)


def windows(mode: str, num_frames: int, max_length: int = 10) -> list[Window]:
    """``window_for`` for every output frame of a clip, in order."""
    _check(num_frames)
    return [window_for(mode, num_frames, s, max_length) for s in range(num_frames)]


def _clamp(i: int, num_frames: int) -> int:
    return min(max(i, 0), num_frames - 1)


def _check(num_frames: int) -> None:
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got {num_frames}")
