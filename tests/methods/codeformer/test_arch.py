"""CodeFormer network: state-dict layout against the manifest, and the reuse hooks."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import load_manifest, manifest_shapes, state_dict_shapes
from vfr_bench.methods.codeformer.arch import CodeFormer, adaptive_instance_normalization
from vfr_bench.methods.codeformer.transformer_arch import FuseSFTBlock, TransformerSALayer
from vfr_bench.methods.codeformer.vqgan_arch import (
    ENCODER_SKIP_BLOCK, GENERATOR_FUSE_BLOCK, Encoder, Generator, VectorQuantizer)


@pytest.fixture(scope="module")
def manifest(conformance_dir):
    return load_manifest(conformance_dir / "flair" / "manifest_codeformer.json")


def test_state_dict_matches_manifest(manifest):
    """Keys, their order and shapes equal the official CodeFormer's (strict loading of params_ema)."""
    net = CodeFormer(**manifest["constructor"])
    ours, theirs = state_dict_shapes(net), manifest_shapes(manifest)
    assert list(ours) == list(theirs)
    assert ours == theirs
    assert sum(v.numel() for v in net.state_dict().values()) == manifest["num_params"]


def test_encoder_skips_and_generator_fusion_shapes():
    """keep= returns the tapped block outputs; fuse= is called after the chosen blocks only."""
    torch.manual_seed(0)
    # Official block layout (attention at the last level) at half width (nf=32, for speed),
    # fed a 64-px input: every feature size is /8, every channel count /2.
    enc, gen = Encoder(nf=32), Generator(nf=32)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    keep = [ENCODER_SKIP_BLOCK[s] for s in ("64", "32", "16")]
    with torch.no_grad():
        latent, feats = enc(x, keep=keep)
        assert torch.equal(enc(x), latent)
    assert latent.shape == (2, 256, 2, 2)
    assert sorted(feats) == sorted(keep)
    assert feats[ENCODER_SKIP_BLOCK["64"]].shape == (2, 128, 8, 8)
    assert feats[ENCODER_SKIP_BLOCK["32"]].shape == (2, 128, 4, 4)
    assert feats[ENCODER_SKIP_BLOCK["16"]].shape == (2, 256, 2, 2)

    seen = {}

    def record(i):
        def f(h):
            seen[i] = tuple(h.shape)
            return h * 0  # zeroing the feature must change the output
        return f

    fuse_at = [GENERATOR_FUSE_BLOCK[s] for s in ("16", "32", "64")]
    with torch.no_grad():
        plain = gen(latent)
        fused = gen(latent, fuse={i: record(i) for i in fuse_at})
    assert plain.shape == fused.shape == (2, 3, 64, 64)
    assert seen == {GENERATOR_FUSE_BLOCK["16"]: (2, 256, 2, 2), GENERATOR_FUSE_BLOCK["32"]: (2, 128, 4, 4),
                    GENERATOR_FUSE_BLOCK["64"]: (2, 128, 8, 8)}
    assert not torch.allclose(plain, fused)


def test_codebook_lookup_is_exact_row_gather_in_float64():
    vq = VectorQuantizer(16, 8).double()
    idx = torch.tensor([[3, 0], [15, 7]])
    feat = vq.get_codebook_feat(idx, shape=(1, 2, 2, 8))
    assert feat.dtype == torch.float64 and feat.shape == (1, 8, 2, 2)
    emb = vq.embedding.weight
    assert torch.equal(feat[0, :, 1, 0], emb[15]) and torch.equal(feat[0, :, 0, 1], emb[0])


def test_transformer_layer_and_fuse_block_match_their_formulas():
    """Independent formula check: pre-norm MHA with pos on q,k only, exact-GELU FFN; SFT fusion."""
    torch.manual_seed(0)
    layer = TransformerSALayer(16, nhead=2, dim_mlp=32).double().eval()
    x, pos = torch.randn(5, 3, 16, dtype=torch.float64), torch.randn(5, 1, 16, dtype=torch.float64)
    a = layer.self_attn
    h = torch.nn.functional.layer_norm(x, (16,), layer.norm1.weight, layer.norm1.bias, 1e-5)
    wq, wk, wv = a.in_proj_weight.chunk(3)
    bq, bk, bv = a.in_proj_bias.chunk(3)
    q = ((h + pos) @ wq.T + bq).view(5, 3, 2, 8).permute(1, 2, 0, 3)
    k = ((h + pos) @ wk.T + bk).view(5, 3, 2, 8).permute(1, 2, 0, 3)
    v = (h @ wv.T + bv).view(5, 3, 2, 8).permute(1, 2, 0, 3)
    att = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, -1) @ v  # [N,H,L,D]
    y = x + a.out_proj(att.permute(2, 0, 1, 3).reshape(5, 3, 16))
    g = torch.nn.functional.layer_norm(y, (16,), layer.norm2.weight, layer.norm2.bias, 1e-5)
    lin1 = g @ layer.linear1.weight.T + layer.linear1.bias
    ref = y + layer.linear2(0.5 * lin1 * (1 + torch.erf(lin1 / 2 ** 0.5)))
    with torch.no_grad():
        assert torch.allclose(layer(x, query_pos=pos), ref, atol=1e-12)

    fuse = FuseSFTBlock(32, 32).double()
    enc, dec = torch.randn(2, 32, 4, 4, dtype=torch.float64), torch.randn(2, 32, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        hfe = fuse.encode_enc(torch.cat([enc, dec], 1))
        ref = dec + 0.3 * (dec * fuse.scale(hfe) + fuse.shift(hfe))
        assert torch.allclose(fuse(enc, dec, w=0.3), ref, atol=1e-12)
        assert torch.equal(fuse(enc, dec, w=0.0), dec)


def test_adain_takes_style_statistics():
    torch.manual_seed(0)
    content, style = torch.randn(2, 4, 8, 8, dtype=torch.float64), 3 + 2 * torch.randn(2, 4, 8, 8, dtype=torch.float64)
    out = adaptive_instance_normalization(content, style)
    assert torch.allclose(out.mean((2, 3)), style.mean((2, 3)), atol=1e-10)
    # std of out = sqrt(var_s + eps) * std_c / sqrt(var_c + eps) (unbiased variances, eps 1e-5)
    vc, vs = content.flatten(2).var(2), style.flatten(2).var(2)
    assert torch.allclose(out.flatten(2).var(2), (vs + 1e-5) * vc / (vc + 1e-5), rtol=1e-10)
