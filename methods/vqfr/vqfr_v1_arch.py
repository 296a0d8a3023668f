"""VQFR v1 network (checkpoint ``VQFR_v1-33a1fac5.pth``).

Gu et al., "VQFR: Blind Face Restoration with Vector-Quantized Dictionary and Parallel
Decoder", ECCV 2022. Re-implemented from the facts of the official code,
https://github.com/TencentARC/VQFR (``vqfr/archs/vqfrv1_arch.py``, ``vqganv1_arch.py`` and
the ``L2VectorQuantizerKmeans`` of ``quantizer_arch.py``), configured as
``options/test/VQFR/test_vqfr_v1.yml``. Parameter names and order equal the official
state dict, so the checkpoint loads with ``strict=True``.

Structure (level ``Level_k`` has resolution 512 / k for a 512 input):

* encoder: conv_in, then per level an optional bilinear-down+conv and ResnetBlocks,
  ending with GN -> SiLU -> conv at Level_32;
* quantizer: 1x1 conv to the code dimension, nearest codebook entry (squared L2 in the
  expanded form, straight-through value ``z + (e - z)``), 1x1 conv back;
* texture decoder: per level conv+bilinear-up and ResnetBlocks; image ``dec``;
* main decoder: texture warping modules (deformable alignment conditioned on
  features of the input) from Level_32 to Level_1, output conv sees the input
  image too; image ``main_dec`` (what the demo saves).

The official demo (``vqfr/demo_util.py``, arch='v1') names the quantizer type
``L2VectorQuantizer``, which since the v2 update is the v2 class and crashes (upstream
issue #28); the class that fits the v1 checkpoint is the one re-implemented here.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks_arch import ResnetBlock, TextureWarpingModule, group_norm, upsample_offset

__all__ = ["VQFRv1"]


def _level(i: int) -> str:
    """Official level name of scale index i (resolution 1 / 2**i of the input)."""
    return f"Level_{2 ** i}"


class BilinearDownConv(nn.Module):
    """Bilinear resize to 1/rate (align_corners=False, no antialias), then conv3x3.

    Identity (and no parameters) at rate 1. Official ``UpDownSample(direction='down')``.
    """

    def __init__(self, in_channels: int, out_channels: int, rate: int):
        super().__init__()
        self.rate = rate
        if rate != 1:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 1:
            return x
        h, w = x.shape[-2:]
        x = F.interpolate(x, size=(int(h / self.rate), int(w / self.rate)), mode="bilinear", align_corners=False)
        return self.conv(x)


class ConvBilinearUp(nn.Module):
    """conv3x3, then bilinear resize by ``rate`` (align_corners=False).

    Identity (and no parameters) at rate 1. Official ``UpDownSample(direction='up')``.
    """

    def __init__(self, in_channels: int, out_channels: int, rate: int):
        super().__init__()
        self.rate = rate
        if rate != 1:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 1:
            return x
        h, w = x.shape[-2:]
        return F.interpolate(self.conv(x), size=(self.rate * h, self.rate * w), mode="bilinear",
                             align_corners=False)


class Encoder(nn.Module):
    """x [B,3,H,W] in [-1,1] -> [B,C_top,H/2^(L-1),W/2^(L-1)] (official ``VQGANEncoder``)."""

    def __init__(self, channels: Sequence[int], num_blocks: int):
        super().__init__()
        self.top = _level(len(channels) - 1)
        self.conv_in = nn.Conv2d(3, channels[0], kernel_size=3, padding=1)
        self.encoder_dict = nn.ModuleDict()
        self.pre_downsample_dict = nn.ModuleDict()
        for i, c in enumerate(channels):
            self.encoder_dict[_level(i)] = nn.Sequential(*[ResnetBlock(c, c) for _ in range(num_blocks)])
            self.pre_downsample_dict[_level(i)] = BilinearDownConv(channels[max(i - 1, 0)], c, 1 if i == 0 else 2)
        top = channels[-1]
        self.enc_convout_dict = nn.ModuleDict({
            self.top: nn.Sequential(group_norm(top), nn.SiLU(inplace=True),
                                    nn.Conv2d(top, top, kernel_size=3, padding=1))})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for name in self.encoder_dict:
            x = self.encoder_dict[name](self.pre_downsample_dict[name](x))
        return self.enc_convout_dict[self.top](x)


class NearestCodeQuantizer(nn.Module):
    """quant_conv -> nearest codebook row (straight-through value) -> post_quant_conv.

    Official ``L2VectorQuantizerKmeans`` at inference (its k-means re-estimation, usage
    counter and reservoir are training-only and hold no state-dict entries).

    Args:
        in_dim: channels of the encoder feature.
        num_code: codebook size.
        code_dim: code vector length.
    """

    def __init__(self, in_dim: int, num_code: int, code_dim: int):
        super().__init__()
        self.quant_conv = nn.Conv2d(in_dim, code_dim, kernel_size=1)
        self.post_quant_conv = nn.Conv2d(code_dim, in_dim, kernel_size=1)
        self.embedding = nn.Embedding(num_code, code_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: [B,in_dim,h,w] -> [B,in_dim,h,w]; the codebook lookup gets indices [B*h*w]
        in (b, h, w) order."""
        z_conv = self.quant_conv(z)
        b, c, h, w = z_conv.shape
        tokens = z_conv.permute(0, 2, 3, 1).reshape(-1, c)
        codebook = self.embedding.weight
        # squared distance in the expanded form, exactly as the official code
        distance = (torch.sum(tokens ** 2, dim=1, keepdim=True) + torch.sum(codebook ** 2, dim=1)
                    - 2 * torch.einsum("b c, d c -> b d", tokens, codebook))
        nearest = self.embedding(torch.argmin(distance, dim=1))
        z_q = tokens + (nearest - tokens).detach()  # straight-through value, bitwise as official
        z_q = z_q.view(b, h, w, c).permute(0, 3, 1, 2).contiguous()
        return self.post_quant_conv(z_q)


class Quantizer(nn.Module):
    """Holds the one quantized level under the official key ``quantize_dict.<level>``."""

    def __init__(self, level: str, in_dim: int, num_code: int, code_dim: int):
        super().__init__()
        self.level = level
        self.quantize_dict = nn.ModuleDict({level: NearestCodeQuantizer(in_dim, num_code, code_dim)})

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.quantize_dict[self.level](z)


class TextureDecoder(nn.Module):
    """Quantized feature -> image, keeping every level's feature (official ``VQGANDecoder``)."""

    def __init__(self, channels: Sequence[int], num_blocks: int):
        super().__init__()
        n = len(channels)
        self.decoder_dict = nn.ModuleDict()
        self.pre_upsample_dict = nn.ModuleDict()
        for i in reversed(range(n)):
            c = channels[i]
            self.decoder_dict[_level(i)] = nn.Sequential(*[ResnetBlock(c, c) for _ in range(num_blocks)])
            self.pre_upsample_dict[_level(i)] = ConvBilinearUp(channels[min(i + 1, n - 1)], c,
                                                               1 if i == n - 1 else 2)
        self.conv_out = nn.Sequential(group_norm(channels[0]), nn.SiLU(inplace=True),
                                      nn.Conv2d(channels[0], 3, kernel_size=3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: [B,C_top,h,w] -> (image [B,3,H,W], {level name: feature}, coarse to fine)."""
        feats = {}
        for name in self.decoder_dict:
            x = self.decoder_dict[name](self.pre_upsample_dict[name](x))
            feats[name] = x
        return self.conv_out(x), feats


class MainDecoder(nn.Module):
    """Fidelity branch: warps texture features level by level, fuses them, sees the input.

    Args:
        channels: channels per level, finest first.
        cond_channels: channels of the input conditioning features.
        deformable_groups: DCN offset groups.
    """

    def __init__(self, channels: Sequence[int], cond_channels: int, deformable_groups: int):
        super().__init__()
        n = len(channels)
        self.top = _level(n - 1)
        self.decoder_dict = nn.ModuleDict()
        self.pre_upsample_dict = nn.ModuleDict()
        for i in reversed(range(n - 1)):
            self.decoder_dict[_level(i)] = ResnetBlock(2 * channels[i], channels[i])
            self.pre_upsample_dict[_level(i)] = ConvBilinearUp(channels[i + 1], channels[i], 2)
        self.align_func_dict = nn.ModuleDict()
        for i in reversed(range(n)):
            self.align_func_dict[_level(i)] = TextureWarpingModule(
                channels[i], cond_channels, 0 if i == n - 1 else channels[i + 1], deformable_groups,
                cond_resampler=BilinearDownConv(cond_channels, cond_channels, 2 ** i))
        self.conv_out_1 = nn.Sequential(group_norm(channels[0]), nn.SiLU(inplace=True))
        self.conv_out = nn.Sequential(nn.Conv2d(channels[0] + 3, 3, kernel_size=3, padding=1))

    def forward(self, texture_feats: dict[str, torch.Tensor], cond: torch.Tensor,
                x_lq: torch.Tensor) -> torch.Tensor:
        """texture_feats: level -> [B,C_l,h_l,w_l]; cond: [B,C_cond,H,W]; x_lq: [B,3,H,W]
        -> main_dec [B,3,H,W]."""
        x, offset = self.align_func_dict[self.top](texture_feats[self.top], cond)
        for name in self.decoder_dict:
            x = self.pre_upsample_dict[name](x)
            warp, offset = self.align_func_dict[name](texture_feats[name], cond, upsample_offset(offset))
            x = self.decoder_dict[name](torch.cat([x, warp], dim=1))
        x = self.conv_out_1(x)
        return self.conv_out(torch.cat([x, x_lq], dim=1))


class InputFeatureConv(nn.Module):
    """conv3x3 on the input image: the conditioning features of the warping modules."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class VQFRv1(nn.Module):
    """VQFR v1: VQ codebook texture decoder plus a parallel deformable main decoder.

    Defaults are the released model (``test_vqfr_v1.yml``: base 128, multipliers
    1,1,2,2,2,4, i.e. channels 128,128,256,256,256,512 from Level_1 to Level_32). The
    official per-level options it fixes: down/upsampling by 2 at every level but the
    finest (encoder) / coarsest (decoder); only Level_32 quantized; warping modules at
    every level, conditioned on ``inpfeat_dim`` channels resized to each level.

    Args:
        base_channels: channels of the finest level.
        channel_multipliers: per-level multipliers, finest first (6 levels -> Level_32).
        encoder_num_blocks: ResnetBlocks per encoder level.
        decoder_num_blocks: ResnetBlocks per texture-decoder level.
        inpfeat_dim: channels of the input conditioning features.
        num_code: codebook size.
        code_dim: code vector length.
        deformable_groups: DCN offset groups.
    """

    def __init__(self, base_channels: int = 128, channel_multipliers: Sequence[int] = (1, 1, 2, 2, 2, 4),
                 encoder_num_blocks: int = 2, decoder_num_blocks: int = 3, inpfeat_dim: int = 32,
                 num_code: int = 1024, code_dim: int = 256, deformable_groups: int = 4):
        super().__init__()
        channels = [base_channels * m for m in channel_multipliers]
        self.inpfeat_extraction = InputFeatureConv(3, inpfeat_dim)
        self.encoder = Encoder(channels, encoder_num_blocks)
        self.decoder = TextureDecoder(channels, decoder_num_blocks)
        self.main_decoder = MainDecoder(channels, inpfeat_dim, deformable_groups)
        self.quantizer = Quantizer(_level(len(channels) - 1), channels[-1], num_code, code_dim)

    def forward(self, x_lq: torch.Tensor, fidelity_ratio: Optional[float] = None) -> dict[str, torch.Tensor]:
        """Restore aligned faces.

        Args:
            x_lq: [B,3,H,W] float RGB in [-1,1], H and W multiples of 32 (512 as trained).
            fidelity_ratio: accepted for a common call with v2 and ignored, as in the
                official v1.

        Returns:
            ``{'dec': texture-branch image, 'main_dec': main-branch image}``, both
            [B,3,H,W] RGB, nominally [-1,1] (not clamped). The demo saves ``main_dec``.
        """
        cond = self.inpfeat_extraction(x_lq)
        quant = self.quantizer(self.encoder(x_lq))
        dec, texture_feats = self.decoder(quant)
        main_dec = self.main_decoder(texture_feats, cond, x_lq)
        return {"dec": dec, "main_dec": main_dec}
