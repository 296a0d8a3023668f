"""Weight-free baselines."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from vfr_bench.interface import ClipMeta, VideoRestorer


@dataclass
class UpsampleConfig:
    # torch.nn.functional.interpolate modes for [T,3,h,w] frames
    mode: Literal["nearest", "nearest-exact", "bilinear", "bicubic", "area"] = "bicubic"


class LQUpsample(VideoRestorer):
    """Upsample the LQ clip to the GT size: the "Input" / "A+y" row of the papers' tables."""
    Config = UpsampleConfig

    def restore(self, lq: torch.Tensor, meta: ClipMeta) -> torch.Tensor:
        if tuple(lq.shape[-2:]) == tuple(meta.gt_size):
            return lq.clamp(0, 1)
        align = False if self.config.mode in ("bilinear", "bicubic") else None
        up = F.interpolate(lq, size=meta.gt_size, mode=self.config.mode, align_corners=align)
        return up.clamp(0, 1)
