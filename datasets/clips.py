"""Clip reading: one dataset item per clip (frames folders -> float tensors)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vfr_bench.datasets.splits import ClipEntry, frame_files


def read_frames(folder, limit: int | None = None) -> np.ndarray:
    """[T,H,W,3] uint8 RGB from a folder of PNG/JPG frames (sorted by name), the first ``limit``.

    Raises:
        ValueError: empty folder, unreadable frame, or frames of mixed sizes.
    """
    files = frame_files(folder)[:limit]
    if not files:
        raise ValueError(f"no frames in {folder}")
    frames = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"cannot decode {f}")
        frames.append(img)
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"frames of mixed sizes in {folder}")
    return np.stack(frames)[..., ::-1]  # BGR -> RGB


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """[T,H,W,C] uint8 -> [T,C,H,W] float32 in [0,1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


class ClipDataset(Dataset):
    """Items: ``{"clip_id", "fps", "lq" [T,3,h,w], "gt"? [T,3,H,W], "mask"? [T,1,h,w]}``, float32
    in [0,1]; ``gt`` is absent on splits without ground truth (real footage). A clip that cannot
    be read, or whose LQ and GT frame counts differ, yields ``{"clip_id", "error"}`` instead of
    raising, so the run records it as failed and goes on.
    """

    def __init__(self, clips: Sequence[ClipEntry], max_frames: int | None = None):
        self.clips = list(clips)
        self.max_frames = max_frames

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        c = self.clips[i]
        try:
            n = self.max_frames
            item = {"clip_id": c.id, "fps": c.fps, "lq": to_tensor(read_frames(c.lq, n))}
            if c.gt is not None:
                item["gt"] = to_tensor(read_frames(c.gt, n))
            if c.mask is not None:
                item["mask"] = to_tensor(read_frames(c.mask, n)[..., :1])
        except Exception as e:  # recorded per clip by the prediction writer
            return {"clip_id": c.id, "error": f"cannot read clip: {e}"}
        if "gt" in item and item["gt"].shape[0] != item["lq"].shape[0]:
            return {"clip_id": c.id, "error": f"LQ has {item['lq'].shape[0]} frames, GT has {item['gt'].shape[0]}"}
        return item
