"""CodeFormer against the official goldens (flair/golden_codeformer.npz).

The goldens are the official network with `vfr_bench.fill` weights, called as
`gan(x, w=1.0, adain=True)` on one 512x512 face in float64 (see the conformance
README, section golden_codeformer.npz). Each precision runs the network once per
module; the tests compare its three outputs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import load_golden, load_manifest, max_abs
from vfr_bench.fill import fill_state_dict
from vfr_bench.methods.codeformer.arch import CodeFormer

pytestmark = [pytest.mark.conformance, pytest.mark.slow]


@pytest.fixture(scope="module")
def golden(conformance_dir):
    return load_golden(conformance_dir / "flair" / "golden_codeformer.npz")


def _run(conformance_dir, golden, dtype):
    manifest = load_manifest(conformance_dir / "flair" / "manifest_codeformer.json")
    net = CodeFormer(**manifest["constructor"]).to(dtype).eval()
    net.load_state_dict(fill_state_dict(net.state_dict(), dtype=dtype), strict=True)
    x = torch.from_numpy(golden["input"]).to(dtype)
    with torch.no_grad():
        out, logits, lq_feat = net(x, w=1.0, adain=True)
    top_idx = torch.topk(torch.softmax(logits, dim=2), 1, dim=2)[1].reshape(-1)
    del net
    return {"output": out.numpy(), "logits": logits.numpy(), "lq_feat": lq_feat.numpy(),
            "top_idx": top_idx.numpy()}


@pytest.fixture(scope="module")
def ours64(conformance_dir, golden):
    return _run(conformance_dir, golden, torch.float64)


@pytest.fixture(scope="module")
def ours32(conformance_dir, golden):
    return _run(conformance_dir, golden, torch.float32)


def test_float64_code_indices_equal(ours64, golden):
    np.testing.assert_array_equal(ours64["top_idx"], golden["top_idx"])


@pytest.mark.parametrize("name", ["logits", "lq_feat"])
def test_float64_intermediates_close(ours64, golden, name):
    # Stored as float32 roundings of float64 results: allow 1e-5 of the array's range.
    ref = golden[name]
    assert max_abs(ours64[name], ref) <= 1e-5 * np.abs(ref).max()


def test_float64_output_within_1e5_of_max(ours64, golden):
    ref = golden["output_float64"]
    assert max_abs(ours64["output"], ref) <= 1e-5 * np.abs(ref).max()


def test_float32_codes_identical_output_within_5e2(ours32, golden):
    np.testing.assert_array_equal(ours32["top_idx"], golden["top_idx"])
    assert max_abs(ours32["output"], golden["output_float64"]) <= 5e-2
