"""KEEP against the official goldens (keep/golden.npz, conformance README sections 2-7).

The goldens are the official network with `vfr_bench.fill` weights, called as
`net(x, need_upscale=False)` on a 4-frame 512x512 clip in float64. One float64 forward per
module yields every compared array (GMFlow intermediates included); a float32 forward with
the golden flow and code indices injected (teacher forcing) checks the float32 path, since
float32 KEEP with these weights is chaotic (README section 7).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import load_golden, load_manifest, max_abs
from tests.methods.keep.test_arch import keep_kwargs
from vfr_bench.fill import fill_state_dict
from vfr_bench.methods.keep.arch import KEEP, KeepTrace

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

INTERMEDIATES = ["gmflow_flow_lowres", "gmflow_global_match_flow", "gmflow_backbone_feat_img0_pair0_ch0to31",
                 "gmflow_transformer_feat0_pair0_ch0to31", "lq_latent", "enc_feat_16", "enc_feat_32_f0",
                 "kalman_uncertainty_tokens", "kalman_gain", "kalman_pred_img_f1", "z_prime", "z_hat",
                 "transformer_out_f0", "logits_f0f1", "logit_margin", "quant_feat", "gen_fuse16_out",
                 "cross_fuse16_out", "cross_fuse32_out_f1"]


@pytest.fixture(scope="module")
def golden(conformance_dir):
    return load_golden(conformance_dir / "keep" / "golden.npz")


def build(conformance_dir, dtype: torch.dtype) -> KEEP:
    net = KEEP(**keep_kwargs(load_manifest(conformance_dir / "keep" / "manifest.json"))).to(dtype).eval()
    net.load_state_dict(fill_state_dict(net.state_dict(), dtype=dtype), strict=True)
    return net


def arrays_from_trace(out: torch.Tensor, tr: KeepTrace) -> dict[str, np.ndarray]:
    """The golden arrays, named and laid out as in golden.npz, from one traced forward."""
    cat = lambda xs: torch.cat(xs).numpy()  # noqa: E731  per-frame [1,...] -> [n,...]
    logits = torch.cat(tr.logits)  # [T, 256, 1024]
    top2 = logits.topk(2, dim=2).values
    return {
        "output": out.numpy(),
        "flow": tr.flow.flow.numpy(),
        "gmflow_flow_lowres": tr.flow.flow_lowres.numpy(),
        "gmflow_global_match_flow": tr.flow.global_match_flow.numpy(),
        "gmflow_backbone_feat_img0_pair0_ch0to31": tr.flow.backbone_feature0[0, :32].numpy(),
        "gmflow_transformer_feat0_pair0_ch0to31": tr.flow.transformer_feature0[0, :32].numpy(),
        "lq_latent": tr.lq_latent.numpy(),
        "enc_feat_16": tr.enc_feats["16"].numpy(),
        "enc_feat_32_f0": tr.enc_feats["32"][0].numpy(),
        "kalman_uncertainty_tokens": tr.uncertainty_tokens.numpy(),
        "kalman_gain": tr.gain[0].numpy(),
        "kalman_pred_img_f1": tr.pred_img[0].numpy(),
        "z_prime": cat(tr.z_prime),
        "z_hat": cat(tr.z_hat),
        "transformer_out_f0": tr.transformer_out[0][:, 0].numpy(),
        "logits_f0f1": logits[:2].numpy(),
        "logit_margin": (top2[..., 0] - top2[..., 1]).numpy(),
        "code_idx": cat(tr.code_idx),
        "quant_feat": cat(tr.quant_feat),
        "gen_fuse16_out": cat(tr.sft_out["16"]),
        "cross_fuse16_out": cat(tr.cross_fuse["16"]),
        "cross_fuse32_out_f1": tr.cross_fuse["32"][0][0].numpy(),
    }


@pytest.fixture(scope="module")
def ours64(conformance_dir, golden):
    net = build(conformance_dir, torch.float64)
    trace = KeepTrace()
    with torch.no_grad():
        out = net.run(torch.from_numpy(golden["input"]).to(torch.float64), need_upscale=False, trace=trace,
                      max_batch_frames=1)  # frames one at a time through encoder / GMFlow (memory)
    del net
    return arrays_from_trace(out, trace)


def test_float64_code_indices_equal(ours64, golden):
    np.testing.assert_array_equal(ours64["code_idx"], golden["code_idx"])


def test_float64_output(ours64, golden):
    assert max_abs(ours64["output"], golden["output"]) <= 1e-4


def test_float64_flow_within_2e3_px(ours64, golden):
    assert max_abs(ours64["flow"], golden["flow"]) <= 2e-3


@pytest.mark.parametrize("name", INTERMEDIATES)
def test_float64_intermediates(ours64, golden, name):
    np.testing.assert_allclose(ours64[name], golden[name].astype(np.float64), rtol=1e-5, atol=1e-4)


def test_float32_teacher_forced_output(conformance_dir, golden):
    """float32 with the golden flow and codes injected stays within 2e-3 of the float64 output.

    The float32 run's own top-1 codes must agree with the injected ones: exactly on frame 0
    (float32 logit error ~5e-5 vs a minimum margin of 3.1e-4), and on >= 99% of the tokens of
    the later frames, whose state passes through the float32 hq_encoder (README section 7
    measured all 1024 equal; forced codes make the output independent of a rare flip).
    """
    net = build(conformance_dir, torch.float32)
    trace = KeepTrace()
    codes = torch.from_numpy(golden["code_idx"])[None]  # [1, T, 256]
    with torch.no_grad():
        out = net.run(torch.from_numpy(golden["input"]), flows=torch.from_numpy(golden["flow"])[None],
                      forced_code_idx=codes, trace=trace, max_batch_frames=1)
    del net
    assert out.dtype == torch.float32
    predicted = torch.cat(trace.code_idx).numpy()
    np.testing.assert_array_equal(predicted[0], golden["code_idx"][0])
    assert (predicted[1:] == golden["code_idx"][1:]).mean() >= 0.99
    assert max_abs(out, golden["output"]) <= 2e-3
