"""The one interface every restorer implements.

A method is a :class:`VideoRestorer` (a LightningModule) with
``restore(lq, meta) -> pred``. It owns its preprocessing (resize, [-1,1], colour
order), its windowing (sliding windows, recurrent chunks, per frame, diffusion
windows) and its checkpoint loading, which happens in :meth:`setup`, never in
``__init__``. The runner attaches an evaluator; :meth:`test_step` restores one
clip and feeds the metrics.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import pytorch_lightning as pl
import torch

from vfr_bench import weights as weight_registry


@dataclass
class ClipMeta:
    """What a method may know about the clip it restores.

    Attributes:
        clip_id: stable clip name (seeds per-clip randomness, e.g. DicFace's draws).
        fps: frame rate of the source.
        gt_size: (H, W) the output must have.
        mask: [T,1,h,w] float in {0,1} where the split provides one (inpainting), else None.
        degradation: the split's declared degradation operator (``blind``, ``x8-bicubic``...).
    """
    clip_id: str
    fps: float
    gt_size: tuple[int, int]
    mask: Optional[torch.Tensor] = None
    degradation: str = "blind"


@dataclass
class NoConfig:
    """A method without parameters."""


class VideoRestorer(pl.LightningModule):
    """Base class of all methods.

    Subclasses set ``Config`` (a dataclass loaded from ``configs/methods/<name>.yaml``
    ``params``), implement :meth:`restore`, and, when they use networks, list the
    weights-registry names in :meth:`required_weights` and build/load them in
    :meth:`load_weights`.
    """
    Config: ClassVar[type] = NoConfig

    def __init__(self, method_name: str, config: Any = None):
        super().__init__()
        self.method_name = method_name
        self.config = config if config is not None else self.Config()
        self.evaluator = None  # attached by the runner
        self._weights_loaded = False

    # --- weights -----------------------------------------------------------------
    def required_weights(self) -> list[str]:
        """Weights-registry names this configuration needs (checked before any work)."""
        return []

    def load_weights(self) -> None:
        """Build networks and load checkpoints (strict). Called once, from :meth:`setup`."""

    def setup(self, stage: Optional[str] = None) -> None:
        if not self._weights_loaded:
            for name in self.required_weights():
                weight_registry.locate(name)  # clear error before building anything
            self.load_weights()
            self._weights_loaded = True

    def prepare(self, device: torch.device | str = "cpu") -> "VideoRestorer":
        """Load weights and move to ``device`` outside a Trainer (restore CLI, tests)."""
        self.setup("test")
        return self.to(device).eval()

    # --- the method ----------------------------------------------------------------
    def applicable(self, degradation: str) -> Optional[str]:
        """None if the method can run on a split with this degradation, else the reason
        (FLAIR needs its own operator)."""
        return None

    def restore(self, lq: torch.Tensor, meta: ClipMeta) -> torch.Tensor:
        """Restore one clip.

        Args:
            lq: [T,3,h,w] float32 RGB in [0,1] on the module's device.
            meta: clip information (output size, mask, id).

        Returns:
            [T,3,H,W] float RGB in [0,1] with (H, W) = ``meta.gt_size``.
        """
        raise NotImplementedError

    def clip_stats(self) -> dict:
        """Counters about the clip :meth:`restore` just returned, kept in its result file as
        ``method_stats`` (e.g. FLAIR's frames without a detected face); JSON-serialisable."""
        return {}

    def describe(self) -> dict:
        """Name and configuration, recorded with every result."""
        return {"method": self.method_name, "config": dataclasses.asdict(self.config),
                "weights": self.required_weights()}

    # --- Lightning -------------------------------------------------------------------
    def test_step(self, batch: dict, batch_idx: int):
        if self.evaluator is None:
            raise RuntimeError("no evaluator attached; run through vfr_bench.bench")
        return self.evaluator.evaluate(self, batch)
