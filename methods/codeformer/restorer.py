"""CodeFormer as a video restorer: every frame restored independently, frames batched.

Zhou, Chan, Li, Loy, "Towards Robust Blind Face Restoration with Codebook Lookup
Transformer", NeurIPS 2022; official code: github.com/sczhou/CodeFormer. The pipeline
follows `inference_codeformer.py --has_aligned`: the aligned face is resized to 512x512
(cv2 INTER_LINEAR), mapped to [-1,1] RGB, restored with `net(x, w=w, adain=True)[0]`
using the `params_ema` weights of `codeformer.pth`, clamped to [-1,1] and mapped back.
Differences: frames stay float (the official script rounds to uint8 after the resize
and at the output), and the official grayscale-input colour transfer (`is_gray`) is
not applied (the benchmark splits are colour).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from vfr_bench import weights as weight_registry
from vfr_bench.interface import ClipMeta, VideoRestorer
from vfr_bench.methods.face_frames import FACE_SIZE, face_input, face_output

from .arch import CodeFormer

# inference_codeformer.py builds the network with exactly these arguments.
NET_ARGS = dict(dim_embd=512, codebook_size=1024, n_head=8, n_layers=9,
                connect_list=["32", "64", "128", "256"])


@dataclass
class CodeFormerConfig:
    """Parameters of `configs/methods/codeformer.yaml`.

    Attributes:
        w: fidelity weight in [0,1] (official `--fidelity_weight`, default 0.5): 0 keeps the
            pure codebook reconstruction, 1 fuses the input's features most strongly.
        adain: AdaIN of the codebook features to the input latent (the official script: on).
        batch_size: frames per network call (memory only; results do not depend on it).
    """
    w: float = 0.5
    adain: bool = True
    batch_size: int = 4


class CodeFormerRestorer(VideoRestorer):
    """Per-frame CodeFormer on aligned face crops."""
    Config = CodeFormerConfig

    def required_weights(self) -> list[str]:
        return ["codeformer"]

    def build_networks(self) -> dict[str, torch.nn.Module]:
        return {"net": CodeFormer(**NET_ARGS)}

    def load_checkpoints(self, nets: dict[str, torch.nn.Module]) -> None:
        """`params_ema` of codeformer.pth, strict.

        Raises:
            KeyError: the file has no `params_ema` entry (not the official checkpoint).
        """
        nets["net"].load_state_dict(weight_registry.load_entry("codeformer", "params_ema"), strict=True)

    @torch.no_grad()
    def restore(self, lq: torch.Tensor, meta: ClipMeta) -> torch.Tensor:
        """Restore each frame of an aligned face clip.

        Args:
            lq: [T,3,h,w] float32 RGB in [0,1], FFHQ-aligned faces.
            meta: clip information; the output has size `meta.gt_size`.

        Returns:
            [T,3,H,W] float32 RGB in [0,1].
        """
        x = face_input(lq, next(self.net.parameters()).dtype, FACE_SIZE)
        out = torch.cat([self.net(chunk, w=self.config.w, adain=self.config.adain)[0]
                         for chunk in x.split(self.config.batch_size)])
        return face_output(out, meta.gt_size)
