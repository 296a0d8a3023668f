"""What a person looks at: LQ | restored | GT side by side, and a temporal profile.

The temporal profile (KEEP Fig. 5, DicFace Fig. 7) stacks one pixel column of every
frame side by side over time: a temporally stable restoration shows smooth streaks,
flicker shows as vertical stripes. Previews are written for a few clips of each run,
beside their result files, and logged to W&B when it is on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench.video_io import write_mp4

PREVIEW_HEIGHT = 256


def _u8(x: torch.Tensor) -> np.ndarray:
    """[T,3,H,W] float in [0,1] -> [T,H,W,3] uint8."""
    return torch.round(x.detach().float().clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def side_by_side(lq: torch.Tensor, pred: torch.Tensor, gt: Optional[torch.Tensor],
                 height: int = PREVIEW_HEIGHT) -> np.ndarray:
    """[T,height,k*height',3] uint8: LQ (nearest-upsampled, so its pixels stay visible) | pred | GT
    (no GT panel on splits without ground truth)."""
    size = (height, round(height * pred.shape[-1] / pred.shape[-2]))
    panels = [F.interpolate(lq.float(), size=size, mode="nearest")] + \
        [F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
         for x in (pred, gt) if x is not None]
    return _u8(torch.cat(panels, dim=-1))


def temporal_profile(lq: torch.Tensor, pred: torch.Tensor, gt: Optional[torch.Tensor],
                     column: Optional[int] = None, gap: int = 4) -> np.ndarray:
    """[H, k*T+(k-1)*gap, 3] uint8: column ``column`` (default: the centre) of every frame, for LQ
    (upsampled to the output size), prediction and GT (when there is one), each as an H x T
    image, side by side."""
    h, w = pred.shape[-2:]
    c = w // 2 if column is None else column
    lq_up = F.interpolate(lq.float(), size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    strips = [_u8(x[..., c:c + 1]).squeeze(2).transpose(1, 0, 2) for x in (lq_up, pred, gt) if x is not None]
    sep = np.full((h, gap, 3), 255, np.uint8)
    out = [strips[0]]
    for strip in strips[1:]:
        out += [sep, strip]
    return np.concatenate(out, axis=1)


def write_previews(run_dir: Path, clip_id: str, lq: torch.Tensor, pred: torch.Tensor,
                   gt: Optional[torch.Tensor], fps: float) -> dict[str, Path]:
    """``<clip>.preview.mp4`` and ``<clip>.profile.png`` in ``run_dir``."""
    video = write_mp4(run_dir / f"{clip_id}.preview.mp4", side_by_side(lq, pred, gt), fps)
    prof = temporal_profile(lq, pred, gt)
    png = run_dir / f"{clip_id}.profile.png"
    cv2.imwrite(str(png), cv2.cvtColor(cv2.resize(prof, (prof.shape[1] * 4, prof.shape[0]),
                                                  interpolation=cv2.INTER_NEAREST), cv2.COLOR_RGB2BGR))
    return {"video": video, "profile": png}
