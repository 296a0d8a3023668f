"""VQGAN building blocks of CodeFormer, shared by CodeFormer, KEEP and DicFace.

CodeFormer: Zhou, Chan, Li, Loy, "Towards Robust Blind Face Restoration with Codebook
Lookup Transformer", NeurIPS 2022; official code: github.com/sczhou/CodeFormer
(`basicsr/archs/vqgan_arch.py`, itself adapted from Unleashing Transformers). This is a
re-implementation with the official state-dict key names (`encoder.blocks.N.*`,
`quantize.embedding.weight`, `generator.blocks.N.*`), so official checkpoints load
with strict=True.

The encoder and generator are flat `blocks` ModuleLists, as in the official code. The
methods built on this VQGAN tap the encoder after some blocks (skip features) and
modify the generator's feature after others (SFT fusion); `Encoder.forward(x, keep=...)`
and `Generator.forward(x, fuse=...)` do that without copying the block loop.
`ENCODER_SKIP_BLOCK` / `GENERATOR_FUSE_BLOCK` give CodeFormer's tap points by feature
size; KEEP and DicFace use the same ones for their own subsets of sizes.

Every module follows the dtype of its weights (float64 works; no float32 islands).
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ENCODER_SKIP_BLOCK", "GENERATOR_FUSE_BLOCK", "Normalize", "swish", "ResBlock", "AttnBlock",
    "Downsample", "Upsample", "Encoder", "Generator", "VectorQuantizer", "VQAutoEncoder",
]

# Official CodeFormer tap points for the default 512 / ch_mult (1,2,2,4,4,8) VQGAN, keyed by
# feature size. Encoder: after the second ResBlock of a level (> 16), before the attention
# block at 16. Generator: after the first ResBlock of a level (i.e. after the upsample).
ENCODER_SKIP_BLOCK: dict[str, int] = {"512": 2, "256": 5, "128": 8, "64": 11, "32": 14, "16": 18}
GENERATOR_FUSE_BLOCK: dict[str, int] = {"16": 6, "32": 9, "64": 12, "128": 15, "256": 18, "512": 21}


class Normalize(nn.GroupNorm):
    """VQGAN normalisation: GroupNorm with 32 groups, eps 1e-6, affine (keys weight, bias)."""

    def __init__(self, channels: int):
        super().__init__(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


def swish(x: Tensor) -> Tensor:
    """x * sigmoid(x) (SiLU)."""
    return x * torch.sigmoid(x)


class ResBlock(nn.Module):
    """GN-swish-conv3-GN-swish-conv3 plus identity, or a 1x1 `conv_out` when channels change.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: in_channels).
    """

    def __init__(self, in_channels: int, out_channels: Optional[int] = None):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = Normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = Normalize(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        if in_channels != out_channels:
            self.conv_out = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        if self.in_channels != self.out_channels:
            x = self.conv_out(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention on GN features, 1x1 q/k/v/proj_out, residual.

    Scale is channels^-0.5; softmax over the key positions.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.in_channels = channels
        self.norm = Normalize(channels)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x)
        b, c, hh, ww = x.shape
        q = self.q(h).reshape(b, c, hh * ww).transpose(1, 2)  # [B, HW, C]
        k = self.k(h).reshape(b, c, hh * ww)                  # [B, C, HW]
        v = self.v(h).reshape(b, c, hh * ww)                  # [B, C, HW]
        attn = torch.softmax(torch.bmm(q, k) * (c ** -0.5), dim=2)  # [B, HW_q, HW_k]
        h = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class Downsample(nn.Module):
    """Zero-pad right and bottom by 1, then 3x3 conv with stride 2 and no padding."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Nearest x2 upsampling, then 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Encoder(nn.Module):
    """VQGAN encoder: image -> latent at 1/2^(len(ch_mult)-1) resolution.

    Block layout for the defaults (index: block): 0 conv 3->64; 1-2 RB 64; 3 Down;
    4-5 RB 64->128,128; 6 Down; 7-8 RB 128; 9 Down; 10-11 RB 128->256,256; 12 Down;
    13-14 RB 256; 15 Down; 16 RB 256->512, 17 Attn, 18 RB, 19 Attn; 20 RB, 21 Attn,
    22 RB; 23 GN; 24 conv 512->256 (no swish between the last GN and conv).

    Args:
        in_channels: image channels.
        nf: base width.
        emb_dim: latent channels.
        ch_mult: width multipliers per level.
        num_res_blocks: ResBlocks per level.
        resolution: input size the attention resolutions refer to.
        attn_resolutions: feature sizes that get an AttnBlock after each ResBlock.
    """

    def __init__(self, in_channels: int = 3, nf: int = 64, emb_dim: int = 256,
                 ch_mult: Sequence[int] = (1, 2, 2, 4, 4, 8), num_res_blocks: int = 2,
                 resolution: int = 512, attn_resolutions: Sequence[int] = (16,)):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, nf, kernel_size=3, padding=1)]
        in_ch_mult = (1,) + tuple(ch_mult)
        res = resolution
        ch = nf
        for level, mult in enumerate(ch_mult):
            ch, out_ch = nf * in_ch_mult[level], nf * mult
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(ch, out_ch))
                ch = out_ch
                if res in attn_resolutions:
                    blocks.append(AttnBlock(ch))
            if level != len(ch_mult) - 1:
                blocks.append(Downsample(ch))
                res //= 2
        blocks += [ResBlock(ch, ch), AttnBlock(ch), ResBlock(ch, ch),  # non-local middle
                   Normalize(ch), nn.Conv2d(ch, emb_dim, kernel_size=3, padding=1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, keep: Optional[Iterable[int]] = None):
        """Encode, optionally keeping the outputs of some blocks.

        Args:
            x: [B,3,H,W] float image in [-1,1] RGB (H = W = 512 for the official nets).
            keep: block indices whose outputs to return (e.g. `ENCODER_SKIP_BLOCK["32"]`).

        Returns:
            The latent [B,emb_dim,H/32,W/32] when `keep` is None; otherwise the tuple
            (latent, {block index: that block's output}).
        """
        keep_set = None if keep is None else set(keep)
        feats: dict[int, Tensor] = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if keep_set is not None and i in keep_set:
                feats[i] = x
        return x if keep_set is None else (x, feats)


class Generator(nn.Module):
    """VQGAN decoder ("generator"): latent -> image, with optional fusion after chosen blocks.

    Block layout for the defaults: 0 conv 256->512; 1 RB, 2 Attn, 3 RB (middle); 4 RB,
    5 Attn, 6 RB, 7 Attn, 8 Up; 9 RB 512->256, 10 RB, 11 Up; 12-13 RB 256, 14 Up;
    15 RB 256->128, 16 RB, 17 Up; 18-19 RB 128, 20 Up; 21 RB 128->64, 22 RB; 23 GN;
    24 conv 64->3. No tanh, no clamp.

    Args:
        nf: base width.
        emb_dim: latent channels.
        ch_mult: width multipliers per level (as for the encoder).
        res_blocks: ResBlocks per level.
        img_size: output size the attention resolutions refer to.
        attn_resolutions: feature sizes that get an AttnBlock after each ResBlock.
    """

    def __init__(self, nf: int = 64, emb_dim: int = 256, ch_mult: Sequence[int] = (1, 2, 2, 4, 4, 8),
                 res_blocks: int = 2, img_size: int = 512, attn_resolutions: Sequence[int] = (16,)):
        super().__init__()
        ch = nf * ch_mult[-1]
        res = img_size // 2 ** (len(ch_mult) - 1)
        blocks: list[nn.Module] = [nn.Conv2d(emb_dim, ch, kernel_size=3, padding=1),
                                   ResBlock(ch, ch), AttnBlock(ch), ResBlock(ch, ch)]
        for level in reversed(range(len(ch_mult))):
            out_ch = nf * ch_mult[level]
            for _ in range(res_blocks):
                blocks.append(ResBlock(ch, out_ch))
                ch = out_ch
                if res in attn_resolutions:
                    blocks.append(AttnBlock(ch))
            if level != 0:
                blocks.append(Upsample(ch))
                res *= 2
        blocks += [Normalize(ch), nn.Conv2d(ch, 3, kernel_size=3, padding=1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor,
                fuse: Optional[Mapping[int, Callable[[Tensor], Tensor]]] = None) -> Tensor:
        """Decode; after block i, replace the feature by `fuse[i](feature)` when given.

        Args:
            x: [B,emb_dim,h,w] latent (codebook features).
            fuse: block index -> function of the block's output [B,C,s,s] returning the
                feature to continue with (e.g. an SFT fusion with an encoder skip feature,
                `GENERATOR_FUSE_BLOCK["32"]` -> ...).

        Returns:
            [B,3,H,W] image, nominally [-1,1] (not clamped).
        """
        for i, block in enumerate(self.blocks):
            x = block(x)
            if fuse is not None and i in fuse:
                x = fuse[i](x)
        return x


class VectorQuantizer(nn.Module):
    """The VQGAN codebook (`embedding`, [codebook_size, emb_dim]) and its exact lookup.

    Args:
        codebook_size: number of codes.
        emb_dim: code dimension.
    """

    def __init__(self, codebook_size: int = 1024, emb_dim: int = 256):
        super().__init__()
        self.codebook_size, self.emb_dim = codebook_size, emb_dim
        self.embedding = nn.Embedding(codebook_size, emb_dim)

    def get_codebook_feat(self, indices: Tensor, shape: Optional[Sequence[int]] = None) -> Tensor:
        """Codebook rows for `indices` (a row gather: exact, in the codebook's dtype).

        The official code multiplies a float32 one-hot matrix with the codebook, which is
        the same row selection but fails in float64.

        Args:
            indices: int64 code indices, any shape with N elements, row-major token order.
            shape: (B, h, w, C) with B*h*w = N; the result is then laid out [B,C,h,w].

        Returns:
            [N, C] rows, or [B,C,h,w] when `shape` is given.
        """
        z_q = self.embedding.weight[indices.reshape(-1)]
        if shape is not None:
            z_q = z_q.view(*shape).permute(0, 3, 1, 2).contiguous()
        return z_q


class VQAutoEncoder(nn.Module):
    """Container of `encoder`, `quantize`, `generator` in the official order.

    CodeFormer (and the methods derived from it) subclass this, so their state dicts
    start with these keys as the official ones do (parameters set directly on the
    subclass, such as `position_emb`, come first in any case).

    Args:
        img_size: image size.
        nf: base width.
        ch_mult: width multipliers per level.
        res_blocks: ResBlocks per level.
        attn_resolutions: feature sizes with attention blocks.
        codebook_size: number of codes.
        emb_dim: latent / code dimension.
    """

    def __init__(self, img_size: int = 512, nf: int = 64, ch_mult: Sequence[int] = (1, 2, 2, 4, 4, 8),
                 res_blocks: int = 2, attn_resolutions: Sequence[int] = (16,),
                 codebook_size: int = 1024, emb_dim: int = 256):
        super().__init__()
        self.encoder = Encoder(3, nf, emb_dim, ch_mult, res_blocks, img_size, attn_resolutions)
        self.quantize = VectorQuantizer(codebook_size, emb_dim)
        self.generator = Generator(nf, emb_dim, ch_mult, res_blocks, img_size, attn_resolutions)
