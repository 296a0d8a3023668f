"""FLAIR layers against independent references, on tiny sizes."""
from __future__ import annotations

import math
from unittest import mock

import torch

from vfr_bench.methods.flair.layers_arch import GroupNorm32, ResBlock
from vfr_bench.methods.flair.spynet_arch import flow_warp
from vfr_bench.methods.flair.temporal_arch import TemporalAttention
from vfr_bench.methods.flair.unet_new_arch import SpatialAttention, UNetNew
from vfr_bench.methods.flair.unet_sr3_arch import UNetSR3


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) / math.sqrt(max(p[0].numel(), 1)))


def _frame0_changes_when_frame2_changes(model, x, cond, t, **kw):
    with torch.no_grad():
        y = model(x, t, cond, num_frames=3, **kw)
        x2 = x.clone()
        x2[2] += 1.0
        y2 = model(x2, t, cond, num_frames=3, **kw)
    return (y2[0] - y[0]).abs().max().item(), (y2[1] - y[1]).abs().max().item()


def test_groupnorm_statistics_span_all_frames():
    """Without temporal layers the only path between frames is the clip-wide GroupNorm."""
    torch.manual_seed(0)
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    cond = torch.randn(1, 3, 3, 16, 16, dtype=torch.float64)
    sr3 = UNetSR3(image_size=16, inner_channel=32, norm_groups=8, channel_mults=(1, 2),
                  attn_res=(), vsrpp_res=(), cross_frame_module=False).double()
    new = UNetNew(image_size=16, model_channels=32, channel_mult=(1, 2), attention_resolutions=(),
                  rnn_resolutions=(), num_res_blocks=1, temporal_block=False).double()
    for model, t in ((sr3, torch.full((3,), 0.5, dtype=torch.float64)),
                     (new, torch.tensor([10, 10, 10]))):
        _randomise(model)
        d0, d1 = _frame0_changes_when_frame2_changes(model, x, cond, t)
        assert d0 > 1e-3 and d1 > 1e-3, type(model).__name__


def test_groupnorm_keeps_float64_and_upcasts_half():
    norm = GroupNorm32(4, 8)
    _randomise(norm)
    x = torch.randn(2, 8, 3, 5, 5, dtype=torch.float64)
    ref = torch.nn.functional.group_norm(x, 4, norm.weight.double(), norm.bias.double(), 1e-5)
    assert norm(x).dtype == torch.float64
    torch.testing.assert_close(norm(x), ref, rtol=0, atol=1e-12)
    y = norm(x.half())
    assert y.dtype == torch.float16
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=2e-2)


def _temporal_attention_reference(m: TemporalAttention, h: torch.Tensor) -> torch.Tensor:
    """Loop-over-frames reference of the official sliding window attention."""
    b, t, c, hh, ww = h.shape
    r = m.num_frames // 2
    x = torch.nn.functional.group_norm(h.transpose(1, 2), 32, m.norm.wrapped_module.weight,
                                       m.norm.wrapped_module.bias, 1e-5).transpose(1, 2)
    half = c // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=h.dtype) / half)

    def emb(o):  # guided-diffusion [cos, sin]
        return torch.cat([torch.cos(o * freqs), torch.sin(o * freqs)])

    d = c // m.num_heads
    out = torch.zeros_like(h)
    for f in range(t):
        xq = x[:, f].permute(0, 2, 3, 1)  # [B,H,W,C]
        q = m.q_linear(xq + emb(0.0))
        ks, vs = [], []
        for o in [o for o in range(-r, r + 1) if o != 0]:
            xk = x[:, min(max(f + o, 0), t - 1)].permute(0, 2, 3, 1)
            ks.append(m.k_linear(xk + emb(float(o))))
            vs.append(m.v_linear(xk))
        k, v = torch.stack(ks, -2), torch.stack(vs, -2)  # [B,H,W,F-1,C]
        qh = q.unflatten(-1, (m.num_heads, d))
        kh, vh = k.unflatten(-1, (m.num_heads, d)), v.unflatten(-1, (m.num_heads, d))
        att = torch.softmax(torch.einsum("bxyhd,bxyfhd->bxyhf", qh, kh) / math.sqrt(d), -1)
        o_ = torch.einsum("bxyhf,bxyfhd->bxyhd", att, vh).flatten(-2)
        out[:, f] = m.proj.wrapped_module(o_.permute(0, 3, 1, 2))
    return out + h


def test_temporal_attention_matches_reference():
    m = TemporalAttention(64, num_frames=5, head_channels=32).double()
    _randomise(m)
    h = torch.randn(1, 4, 64, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(m(h), _temporal_attention_reference(m, h), rtol=0, atol=1e-10)


def _spatial_attention_reference(m: SpatialAttention, x: torch.Tensor, softmax_dtype) -> torch.Tensor:
    """Loop-over-heads spatial attention with logits q.k/sqrt(d) softmaxed in ``softmax_dtype``."""
    b, t, c, hh, ww = x.shape
    xn = torch.nn.functional.group_norm(x.transpose(1, 2), 32, m.norm.wrapped_module.weight,
                                        m.norm.wrapped_module.bias, 1e-5).transpose(1, 2)
    qkv = m.qkv(xn.reshape(b * t, c, hh * ww))
    d = c // m.num_heads
    heads = []
    for i in range(m.num_heads):  # legacy layout: [q_i, k_i, v_i] per head
        q, k, v = qkv[:, 3 * d * i:3 * d * (i + 1)].split(d, dim=1)
        logits = q.transpose(1, 2) @ k / math.sqrt(d)  # [N, L, L]
        att = torch.softmax(logits.to(softmax_dtype), -1).to(x.dtype)
        heads.append(v @ att.transpose(1, 2))  # [N, d, L]
    return x + m.proj_out(torch.cat(heads, 1)).reshape(x.shape)


def test_spatial_attention_softmax_in_float32_as_official():
    """Official QKVAttentionLegacy: softmax(weight.float()) even for float64 inputs."""
    m = SpatialAttention(64, 32).double()
    _randomise(m)
    x = torch.randn(1, 2, 64, 4, 3, dtype=torch.float64)
    with torch.no_grad():
        y = m(x)
        ref32 = _spatial_attention_reference(m, x, torch.float32)
        ref64 = _spatial_attention_reference(m, x, torch.float64)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, ref32, rtol=0, atol=1e-12)
    assert (y - ref64).abs().max() > 1e-10  # a float64 softmax would differ by ~1e-8


def test_unet_new_under_bf16_autocast():
    """bf16 autocast on CPU runs through every unet_new layer kind except RFE; softmax in float32."""
    torch.manual_seed(0)
    model = UNetNew(image_size=8, model_channels=32, channel_mult=(1, 2), num_res_blocks=1,
                    attention_resolutions=(1, 2), rnn_resolutions=(), num_head_channels=32,
                    use_checkpoint=False).eval()
    _randomise(model)
    x = torch.randn(3, 3, 8, 8)
    cond = torch.rand(1, 3, 3, 8, 8) * 2 - 1
    t = torch.tensor([605, 605, 605])
    with torch.no_grad():
        ref = model(x, t, cond, num_frames=3)
        with mock.patch("torch.softmax", wraps=torch.softmax) as softmax, \
                torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x, t, cond, num_frames=3)
    assert softmax.call_count == 7  # 2 encoder, 1 middle, 4 decoder spatial attention blocks
    assert all(c.args[0].dtype == torch.float32 for c in softmax.call_args_list)
    assert y.shape == ref.shape and torch.isfinite(y).all()
    assert (y.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_flow_warp_integer_shift():
    x = torch.arange(2 * 5 * 6, dtype=torch.float64).view(1, 2, 5, 6)
    flow = torch.zeros(1, 5, 6, 2, dtype=torch.float64)
    flow[..., 0] = 1.0  # sample one pixel to the right
    y = flow_warp(x, flow)
    torch.testing.assert_close(y[..., :-1], x[..., 1:])
    assert (y[..., -1] == 0).all()  # zero padding outside


def test_checkpointing_only_with_grad():
    block = ResBlock(32, 16, 32, dims=3, kernel_size=(3, 1, 1), padding=(1, 0, 0),
                     use_checkpoint=True).double()
    _randomise(block)
    x = torch.randn(1, 3, 32, 4, 4, dtype=torch.float64, requires_grad=True)
    emb = torch.randn(3, 16, dtype=torch.float64)
    target = "torch.utils.checkpoint.checkpoint"
    with mock.patch(target, wraps=torch.utils.checkpoint.checkpoint) as ckpt:
        with torch.no_grad():
            y0 = block(x, emb)
        assert ckpt.call_count == 0
        y = block(x, emb)
        assert ckpt.call_count == 1
    torch.testing.assert_close(y, y0)
    (g,) = torch.autograd.grad(y.square().sum(), x)
    block.use_checkpoint = False
    (g_ref,) = torch.autograd.grad(block(x, emb).square().sum(), x)
    torch.testing.assert_close(g, g_ref)
