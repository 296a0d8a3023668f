"""Building blocks shared by VQFR v1 and v2.

VQFR: Gu et al., "VQFR: Blind Face Restoration with Vector-Quantized Dictionary and
Parallel Decoder", ECCV 2022; official code https://github.com/TencentARC/VQFR
(``vqfr/archs/vqganv1_arch.py``, ``vqganv2_arch.py``, ``vqfrv1_arch.py``,
``vqfrv2_arch.py``). Parameter names follow the official modules so that the official
checkpoints load with ``strict=True``.

Every normalisation is GroupNorm with 32 groups, eps 1e-6; every activation SiLU; every
convolution has a bias.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..deform_conv import deform_conv2d

__all__ = ["group_norm", "ResnetBlock", "ModulatedDeformConv", "TextureWarpingModule", "upsample_offset"]


def group_norm(channels: int) -> nn.GroupNorm:
    """The GroupNorm used throughout VQFR (32 groups, eps 1e-6, affine)."""
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """GN -> SiLU -> conv3x3 -> GN -> SiLU -> conv3x3, plus a (1x1-projected) skip.

    The 1x1 skip exists only when ``in_channels != out_channels``. Its parameter name
    differs between the versions: ``shortcut_conv`` in v1, ``residual_func`` in v2.

    Args:
        in_channels: input channels (a multiple of 32).
        out_channels: output channels (a multiple of 32).
        skip_name: attribute name of the 1x1 skip convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, skip_name: str = "shortcut_conv"):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.act = nn.SiLU(inplace=True)  # acts on fresh GN outputs only
        self.skip_name: Optional[str] = skip_name if in_channels != out_channels else None
        if self.skip_name is not None:
            self.add_module(self.skip_name, nn.Conv2d(in_channels, out_channels, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = self.conv2(self.act(self.norm2(h)))
        skip = x if self.skip_name is None else getattr(self, self.skip_name)(x)
        return skip + h


class ModulatedDeformConv(nn.Module):
    """3x3 modulated deformable convolution (DCNv2) whose offsets come from a second input.

    Official ``DCNv2Pack`` (a ``ModulatedDeformConvPack``): ``conv_offset`` maps the
    offset feature to 3 * groups * 9 channels; the first 2/3 are the offsets in
    torchvision's layout (per group g and tap k: dy = 18g + 2k, dx = 18g + 2k + 1), the
    last 1/3 pass through a sigmoid as the modulation masks. The official forward calls
    ``torchvision.ops.deform_conv2d`` (torchvision >= 0.9); we call ``methods.deform_conv``,
    the same op (torchvision's on GPU, a faster equal one on CPU). Its warning when the
    mean |offset| exceeds 50 only logs and is omitted.

    Args:
        channels: input = output channels of the deformable convolution.
        offset_channels: channels of the feature that predicts offsets and masks.
        deformable_groups: offset groups (input channels split into contiguous groups).
    """

    def __init__(self, channels: int, offset_channels: int, deformable_groups: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.conv_offset = nn.Conv2d(offset_channels, deformable_groups * 3 * 9, kernel_size=3, padding=1)
        self.num_offsets = deformable_groups * 2 * 9

    def forward(self, x: torch.Tensor, offset_feat: torch.Tensor) -> torch.Tensor:
        """x: [B,C,H,W] feature to warp; offset_feat: [B,C_off,H,W] -> [B,C,H,W]."""
        raw = self.conv_offset(offset_feat)
        offset = raw[:, : self.num_offsets]
        mask = torch.sigmoid(raw[:, self.num_offsets:])
        return deform_conv2d(x, offset, self.weight, self.bias, padding=(1, 1), mask=mask)


class TextureWarpingModule(nn.Module):
    """Texture warping module (TWM) of the main (fidelity) decoder.

    Predicts deformable offsets from the conditioning features of the degraded input
    (concatenated first) and the texture-decoder feature, refines them with the upsampled
    offset feature of the coarser level, and warps the texture feature with a modulated
    DCN. Returns the warped feature and the offset *feature* (passed on to the next level).

    Args:
        channels: channels C of the texture feature at this level.
        cond_channels: channels of the conditioning features.
        previous_offset_channels: channels of the upsampled offset feature from the
            coarser level (0 at the coarsest level).
        deformable_groups: DCN offset groups.
        cond_resampler: maps the full-resolution conditioning features to this level's
            resolution; v1 uses a learned bilinear-resize+conv (official key
            ``downsample.conv``), v2 a parameter-free bilinear resize.
    """

    def __init__(self, channels: int, cond_channels: int, previous_offset_channels: int,
                 deformable_groups: int, cond_resampler: nn.Module):
        super().__init__()
        self.downsample = cond_resampler
        self.offset_conv1 = nn.Sequential(
            nn.Conv2d(channels + cond_channels, channels, kernel_size=1),
            group_norm(channels), nn.SiLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=7, padding=3, groups=channels),  # depthwise 7x7
            group_norm(channels), nn.SiLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=1))
        self.offset_conv2 = nn.Sequential(
            nn.Conv2d(channels + previous_offset_channels, channels, kernel_size=3, padding=1),
            group_norm(channels), nn.SiLU(inplace=True))
        self.dcn = ModulatedDeformConv(channels, channels, deformable_groups)

    def forward(self, x_main: torch.Tensor, cond: torch.Tensor,
                previous_offset: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp one level.

        Args:
            x_main: [B,C,h,w] texture-decoder feature of this level.
            cond: [B,C_cond,H,W] full-resolution conditioning features.
            previous_offset: [B,C_prev,h,w] upsampled (and doubled) offset feature of the
                coarser level, or None at the coarsest level.

        Returns:
            (warped feature [B,C,h,w], offset feature [B,C,h,w]).
        """
        offset_feat = self.offset_conv1(torch.cat([self.downsample(cond), x_main], dim=1))
        if previous_offset is not None:
            offset_feat = torch.cat([offset_feat, previous_offset], dim=1)
        offset_feat = self.offset_conv2(offset_feat)
        return self.dcn(x_main, offset_feat), offset_feat


def upsample_offset(offset_feat: torch.Tensor) -> torch.Tensor:
    """Offset feature of a coarser level brought to the next level: bilinear x2, times 2."""
    return F.interpolate(offset_feat, scale_factor=2, mode="bilinear", align_corners=False) * 2
