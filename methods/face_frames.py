"""Aligned-face clips in and out of a face network: the resize and range change the face restorers share.

Clips travel as [T,3,h,w] RGB in [0,1]; the face networks (CodeFormer, DicFace, KEEP, VQFR)
take 512x512 RGB in [-1,1] (their official scripts ``cv2.resize`` the aligned face to 512
with INTER_LINEAR and normalise with mean 0.5, std 0.5) and return [-1,1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vfr_bench.face_geometry import FACE_SIZE


def resize_frames(x: torch.Tensor, size) -> torch.Tensor:
    """[T,C,h,w] -> [T,C,*size] bilinear (``cv2.resize`` INTER_LINEAR equivalent); unchanged if equal."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def face_input(lq: torch.Tensor, dtype: torch.dtype, size: int = FACE_SIZE) -> torch.Tensor:
    """[T,3,h,w] in [0,1] -> [T,3,size,size] in [-1,1] of the network's dtype."""
    return resize_frames(lq.to(dtype), size) * 2 - 1


def face_output(out: torch.Tensor, gt_size) -> torch.Tensor:
    """Network output [T,3,S,S] in [-1,1] -> [T,3,*gt_size] float32 RGB in [0,1]."""
    return resize_frames((out.float().clamp(-1, 1) + 1) / 2, gt_size).clamp(0, 1)
