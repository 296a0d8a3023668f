"""DicFace as a video restorer: BFR (``dicface``), colourisation (``dicface-color``) and
inpainting (``dicface-inpaint``) share this class and differ only in their checkpoint.

DicFace (Chen et al., ICCV 2025; official repo fudan-generative-vision/DicFace,
``scripts/inference.py`` and ``scripts/inference_color_and_inpainting.py`` with
``--has_aligned``): the aligned face is resized to 512x512 (cv2 INTER_LINEAR), mapped to
[-1,1] RGB, restored with ``net(clip, w=1.0)`` over sliding windows using the ``params_ema``
weights, clamped to [-1,1] and mapped back. Differences from the scripts, all recorded in the
config: frames stay float (the scripts round to uint8 on read and write); the Dirichlet draw
is seeded per (seed, clip, frame) instead of the unseeded global generator, or replaced by its
mean (``mixture: mean``); short clips are padded on both sides instead of crashing; and the
window is computed once per frame (``path: cached``, same numbers as the official per-window
forward, ``path: naive``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from vfr_bench import weights as weight_registry
from vfr_bench.interface import ClipMeta, VideoRestorer
from vfr_bench.methods.face_frames import FACE_SIZE, face_input, face_output

from .arch import DicFace
from .inference import WindowSettings, restore_cached, restore_naive

PATHS = ("cached", "naive")


@dataclass
class DicFaceConfig:
    """Parameters of ``configs/methods/dicface*.yaml``.

    Attributes:
        weights: weights-registry name of the checkpoint (``dicface-bfr``, ``dicface-color``,
            ``dicface-inpaint``).
        window: ``official`` (the script's window for ``max_length``) or ``center``
            (the paper's centred 5-frame window).
        max_length: the official ``--max_length`` (README example 10, script default 20).
        mixture: ``sample`` (seeded Dirichlet draw) or ``mean``.
        seed: base seed of the draws.
        w: fusion weight; the official scripts pass 1.0.
        path: ``cached`` (each frame encoded once) or ``naive`` (the official cost).
        chunk: output frames per batched step of the cached path (memory only).
    """
    weights: Literal["dicface-bfr", "dicface-color", "dicface-inpaint"] = "dicface-bfr"
    window: Literal["official", "center"] = "official"
    max_length: int = 10
    mixture: Literal["sample", "mean"] = "sample"
    seed: int = 0
    w: float = 1.0
    path: Literal["cached", "naive"] = "cached"
    chunk: int = 4

    def __post_init__(self):
        if self.path not in PATHS:
            raise ValueError(f"unknown DicFace path {self.path!r}; choose one of {PATHS}")
        self.settings()  # validates window, mixture, max_length, chunk

    def settings(self) -> WindowSettings:
        return WindowSettings(window=self.window, max_length=self.max_length, mixture=self.mixture,
                              seed=self.seed, w=self.w, chunk=self.chunk)


class DicFaceRestorer(VideoRestorer):
    """Sliding-window DicFace on aligned face clips."""
    Config = DicFaceConfig
    net_size: ClassVar[int] = FACE_SIZE  # the scripts resize every aligned face to 512x512

    def required_weights(self) -> list[str]:
        return [self.config.weights]

    def build_networks(self) -> dict[str, torch.nn.Module]:
        return {"net": DicFace()}

    def load_checkpoints(self, nets: dict[str, torch.nn.Module]) -> None:
        """``params_ema`` of the task's checkpoint, strict.

        Raises:
            KeyError: the file has no ``params_ema`` entry (not an official checkpoint).
        """
        nets["net"].load_state_dict(weight_registry.load_entry(self.config.weights, "params_ema"), strict=True)

    @torch.no_grad()
    def restore(self, lq: torch.Tensor, meta: ClipMeta) -> torch.Tensor:
        """Restore an aligned face clip.

        Args:
            lq: [T,3,h,w] float32 RGB in [0,1], FFHQ-aligned faces.
            meta: clip information (``clip_id`` seeds the draws; output size ``gt_size``).

        Returns:
            [T,3,H,W] float32 RGB in [0,1].
        """
        x = face_input(lq, next(self.net.parameters()).dtype, self.net_size)
        run = restore_cached if self.config.path == "cached" else restore_naive
        out = run(self.net, x, self.config.settings(), clip_id=meta.clip_id)
        return face_output(out, meta.gt_size)
