"""CodeFormer's code-prediction transformer layer and encoder->decoder SFT fusion.

CodeFormer: Zhou, Chan, Li, Loy, "Towards Robust Blind Face Restoration with Codebook
Lookup Transformer", NeurIPS 2022; official code: github.com/sczhou/CodeFormer
(`basicsr/archs/codeformer_arch.py`: `TransformerSALayer`, `Fuse_sft_block`). Own
re-implementation with the official state-dict keys; KEEP and DicFace reuse both.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .vqgan_arch import ResBlock

__all__ = ["TransformerSALayer", "FuseSFTBlock"]


class TransformerSALayer(nn.Module):
    """Pre-norm self-attention layer with a learned position embedding on queries and keys.

    x <- x + MHA(q = k = LN1(x) + pos, v = LN1(x));  x <- x + Lin2(GELU(Lin1(LN2(x)))).
    `nn.MultiheadAttention` is sequence-first with a packed in_proj (keys `self_attn.*`);
    LayerNorm eps 1e-5; GELU is the exact (erf) form. CodeFormer, KEEP and DicFace use
    dim_mlp = 2 * embed_dim (the official class default of 2048 is never used by them).

    Args:
        embed_dim: token width.
        nhead: attention heads.
        dim_mlp: hidden width of the feed-forward network.
        dropout: dropout in attention and FFN (training only; the official nets use 0.0 or 0.1).
    """

    def __init__(self, embed_dim: int, nhead: int = 8, dim_mlp: int = 2048, dropout: float = 0.0):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dim, nhead, dropout=dropout)
        self.linear1 = nn.Linear(embed_dim, dim_mlp)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_mlp, embed_dim)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: Tensor, query_pos: Optional[Tensor] = None) -> Tensor:
        """One layer.

        Args:
            x: [L,N,E] tokens, sequence first (L tokens, N batch).
            query_pos: [L,N,E] or [L,1,E] position embedding added to q and k, or None.

        Returns:
            [L,N,E].
        """
        h = self.norm1(x)
        qk = h if query_pos is None else h + query_pos
        h = self.self_attn(qk, qk, value=h, need_weights=False)[0]
        x = x + self.dropout1(h)
        h = self.linear2(self.dropout(F.gelu(self.linear1(self.norm2(x)))))
        return x + self.dropout2(h)


class FuseSFTBlock(nn.Module):
    """Controllable feature transformation (official `Fuse_sft_block`).

    h = ResBlock(2C->C)(cat[enc, dec]); scale, shift = conv3-LReLU(0.2)-conv3 (h);
    out = dec + w * (dec * scale + shift). Keys `encode_enc.*`, `scale.{0,2}.*`,
    `shift.{0,2}.*`.

    Args:
        in_ch: channels of the encoder and decoder features.
        out_ch: output channels (the official nets use in_ch).
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.encode_enc = ResBlock(2 * in_ch, out_ch)
        self.scale = nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1),
                                   nn.LeakyReLU(0.2),
                                   nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1))
        self.shift = nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1),
                                   nn.LeakyReLU(0.2),
                                   nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1))

    def forward(self, enc_feat: Tensor, dec_feat: Tensor, w: float = 1.0) -> Tensor:
        """Fuse an encoder skip feature into a generator feature.

        Args:
            enc_feat: [B,C,s,s] encoder feature.
            dec_feat: [B,C,s,s] generator feature.
            w: fidelity weight (0 = pure codebook output, 1 = strongest fusion).

        Returns:
            [B,C,s,s].
        """
        h = self.encode_enc(torch.cat([enc_feat, dec_feat], dim=1))
        return dec_feat + w * (dec_feat * self.scale(h) + self.shift(h))
