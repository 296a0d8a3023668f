"""DicFace's multi-scale fusion of encoder features into the transformer input.

DicFace (Chen et al., ICCV 2025; official repo fudan-generative-vision/DicFace,
``MultiScaleFuse`` in ``basicsr/archs/dir_dist_codeformer_multiscale_arch.py``): the encoder
features at 4x and 2x the latent size are folded into the latent grid by space-to-depth
(``F.pixel_unshuffle``: channel first, then row offset, then column offset), each projected
by a 1x1 conv, concatenated with the projected latent in the order [4x, 2x, 1x] and mixed by
a 3x3 conv.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiScaleFuse(nn.Module):
    """Fuse [4x, 2x, 1x]-resolution encoder features into one latent-sized map.

    Keys ``s64_conv``, ``s32_conv``, ``s16_conv``, ``out`` (named after the official
    512-input sizes 64, 32, 16).

    Args:
        ch_4x: channels of the feature at 4x the latent size (256 officially).
        ch_2x: channels of the feature at 2x the latent size (256).
        ch_1x: channels of the encoder latent (256).
        out_ch: output channels (256, the codebook width).
    """

    def __init__(self, ch_4x: int = 256, ch_2x: int = 256, ch_1x: int = 256, out_ch: int = 256):
        super().__init__()
        self.s64_conv = nn.Conv2d(ch_4x * 16, out_ch, kernel_size=1)
        self.s32_conv = nn.Conv2d(ch_2x * 4, out_ch, kernel_size=1)
        self.s16_conv = nn.Conv2d(ch_1x, out_ch, kernel_size=1)
        self.out = nn.Conv2d(out_ch * 3, out_ch, kernel_size=3, padding=1)

    def forward(self, s64: Tensor, s32: Tensor, s16: Tensor) -> Tensor:
        """Fuse.

        Args:
            s64: [N,ch_4x,4h,4w] encoder feature (64x64 for 512 input).
            s32: [N,ch_2x,2h,2w] encoder feature (32x32).
            s16: [N,ch_1x,h,w] encoder latent (16x16).

        Returns:
            [N,out_ch,h,w] the transformer input feature (``lq_feat``).
        """
        f64 = self.s64_conv(F.pixel_unshuffle(s64, 4))
        f32 = self.s32_conv(F.pixel_unshuffle(s32, 2))
        f16 = self.s16_conv(s16)
        return self.out(torch.cat([f64, f32, f16], dim=1))
