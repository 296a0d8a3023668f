"""VQFR v1 / v2 as benchmark methods ``vqfr-v1`` and ``vqfr-v2`` (per-frame restorers).

Gu et al., "VQFR: Blind Face Restoration with Vector-Quantized Dictionary and Parallel
Decoder", ECCV 2022; official code https://github.com/TencentARC/VQFR. The pipeline is
the official demo on aligned faces (``demo.py --aligned`` -> ``vqfr/demo_util.py``):
resize to 512x512 (bilinear), [0,1] -> [-1,1] RGB, one network call per frame, keep
``main_dec``, clamp to [-1,1] and map to [0,1]. VQFR has no temporal model: frames are
independent and are batched ``batch_frames`` at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint
from vfr_bench.interface import ClipMeta, VideoRestorer
from vfr_bench.methods.face_frames import face_input, resize_frames

from .checkpoint import vqfr_state_dict
from .postprocess import dec_to_rgb01
from .vqfr_v1_arch import VQFRv1
from .vqfr_v2_arch import VQFRv2

__all__ = ["VQFRv1Restorer", "VQFRv2Restorer"]



@dataclass
class VQFRv1Config:
    batch_frames: int = 4  # frames per network call; memory only (finest DCN buffers 1.2 GB a frame in float32)


@dataclass
class VQFRv2Config:
    fidelity_ratio: float = 0.0  # weight of the main branch; demo CLI default 0.0 (README examples use 0.1)
    batch_frames: int = 4  # frames per network call; memory only (finest DCN buffers 0.6 GB a frame in float32)


class _VQFRRestorer(VideoRestorer):
    """Shared pipeline; subclasses name the weights, build the network and call it."""
    weights_name: ClassVar[str]
    net_size: ClassVar[int] = 512  # the demo resizes every aligned face to 512x512

    def required_weights(self) -> list[str]:
        return [self.weights_name]

    def build_networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def main_dec(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B,3,512,512] RGB in [-1,1] -> main-branch image [B,3,512,512] nominally [-1,1]."""
        raise NotImplementedError

    def load_checkpoints(self, nets: dict[str, nn.Module]) -> None:
        checkpoint = load_checkpoint(weight_registry.locate(self.weights_name))
        nets["net"].load_state_dict(vqfr_state_dict(checkpoint), strict=True)

    @torch.no_grad()
    def restore(self, lq: torch.Tensor, meta: ClipMeta) -> torch.Tensor:
        """lq: [T,3,h,w] float32 RGB in [0,1] -> [T,3,H,W] float32 RGB in [0,1], (H,W) = meta.gt_size."""
        chunks = []
        for frames in lq.split(max(1, self.config.batch_frames)):
            x = face_input(frames, frames.dtype, self.net_size)
            chunks.append(dec_to_rgb01(self.main_dec(x)))  # clamp [-1,1] -> [0,1]
        # the resize is not in the demo: only for non-512 GT
        return resize_frames(torch.cat(chunks), meta.gt_size).clamp(0, 1)


class VQFRv1Restorer(_VQFRRestorer):
    """``vqfr-v1``: VQFR v1 (``VQFR_v1-33a1fac5.pth``); the official v1 ignores fidelity_ratio."""
    Config = VQFRv1Config
    weights_name = "vqfr-v1"

    def build_networks(self) -> dict[str, nn.Module]:
        return {"net": VQFRv1()}

    def main_dec(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["main_dec"]


class VQFRv2Restorer(_VQFRRestorer):
    """``vqfr-v2``: VQFR v2 (``VQFR_v2.pth``) at ``fidelity_ratio`` (0 = texture branch only)."""
    Config = VQFRv2Config
    weights_name = "vqfr-v2"

    def build_networks(self) -> dict[str, nn.Module]:
        return {"net": VQFRv2()}

    def main_dec(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, fidelity_ratio=self.config.fidelity_ratio)["main_dec"]
