"""KEEP network: state-dict layout against the manifest, and its blocks against independent formulas."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import load_manifest, manifest_shapes, state_dict_shapes
from vfr_bench.methods.keep.arch import KEEP
from vfr_bench.methods.keep.cross_fusion_arch import CrossFrameFusionLayer
from vfr_bench.methods.keep.gmflow_arch import (GMFlow, global_matching_flow, shifted_window_mask,
                                                sine_position_embedding, window_attention)
from vfr_bench.methods.keep.kalman_arch import SparseCausalAttention, UncertaintyBlock, flow_warp

# Constructor arguments of the manifest that this re-implementation does not take: the flow
# network is always GMFlow, and weights are never loaded inside a constructor.
NOT_CONSTRUCTOR = {"flow_type": "gmflow", "flownet_path": None}


@pytest.fixture(scope="module")
def manifest(conformance_dir):
    return load_manifest(conformance_dir / "keep" / "manifest.json")


def keep_kwargs(manifest: dict) -> dict:
    kwargs = dict(manifest["constructor"])
    for key, value in NOT_CONSTRUCTOR.items():
        assert kwargs.pop(key) == value
    return kwargs


def test_state_dict_matches_manifest(manifest):
    """Keys, their order and shapes equal the official KEEP's (flat checkpoint, strict loading)."""
    net = KEEP(**keep_kwargs(manifest))
    ours, theirs = state_dict_shapes(net), manifest_shapes(manifest)
    assert list(ours) == list(theirs)
    assert ours == theirs
    assert sum(v.numel() for v in net.state_dict().values()) == manifest["num_params"]
    assert not list(net.buffers())


def _heads_attention(q, k, v, heads):
    """Reference multi-head attention with explicit per-head loops. q: [Lq, I], k/v: [Lk, I]."""
    d = q.shape[-1] // heads
    outs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        p = torch.softmax(q[:, sl] @ k[:, sl].T / math.sqrt(d), dim=-1)
        outs.append(p @ v[:, sl])
    return torch.cat(outs, dim=-1)


def test_sparse_causal_attention_uses_first_and_previous_frame():
    torch.manual_seed(0)
    b, f, length, dim, heads = 2, 4, 5, 8, 2
    attn = SparseCausalAttention(dim, heads, 3).double()
    x = torch.randn(b * f, length, dim, dtype=torch.float64)
    out = attn(x, f)
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    for bi in range(b):
        for fi in range(f):
            n, first, prev = bi * f + fi, bi * f, bi * f + max(fi - 1, 0)
            ref = _heads_attention(q[n], torch.cat([k[first], k[prev]]), torch.cat([v[first], v[prev]]), heads)
            torch.testing.assert_close(out[n], attn.to_out[0](ref), rtol=0, atol=1e-12)


def test_uncertainty_block_formula_and_noncausal_temporal_attention():
    torch.manual_seed(0)
    f, length, dim, heads = 3, 4, 8, 2
    block = UncertaintyBlock(dim, heads, 3).double()
    for p in block.parameters():  # non-trivial norms and output biases
        p.data.add_(0.1 * torch.randn_like(p))
    x = torch.randn(f, length, dim, dtype=torch.float64)
    out = block(x, f)
    ln = lambda m, t: F.layer_norm(t, (dim,), m.weight, m.bias, 1e-5)  # noqa: E731
    h = x + block.attn1(ln(block.norm1, x), f)
    g = block.ff.net[0].proj(ln(block.norm3, h)).chunk(2, dim=-1)
    h = h + block.ff.net[2](g[0] * 0.5 * g[1] * (1 + torch.erf(g[1] / math.sqrt(2))))
    ref = torch.empty_like(h)
    for tok in range(length):  # temporal attention per token over all frames
        seq = ln(block.norm_temp, h[:, tok])
        a = block.attn_temp
        ref[:, tok] = h[:, tok] + a.to_out[0](_heads_attention(a.to_q(seq), a.to_k(seq), a.to_v(seq), heads))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    x2 = x.clone()
    x2[-1] = torch.randn(length, dim, dtype=torch.float64)  # the last frame influences frame 0 (temporal attn)
    assert not torch.allclose(block(x2, f)[0], out[0])


def test_cross_frame_fusion_post_branch_layernorm():
    torch.manual_seed(0)
    dim = 8
    layer = CrossFrameFusionLayer(dim, num_attention_heads=2, attention_head_dim=4).double()
    for p in layer.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    curr, prev = torch.randn(1, dim, 3, 2, dtype=torch.float64), torch.randn(1, dim, 3, 2, dtype=torch.float64)
    out = layer(curr, prev)
    x = curr[0].flatten(1).T  # [HW, C], row-major tokens
    p = prev[0].flatten(1).T
    a = layer.attn
    x = x + F.layer_norm(a.to_out[0](_heads_attention(a.to_q(x), a.to_k(p), a.to_v(p), 2)), (dim,),
                         layer.norm1.weight, layer.norm1.bias, 1e-5)
    value, gate = layer.ff.net[0].proj(x).chunk(2, dim=-1)
    x = x + F.layer_norm(layer.ff.net[2](value * F.gelu(gate)), (dim,), layer.norm2.weight, layer.norm2.bias, 1e-5)
    torch.testing.assert_close(out[0], x.T.reshape(dim, 3, 2), rtol=0, atol=1e-12)


def test_flow_warp_integer_shift_and_zero_padding():
    x = torch.arange(2 * 4 * 5, dtype=torch.float64).view(1, 2, 4, 5)
    flow = torch.zeros(1, 2, 4, 5, dtype=torch.float64)
    flow[:, 0] = 1.0  # sample one pixel to the right
    out = flow_warp(x, flow)
    torch.testing.assert_close(out[..., :-1], x[..., 1:])
    assert torch.all(out[..., -1] == 0)


def test_sine_position_embedding_formula():
    pos = sine_position_embedding(3, 4, 8, dtype=torch.float64)
    assert pos.shape == (1, 8, 3, 4)
    scale = 2 * math.pi
    for c in range(4):
        dim_t = 10000 ** (2 * (c // 2) / 4)
        trig = math.sin if c % 2 == 0 else math.cos
        for i in range(3):
            for j in range(4):
                assert pos[0, c, i, j].item() == pytest.approx(trig((i + 1) / (3 + 1e-6) * scale / dim_t), abs=1e-14)
                assert pos[0, 4 + c, i, j].item() == pytest.approx(trig((j + 1) / (4 + 1e-6) * scale / dim_t),
                                                                    abs=1e-14)


def test_window_attention_plain_and_shifted():
    torch.manual_seed(0)
    h = w = 8
    q, k, v = (torch.randn(2, h * w, 4, dtype=torch.float64) for _ in range(3))
    # one window without shift is full attention
    full = torch.softmax(q @ k.transpose(1, 2) / 2.0, dim=-1) @ v
    torch.testing.assert_close(window_attention(q, k, v, h, w, 1, None), full)
    # shifted 2x2 windows: roll by half a window, attend within window and region, roll back
    mask = shifted_window_mask(h, w, 2, dtype=torch.float64)
    out = window_attention(q, k, v, h, w, 2, mask)
    rolled = [torch.roll(t.view(2, h, w, 4), (-2, -2), (1, 2)) for t in (q, k, v)]
    region = torch.zeros(h, w)
    region[h - 4:h - 2] += 3
    region[h - 2:] += 6
    region[:, w - 4:w - 2] += 1
    region[:, w - 2:] += 2
    ref = torch.zeros(2, h, w, 4, dtype=torch.float64)
    for wy in range(2):
        for wx in range(2):
            ys, xs = slice(4 * wy, 4 * wy + 4), slice(4 * wx, 4 * wx + 4)
            qq, kk, vv = (t[:, ys, xs].reshape(2, 16, 4) for t in rolled)
            lab = region[ys, xs].reshape(16)
            bias = torch.where(lab[:, None] == lab[None, :], 0.0, -100.0).double()
            ref[:, ys, xs] = (torch.softmax(qq @ kk.transpose(1, 2) / 2.0 + bias, -1) @ vv).view(2, 4, 4, 4)
    ref = torch.roll(ref, (2, 2), (1, 2)).view(2, h * w, 4)
    torch.testing.assert_close(out, ref)


def test_global_matching_recovers_a_translation():
    f1 = 30.0 * torch.eye(42, dtype=torch.float64).view(1, 42, 6, 7)  # one-hot position features
    f0 = torch.roll(f1, shifts=(1, 2), dims=(2, 3))  # f0(p) = f1(p - (1, 2))
    flow = global_matching_flow(f0, f1)
    torch.testing.assert_close(flow[0, 0, 2:, 3:], torch.full((4, 4), -2.0, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(flow[0, 1, 2:, 3:], torch.full((4, 4), -1.0, dtype=torch.float64), atol=1e-6, rtol=0)


def test_gmflow_shapes_small_input():
    net = GMFlow().eval()
    img = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        r = net.estimate(img, img.flip(-1))
    assert r.flow.shape == (2, 2, 64, 64)
    assert r.flow_lowres.shape == r.global_match_flow.shape == (2, 2, 8, 8)
    assert r.backbone_feature0.shape == r.transformer_feature0.shape == (2, 128, 8, 8)
