"""KEEP's cross-frame fusion of generator features (current frame attends to the stored one).

KEEP: Feng, Li, Loy, ECCV 2024; official code https://github.com/jnjaby/KEEP
(``basicsr/archs/keep_arch.py``: ``CrossFrameFusionLayer``). Own re-implementation with the
official parameter names. Note the **post-branch** LayerNorm (norm after the attention and
after the feed-forward, before each residual add), unlike the usual pre-norm transformer.
"""
from __future__ import annotations

from torch import Tensor, nn

from .attention_arch import Attention, FeedForward

__all__ = ["CrossFrameFusionLayer"]


class CrossFrameFusionLayer(nn.Module):
    """x <- x + LN1(Attn(x, prev)); x <- x + LN2(FF(x)) on row-major tokens of a feature map.

    Args:
        dim: feature channels (512 at 16x16, 256 at 32x32).
        num_attention_heads: heads (4).
        attention_head_dim: width per head (256; inner width heads * 256).
    """

    def __init__(self, dim: int, num_attention_heads: int = 4, attention_head_dim: int = 256):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)
        self.attn = Attention(dim, num_attention_heads, attention_head_dim)

    def forward(self, curr: Tensor, prev: Tensor, residual: bool = True) -> Tensor:
        """Fuse the stored feature of the previous frame into the current one.

        Args:
            curr: [B,C,H,W] current generator feature.
            prev: [B,C,H,W] stored (fused) feature of the previous frame.
            residual: keep the residual connections (KEEP uses True).

        Returns:
            [B,C,H,W].
        """
        b, c, h, w = curr.shape
        x = curr.flatten(2).transpose(1, 2)  # [B, HW, C]
        p = prev.flatten(2).transpose(1, 2)
        y = self.norm1(self.attn(x, p))
        x = x + y if residual else y
        y = self.norm2(self.ff(x))
        x = x + y if residual else y
        return x.transpose(1, 2).reshape(b, c, h, w)
