"""KEEP as a video restorer: recurrent chunks of aligned 512x512 face frames.

KEEP: Feng, Li, Loy, "Kalman-Inspired Feature Propagation for Video Face Super-Resolution",
ECCV 2024; official code https://github.com/jnjaby/KEEP. The pipeline follows
``inference_keep.py --has_aligned``: frames resized to 512x512 (bilinear, as cv2 INTER_LINEAR
when upscaling), mapped to [-1,1] RGB, cut into independent chunks of ``max_length`` frames
(a 1-frame chunk is duplicated and its first output kept), restored with
``net(chunk, need_upscale=False)`` using the flat ``KEEP-a1a14d46.pth`` state dict, then
clamped to [-1,1], mapped to [0,1] and rounded to 8-bit levels as the official PNGs are.
Grayscale inputs (official ``is_gray``: mean variance of the pairwise channel differences
<= 10 on the 8-bit frame) give grayscale outputs (0.2989 R + 0.5870 G + 0.1140 B).
Differences: frames stay float between steps (the official script reads 8-bit frames).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint
from vfr_bench.interface import ClipMeta, VideoRestorer
from vfr_bench.methods.face_frames import FACE_SIZE, resize_frames

from .arch import KEEP
from .chunking import restore_in_chunks

# inference_keep.py builds the network with exactly these arguments (defaults otherwise).
NET_ARGS = dict(img_size=512, emb_dim=256, dim_embd=512, n_head=8, n_layers=9, codebook_size=1024,
                connect_list=["16", "32", "64"], kalman_attn_head_dim=48, num_uncertainty_layers=3,
                cross_fuse_list=["16", "32"], cross_fuse_nhead=4, cross_fuse_dim=256)


@dataclass
class KeepConfig:
    """Parameters of ``configs/methods/keep.yaml``.

    Attributes:
        max_length: frames per independent forward (official ``--max_length``, default 20).
            Results depend on it: the Kalman state restarts at every chunk.
        round_to_8bit: round the output to 8-bit levels like the official saved PNGs.
        max_batch_frames: frames (flow pairs) per LQ-encoder / GMFlow call inside a chunk;
            None: the whole chunk in one call, as the official forward. The same math at any
            value (float32 rounding differs between batch sizes); 1 is the per-frame path
            ``vfr-bench perf`` compares against.
    """
    max_length: int = 20
    round_to_8bit: bool = True
    max_batch_frames: Optional[int] = None

    def __post_init__(self):
        if self.max_length < 1:
            raise ValueError(f"keep: max_length must be >= 1 (got {self.max_length})")
        if self.max_batch_frames is not None and self.max_batch_frames < 1:
            raise ValueError(f"keep: max_batch_frames must be >= 1 or null (got {self.max_batch_frames})")


def is_gray(frames: torch.Tensor, threshold: float = 10.0) -> torch.Tensor:
    """Official grayscale test per frame on 8-bit values.

    Args:
        frames: [T,3,H,W] float RGB in [0,1].

    Returns:
        [T] bool: mean over the three channel pairs of var(c_i - c_j) <= threshold.
    """
    v = torch.round(frames.double().clamp(0, 1) * 255)
    r, g, b = v[:, 0], v[:, 1], v[:, 2]
    diffs = [(r - g), (g - b), (b - r)]
    score = sum(d.flatten(1).var(dim=1, unbiased=False) for d in diffs) / 3.0
    return score <= threshold


class KeepRestorer(VideoRestorer):
    """KEEP on FFHQ-aligned face clips."""
    Config = KeepConfig

    def required_weights(self) -> list[str]:
        return ["keep"]

    def build_networks(self) -> dict[str, torch.nn.Module]:
        return {"net": KEEP(**NET_ARGS)}

    def load_checkpoints(self, nets: dict[str, torch.nn.Module]) -> None:
        """Check the file's sha256 prefix and load its flat state dict strictly.

        Raises:
            WeightsMismatchError: its sha256 does not start with a1a14d46.
        """
        weight_registry.verify("keep")
        state = load_checkpoint(weight_registry.locate("keep"))
        nets["net"].load_state_dict(state, strict=True)

    @torch.no_grad()
    def restore(self, lq: torch.Tensor, meta: ClipMeta) -> torch.Tensor:
        """Restore an aligned face clip.

        Args:
            lq: [T,3,h,w] float32 RGB in [0,1], FFHQ-aligned faces.
            meta: clip information; the output has size ``meta.gt_size``.

        Returns:
            [T,3,H,W] float32 RGB in [0,1].
        """
        x = resize_frames(lq.to(next(self.net.parameters()).dtype), FACE_SIZE)
        gray = is_gray(x)
        x = x * 2 - 1  # [0,1] -> [-1,1]
        out = restore_in_chunks(
            x, lambda chunk: self.net(chunk, need_upscale=False, max_batch_frames=self.config.max_batch_frames),
            self.config.max_length)
        out = (out.float().clamp(-1, 1) + 1) / 2  # [-1,1] -> [0,1]
        if self.config.round_to_8bit:
            out = torch.round(out * 255) / 255
        if gray.any():
            w = torch.tensor([0.2989, 0.5870, 0.1140], dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
            luma = (out[gray] * w).sum(dim=1, keepdim=True).clamp(0, 1)
            if self.config.round_to_8bit:  # the official float gray image is saved as 8-bit
                luma = torch.round(luma * 255) / 255
            out[gray] = luma.expand(-1, 3, -1, -1)
        return resize_frames(out, meta.gt_size).clamp(0, 1)
