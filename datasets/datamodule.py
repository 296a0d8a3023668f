"""The split as a LightningDataModule: one item per clip for ``trainer.predict``.

Sharding over ranks and nodes is Lightning's: in predict mode it wraps the loader's sampler in
its ``UnrepeatedDistributedSamplerWrapper`` (rank r takes items r, r+N, ...), so every clip is
restored exactly once, with no padding duplicates.
"""
from __future__ import annotations

from typing import Optional, Sequence

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from vfr_bench.datasets.clips import ClipDataset
from vfr_bench.datasets.splits import Split


class SplitDataModule(pl.LightningDataModule):
    """The clips of ``split`` to restore.

    Args:
        split: a built split.
        clip_ids: only these clips (the ones a resumed run still needs), in split order;
            None for all.
        max_frames: only the first N frames of each clip (smoke runs).
        num_workers: decoding worker processes.
    """

    def __init__(self, split: Split, clip_ids: Optional[Sequence[str]] = None,
                 max_frames: Optional[int] = None, num_workers: int = 0):
        super().__init__()
        keep = None if clip_ids is None else set(clip_ids)
        self.clips = [c for c in split.clips if keep is None or c.id in keep]
        self.max_frames = max_frames
        self.num_workers = num_workers

    def predict_dataloader(self) -> DataLoader:
        """One clip per step (``batch_size=None``: clips differ in length)."""
        return DataLoader(ClipDataset(self.clips, self.max_frames), batch_size=None,
                          num_workers=self.num_workers, persistent_workers=False)
