"""What ``vfr-bench perf`` measures (the CLI flags, typed)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

RATIOS = ("dicface", "keep", "vqfr", "metrics", "decode", "amp")


@dataclass
class PerfOptions:
    """What ``vfr-bench perf`` measures.

    Attributes:
        split: split name or folder; method rows read its first clip.
        frames: frames of that clip per method row (and for the KEEP/VQFR ratios).
        methods: method names for the per-method rows (None: every registered method).
        metrics: metric names for the per-metric rows (None: every registered metric).
        ratios: which side-by-side comparisons to run (subset of ``RATIOS``).
        device: ``cpu`` or ``cuda``.
        out: the JSON to write.
        clips: clips of the split for the metric rows (None: all).
        metric_frames: frames per clip for the metric rows (None: whole clips).
        metric_repeats: each metric row and reference loop is timed in at least this many
            blocks and for at least 1 s, and the best block is kept (timeit's convention; PSNR
            on 8 frames takes ~7 ms, one timing is at the mercy of the scheduler).
        dicface_frames: clip length of the DicFace ratio (the issue's 24).
        naive_outputs: frames of the clip the naive DicFace path is timed on (None: all
            ``dicface_frames``); each output costs the same. 2 by default: the row's clip, so
            the comparison costs nothing, and batched kernels on both sides (see
            ``ratios.dicface_ratio``).
        dicface_method: the DicFace-class method of the DicFace ratio.
        vqfr_method: the VQFR variant of the VQFR ratio.
        flair_steps: diffusion steps of the FLAIR row (official: 100).
        flair_frames: frames of the FLAIR row's synthetic x8 clip.
        flair_size: output size of that clip (official 512; LQ = size / 8).
        command: the command line, recorded in the JSON.
    """
    split: str = "sample"
    frames: int = 2
    methods: Optional[list[str]] = None
    metrics: Optional[list[str]] = None
    ratios: Sequence[str] = RATIOS
    device: str = "cpu"
    out: Path = Path("results/perf.json")
    clips: Optional[int] = 1
    metric_frames: Optional[int] = 8
    metric_repeats: int = 3
    dicface_frames: int = 24
    naive_outputs: Optional[int] = 2
    dicface_method: str = "dicface"
    vqfr_method: str = "vqfr-v2"
    flair_steps: int = 2
    flair_frames: int = 2
    flair_size: int = 128
    command: str = ""
