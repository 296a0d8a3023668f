"""The one interface every restorer implements.

A method is a :class:`VideoRestorer` (a LightningModule) with
``restore(lq, meta) -> pred``. It owns its preprocessing (resize, [-1,1], colour
order), its windowing (sliding windows, recurrent chunks, per frame, diffusion
windows) and its networks: :meth:`VideoRestorer.build_networks` is the one place they
are made; :meth:`setup` loads the official checkpoints into them (never ``__init__``),
:meth:`prepare` with ``fill`` fills them instead (tests, perf). In ``trainer.predict``,
:meth:`predict_step` restores one clip and returns it; scoring and writing happen in the
prediction writer (``vfr_bench.writer``), so nothing is attached to the module.
"""
from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

import pytorch_lightning as pl
import torch
from torch import nn

from vfr_bench import weights as weight_registry


@dataclass
class ClipMeta:
    """What a method may know about the clip it restores.

    Attributes:
        clip_id: stable clip name (seeds per-clip randomness, e.g. DicFace's draws).
        fps: frame rate of the source.
        gt_size: (H, W) the output must have (the LQ size on splits without GT).
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
    weights-registry names in :meth:`required_weights`, make the networks in
    :meth:`build_networks` and load the files into them in :meth:`load_checkpoints`.

    Args:
        method_name: the registry name (``keep``).
        config: the ``Config`` instance (defaults when None).
        degradation: the split's degradation operator, for methods whose networks depend on
            it (FLAIR's task); fixed here, at construction.
    """
    Config: ClassVar[type] = NoConfig

    def __init__(self, method_name: str, config: Any = None, degradation: str = "blind"):
        super().__init__()
        self.method_name = method_name
        self.config = config if config is not None else self.Config()
        self.degradation = degradation
        self.networks_ready = False

    # --- networks ------------------------------------------------------------------
    def required_weights(self) -> list[str]:
        """Weights-registry names this configuration needs (checked before any work)."""
        return []

    def build_networks(self) -> dict[str, nn.Module]:
        """Every network of this configuration at official size, no weights loaded:
        {attribute name: module}. The one place a method's networks are made."""
        return {}

    def load_checkpoints(self, nets: dict[str, nn.Module]) -> None:
        """Load the official checkpoints into ``nets`` (strict); files are present."""

    def attach(self, nets: dict[str, nn.Module]) -> None:
        """Make the loaded networks the method's attributes (override to wire them up)."""
        for key, net in nets.items():
            setattr(self, key, net.eval())
        self.networks_ready = True

    def setup(self, stage: Optional[str] = None) -> None:
        """Lightning hook: build the networks and load the official checkpoints, once."""
        if not self.networks_ready:
            for name in self.required_weights():
                weight_registry.locate(name)  # clear error before building anything
            nets = self.build_networks()
            self.load_checkpoints(nets)
            self.attach(nets)

    def prepare(self, device: torch.device | str = "cpu",
                fill: Optional[Callable[[nn.Module], None]] = None) -> "VideoRestorer":
        """Networks ready on ``device``, eval, outside a Trainer (restore CLI, tests, perf).

        Args:
            fill: when given, called on each built network instead of loading checkpoints
                (deterministic weights for tests and timing; never for results).
        """
        if fill is None:
            self.setup("predict")
        else:
            nets = self.build_networks()
            for net in nets.values():
                fill(net)
            self.attach(nets)
        return self.to(device).eval()

    # --- the method ----------------------------------------------------------------
    def applicable(self, degradation: str) -> Optional[str]:
        """None if the method can run on a split with this degradation, else the reason
        (FLAIR needs its own operator). Pure: changes nothing."""
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
    def predict_step(self, batch: dict, batch_idx: int = 0) -> dict:
        """Restore one clip of the ``SplitDataModule``: ``{"pred", "seconds", "method_stats"}``,
        or ``{"error"}`` when the clip could not be read or ``restore`` raised (the run goes on).
        Autocast, when asked, comes from the Trainer's precision plugin around this call."""
        if "error" in batch:
            return {"error": batch["error"]}
        lq = batch["lq"]
        size = tuple(batch["gt"].shape[-2:]) if batch.get("gt") is not None else tuple(lq.shape[-2:])
        meta = ClipMeta(batch["clip_id"], float(batch["fps"]), size, batch.get("mask"), self.degradation)
        try:
            sync_device(lq.device)
            t0 = time.perf_counter()
            pred = self.restore(lq, meta)
            sync_device(lq.device)
            seconds = time.perf_counter() - t0
        except Exception as e:  # one clip failing never stops the run
            return {"error": traceback.format_exception_only(type(e), e)[-1].strip()}
        return {"pred": pred, "seconds": seconds, "method_stats": self.clip_stats(), "meta": meta}


def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
