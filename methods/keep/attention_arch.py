"""Token attention and GEGLU feed-forward with the diffusers 0.11 layout that KEEP uses.

KEEP (Feng, Li, Loy, "Kalman-Inspired Feature Propagation for Video Face Super-Resolution",
ECCV 2024, https://github.com/jnjaby/KEEP) builds its Kalman uncertainty blocks and its
cross-frame fusion from ``diffusers.models.attention.CrossAttention`` and ``FeedForward``
(diffusers 0.11.0). These are own re-implementations with the same parameter names
(``to_q``, ``to_k``, ``to_v``, ``to_out.0``; ``net.0.proj``, ``net.2``) and the same math:
scores = dim_head^-0.5 * q k^T, softmax in the working dtype, no q/k/v bias, output bias.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Attention", "GEGLU", "FeedForward", "multihead_attention"]


def multihead_attention(q: Tensor, k: Tensor, v: Tensor, heads: int) -> Tensor:
    """Scaled dot-product attention over the token axis.

    Args:
        q: [N, Lq, heads*d]; k, v: [N, Lk, heads*d].

    Returns:
        [N, Lq, heads*d], heads concatenated in order.
    """
    n, lq, inner = q.shape
    d = inner // heads
    split = lambda t: t.reshape(n, t.shape[1], heads, d).transpose(1, 2)  # noqa: E731  [N,h,L,d]
    q, k, v = split(q), split(k), split(v)
    probs = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * d ** -0.5, dim=-1)
    return torch.matmul(probs, v).transpose(1, 2).reshape(n, lq, inner)


class Attention(nn.Module):
    """Multi-head attention of queries on a context (self-attention when no context is given).

    Args:
        query_dim: token width.
        heads: number of heads.
        dim_head: width per head (inner width heads * dim_head).
    """

    def __init__(self, query_dim: int, heads: int = 8, dim_head: int = 64):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(query_dim, inner, bias=False)
        self.to_v = nn.Linear(query_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(0.0)])

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Args: x: [N, Lq, C]; context: [N, Lk, C] or None (= x). Returns [N, Lq, C]."""
        context = x if context is None else context
        out = multihead_attention(self.to_q(x), self.to_k(context), self.to_v(context), self.heads)
        return self.to_out[0](out)


class GEGLU(nn.Module):
    """Linear to 2*inner; first half times exact GELU of the second half."""

    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward dim -> mult*dim -> dim (keys ``net.0.proj``, ``net.2``)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, mult * dim), nn.Dropout(0.0), nn.Linear(mult * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
