"""VQFR v2 network (checkpoint ``VQFR_v2.pth``, release v2.0.0).

Gu et al., "VQFR: Blind Face Restoration with Vector-Quantized Dictionary and Parallel
Decoder", ECCV 2022; v2 is the official repository's 2.0 update. Re-implemented from the
facts of the official code, https://github.com/TencentARC/VQFR (``vqfr/archs/vqfrv2_arch.py``,
``vqganv2_arch.py`` and the v2 ``L2VectorQuantizer`` of ``quantizer_arch.py``), configured as
``options/test/VQFR/test_vqfr_v2.yml`` (= ``vqfr/demo_util.py`` arch='v2'). Parameter names
and order equal the official state dict, so the checkpoint loads with ``strict=True``.

Differences from v1 that matter: a taming-VQGAN encoder/decoder with attention at the
coarsest level; codes are *predicted* (LayerNorm + Linear logits, argmax; the exact
codebook rows, no nearest-neighbour search, no straight-through arithmetic); the main
branch output is ``texture_feat[Level_1] + fidelity_ratio * branch`` decoded by the
texture decoder's own ``conv_out``, so the branch is independent of the ratio and
``fidelity_ratio=0`` returns exactly the texture image.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks_arch import ResnetBlock, TextureWarpingModule, group_norm, upsample_offset

__all__ = ["VQFRv2"]

_SKIP = "residual_func"  # v2 name of the ResnetBlock 1x1 skip


def _level(i: int) -> str:
    """Official level name of scale index i (resolution 1 / 2**i of the input)."""
    return f"Level_{2 ** i}"


class Downsample(nn.Module):
    """Zero-pad right and bottom by 1, then conv3x3 stride 2 (taming-VQGAN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class Upsample(nn.Module):
    """Nearest x2 (pixel duplication), then conv3x3 (taming-VQGAN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions, logits scaled by C^-0.5, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        b, c, hh, ww = x.shape
        q = self.q(h).reshape(b, c, hh * ww).permute(0, 2, 1)  # [B,N,C]
        k = self.k(h).reshape(b, c, hh * ww)  # [B,C,N]
        v = self.v(h).reshape(b, c, hh * ww)  # [B,C,N]
        attn = torch.softmax(torch.bmm(q, k) * (int(c) ** (-0.5)), dim=2)  # [B,N_query,N_key]
        out = torch.bmm(v, attn.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


def _level_blocks(in_channels: int, channels: int, num_blocks: int, attention: bool) -> list[nn.Module]:
    """ResnetBlock(in->C), then (num_blocks-1) x ResnetBlock(C->C), each followed by
    an AttnBlock when ``attention``."""
    layers: list[nn.Module] = []
    for j in range(num_blocks):
        layers.append(ResnetBlock(in_channels if j == 0 else channels, channels, _SKIP))
        if attention:
            layers.append(AttnBlock(channels))
    return layers


def _mid_blocks(channels: int, attention: bool) -> nn.Sequential:
    middle = [AttnBlock(channels)] if attention else []
    return nn.Sequential(ResnetBlock(channels, channels, _SKIP), *middle, ResnetBlock(channels, channels, _SKIP))


class Encoder(nn.Module):
    """x [B,3,H,W] in [-1,1] -> enc_feat [B,code_dim,H/32,W/32] (official ``VQGANEncoder``)."""

    def __init__(self, channels: Sequence[int], num_blocks: int, use_attention: bool, code_dim: int):
        super().__init__()
        n = len(channels)
        self.conv_in = nn.Conv2d(3, channels[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        for i, c in enumerate(channels):
            prev = channels[max(i - 1, 0)]
            down = [Downsample(prev)] if i > 0 else []
            self.blocks.append(nn.Sequential(*down, *_level_blocks(prev, c, num_blocks,
                                                                   use_attention and i == n - 1)))
        top = channels[-1]
        self.mid_blocks = _mid_blocks(top, use_attention)
        self.conv_out = nn.Sequential(group_norm(top), nn.SiLU(inplace=True),
                                      nn.Conv2d(top, code_dim, kernel_size=3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.blocks:
            x = block(x)
        return self.conv_out(self.mid_blocks(x))


class TextureDecoder(nn.Module):
    """Code features -> image, keeping every level's feature (official ``VQGANDecoder``)."""

    def __init__(self, channels: Sequence[int], num_blocks: int, use_attention: bool, code_dim: int):
        super().__init__()
        n = len(channels)
        top = channels[-1]
        self.level_names = [_level(i) for i in reversed(range(n))]
        self.conv_in = nn.Conv2d(code_dim, top, kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()  # registered before mid_blocks: fixes the key order
        self.mid_blocks = _mid_blocks(top, use_attention)
        for i in reversed(range(n)):
            prev = channels[min(i + 1, n - 1)]
            up = [Upsample(prev)] if i != n - 1 else []
            self.blocks.append(nn.Sequential(*up, *_level_blocks(prev, channels[i], num_blocks,
                                                                 use_attention and i == n - 1)))
        self.conv_out = nn.Sequential(group_norm(channels[0]), nn.SiLU(inplace=True),
                                      nn.Conv2d(channels[0], 3, kernel_size=3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: [B,code_dim,h,w] -> (image [B,3,32h,32w], {level name: feature}, coarse to fine)."""
        x = self.mid_blocks(self.conv_in(x))
        feats = {}
        for name, block in zip(self.level_names, self.blocks):
            x = block(x)
            feats[name] = x
        return self.conv_out(x), feats


class BilinearResize(nn.Module):
    """Parameter-free bilinear resize to 1/rate (align_corners=False, no antialias);
    identity at rate 1 (where the official resize is an exact copy)."""

    def __init__(self, rate: int):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 1:
            return x
        h, w = x.shape[-2:]
        return F.interpolate(x, size=(h // self.rate, w // self.rate), mode="bilinear", align_corners=False)


class MainBranch(nn.Module):
    """Fidelity branch: warps texture features level by level and fuses them.

    Returns the branch feature at Level_1 *before* the fidelity scaling; the caller forms
    ``texture_feat[Level_1] + fidelity_ratio * branch``.

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
        self.align_func_dict = nn.ModuleDict()
        for i in reversed(range(n)):
            c, prev = channels[i], channels[min(i + 1, n - 1)]
            if i != n - 1:
                self.pre_upsample_dict[_level(i)] = nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(prev, c, kernel_size=3, padding=1))
            self.align_func_dict[_level(i)] = TextureWarpingModule(
                c, cond_channels, 0 if i == n - 1 else prev, deformable_groups, cond_resampler=BilinearResize(2 ** i))
            if i != n - 1:
                self.decoder_dict[_level(i)] = ResnetBlock(2 * c, c, _SKIP)

    def forward(self, texture_feats: dict[str, torch.Tensor], cond: torch.Tensor) -> torch.Tensor:
        """texture_feats: level -> [B,C_l,h_l,w_l]; cond: [B,C_cond,H,W] -> [B,C_0,H,W]."""
        x, offset = self.align_func_dict[self.top](texture_feats[self.top], cond)
        for name in self.decoder_dict:
            x = self.pre_upsample_dict[name](x)
            warp, offset = self.align_func_dict[name](texture_feats[name], cond, upsample_offset(offset))
            x = self.decoder_dict[name](torch.cat([x, warp], dim=1))
        return x


class Codebook(nn.Module):
    """The code vectors (official v2 ``L2VectorQuantizer``; only its lookup is used)."""

    def __init__(self, num_code: int, code_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(num_code, code_dim)

    def lookup(self, index: torch.Tensor) -> torch.Tensor:
        """index: [B,h,w] int64 -> code features [B,code_dim,h,w]."""
        return self.embedding(index).permute(0, 3, 1, 2)


class VQFRv2(nn.Module):
    """VQFR v2 with predicted codes (``code_selection_mode='Predict'``, the released model).

    Defaults are the released model (base 64, multipliers 1,2,2,4,4,8 = channels
    64,128,128,256,256,512 from Level_1 to Level_32, attention in encoder and decoder,
    1024 codes of length 256, 32 conditioning channels, 4 DCN groups).

    Args:
        base_channels: channels of the finest level.
        channel_multipliers: per-level multipliers, finest first.
        num_enc_blocks: ResnetBlocks per encoder level.
        use_enc_attention: AttnBlocks at the coarsest encoder level and its middle.
        num_dec_blocks: ResnetBlocks per texture-decoder level.
        use_dec_attention: AttnBlocks at the coarsest decoder level and its middle.
        code_dim: code vector length (= encoder output channels).
        inpfeat_dim: channels of the input conditioning features (the official
            ``align_opt.cond_channels`` must equal it).
        num_code: codebook size.
        deformable_groups: DCN offset groups.
    """

    def __init__(self, base_channels: int = 64, channel_multipliers: Sequence[int] = (1, 2, 2, 4, 4, 8),
                 num_enc_blocks: int = 2, use_enc_attention: bool = True, num_dec_blocks: int = 2,
                 use_dec_attention: bool = True, code_dim: int = 256, inpfeat_dim: int = 32,
                 num_code: int = 1024, deformable_groups: int = 4):
        super().__init__()
        channels = [base_channels * m for m in channel_multipliers]
        self.encoder = Encoder(channels, num_enc_blocks, use_enc_attention, code_dim)
        self.feat2index = nn.Sequential(nn.LayerNorm(code_dim), nn.Linear(code_dim, num_code))
        self.decoder = TextureDecoder(channels, num_dec_blocks, use_dec_attention, code_dim)
        self.main_branch = MainBranch(channels, inpfeat_dim, deformable_groups)
        self.inpfeat_extraction = nn.Conv2d(3, inpfeat_dim, kernel_size=3, padding=1)
        self.quantizer = Codebook(num_code, code_dim)

    def forward(self, x_lq: torch.Tensor, fidelity_ratio: float = 1.0) -> dict[str, torch.Tensor]:
        """Restore aligned faces (official signature and outputs).

        Args:
            x_lq: [B,3,512,512] float RGB in [-1,1] (the official code hard-codes the
                16x16 token grid of a 512 input; here any multiple of 32 works).
            fidelity_ratio: weight of the main branch; 0 gives the texture image.

        Returns:
            Dict in the official order: ``enc_feat`` [B,256,h,w], ``quant_logit``
            [B,h*w,1024] (token n = row * w + col), ``texture_dec`` [B,3,H,W],
            ``main_dec`` [B,3,H,W] (images nominally [-1,1], not clamped).
        """
        out = self.forward_ratios(x_lq, (fidelity_ratio,))
        out["main_dec"] = out["main_dec"][0]
        return out

    def forward_ratios(self, x_lq: torch.Tensor, fidelity_ratios: Sequence[float]) -> dict[str, torch.Tensor]:
        """One network pass, ``main_dec`` for several fidelity ratios.

        The main branch does not depend on the ratio; only the final
        ``conv_out(texture_feat + r * branch)`` is repeated per ratio.

        Args:
            x_lq: [B,3,H,W] float RGB in [-1,1].
            fidelity_ratios: R ratios.

        Returns:
            As :meth:`forward`, but ``main_dec`` is [R,B,3,H,W] in the order of the ratios.
        """
        cond = self.inpfeat_extraction(x_lq)
        enc_feat = self.encoder(x_lq)
        b, _, h, w = enc_feat.shape
        quant_logit = self.feat2index(enc_feat.flatten(2).transpose(1, 2))  # tokens in (h w) order
        quant_feat = self.quantizer.lookup(quant_logit.argmax(-1).view(b, h, w))
        with torch.no_grad():  # as official: the texture decoder is frozen
            texture_dec, texture_feats = self.decoder(quant_feat)
        branch = self.main_branch(texture_feats, cond)
        texture_l1 = texture_feats[_level(0)]
        main_dec = torch.stack([self.decoder.conv_out(texture_l1 + r * branch) for r in fidelity_ratios])
        return {"enc_feat": enc_feat, "quant_logit": quant_logit, "texture_dec": texture_dec, "main_dec": main_dec}
