"""Clip loading: one item per clip, sharded across ranks without padding duplicates."""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

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
    """Items: ``{"clip_id", "fps", "lq" [T,3,h,w], "gt" [T,3,H,W], "mask"? [T,1,h,w]}``, float32
    in [0,1]. A clip that cannot be read yields ``{"clip_id", "error"}`` instead of raising, so
    the run records it as failed and goes on.
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
            item = {"clip_id": c.id, "fps": c.fps, "lq": to_tensor(read_frames(c.lq, n)),
                    "gt": to_tensor(read_frames(c.gt, n))}
            if c.mask is not None:
                item["mask"] = to_tensor(read_frames(c.mask, n)[..., :1])
        except Exception as e:  # recorded per clip by the evaluator
            return {"clip_id": c.id, "error": f"cannot read clip: {e}"}
        return item


class ShardSampler(Sampler[int]):
    """Rank r of W takes items r, r+W, r+2W, ...: every item exactly once over all ranks,
    no padding duplicates (unlike DistributedSampler). Rank and world size are read when
    iterating, so it works with Lightning's DDP launch."""

    def __init__(self, n: int):
        self.n = n

    @staticmethod
    def _rank_world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[int]:
        rank, world = self._rank_world()
        return iter(range(rank, self.n, world))

    def __len__(self) -> int:
        rank, world = self._rank_world()
        return max(0, math.ceil((self.n - rank) / world))


def clip_loader(clips: Sequence[ClipEntry], num_workers: int = 0, max_frames: int | None = None) -> DataLoader:
    """One clip per step (``batch_size=None``), sharded by :class:`ShardSampler`."""
    ds = ClipDataset(clips, max_frames)
    return DataLoader(ds, batch_size=None, sampler=ShardSampler(len(ds)), num_workers=num_workers,
                      persistent_workers=False)
