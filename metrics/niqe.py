"""NIQE, the "completely blind" natural-image quality score, by basicsr's reference code.

Mittal, Soundararajan, Bovik, "Making a 'Completely Blind' Image Quality Analyzer", IEEE
SPL 2013. We call basicsr's re-implementation (``basicsr.metrics.calculate_niqe``, within
~1e-6 of the official MATLAB code on its test image, with the pristine-model parameters
shipped inside basicsr: offline) on each restored frame, as the VQFR paper's NIQE column
(Table 1) and basicsr's validation do: the frame quantised to 8 bits as ``tensor2img``
(``x * 255`` rounded), BGR, ``crop_border=0, input_order='HWC', convert_to='y'``
(MATLAB's BT.601 luma), 96x96 blocks.

    NIQE(clip) = mean_t calculate_niqe(frame_t)

Range [0, inf), lower is better (natural images score ~3-6, the VQFR paper's CelebA-Test
input ~13). It needs no GT: a restorer is judged by how natural its frames look, not by
whether they show the right face (see the README's GT-free table for what it cannot
tell). Cost: one numpy pass per frame on the CPU (``vfr-bench perf`` measures it).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext
from vfr_bench.metrics.landmarks import to_uint8_frames, uint8_frames


def niqe_frames(frames_rgb8: np.ndarray) -> np.ndarray:
    """basicsr NIQE of every frame.

    Args:
        frames_rgb8: [T,H,W,3] uint8 RGB (H and W >= 192: two 96-px blocks at half scale).

    Returns:
        [T] float64.
    """
    from basicsr.metrics.niqe import calculate_niqe
    out = [calculate_niqe(np.ascontiguousarray(f[..., ::-1]), crop_border=0, input_order="HWC", convert_to="y")
           for f in frames_rgb8]  # RGB -> BGR, basicsr's channel order
    return np.asarray(out, dtype=np.float64).reshape(len(out))


def niqe(frames: torch.Tensor) -> np.ndarray:
    """[T,3,H,W] float RGB in [0,1] -> [T] NIQE per frame (8-bit levels as ``tensor2img``)."""
    return niqe_frames(to_uint8_frames(frames))


class NIQE(ClipMetric):
    """Mean over the restored frames of basicsr's NIQE (no GT)."""
    higher_is_better = False
    needs_gt = False

    def unavailable_reason(self) -> Optional[str]:
        try:
            import basicsr.metrics.niqe  # noqa: F401
        except ImportError:
            return "basicsr is not installed; run: pip install basicsr-fixed"
        return super().unavailable_reason()

    def score(self, ctx: MetricContext) -> ClipScore:
        v = niqe_frames(uint8_frames(ctx, "pred"))
        return ClipScore(float(v.mean()), v.tolist())
