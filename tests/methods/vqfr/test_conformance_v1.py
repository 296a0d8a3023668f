"""VQFR v1 against the official goldens (../shared/conformance/vqfr/golden_v1.npz).

One model per module; the float64 pass (frames one at a time: the official batch-2
float64 call peaked at 17 GB) and then the float32 pass refill the same model in their
dtype.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import load_golden, load_manifest
from tests.methods.vqfr.common import demo_u8, excess_over_storage, max_abs_np, run_frames, u8_report, v1_kwargs
from vfr_bench.methods.vqfr import VQFRv1

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

FLOAT_KEYS = ["dec", "main_dec", "enc_feat", "quant_out", "quant_z_conv", "quant_z_q", "twm_Level_32_cond",
              "texture_feat_L16", "twm_Level_32_conv_offset_out", "twm_Level_16_conv_offset_out",
              "twm_Level_8_conv_offset_out", "twm_Level_16_warp_feat", "twm_Level_16_offset_feat"]
F64_TOL = 1e-9  # beyond the goldens' float32 storage rounding; README: ~1e-14 between float64 formulations
F32_TOL = 1e-4  # README float32 tolerance; official float32 vs float64 differs by <= 6.4e-6

_Q = "quantizer.quantize_dict.Level_32"
_TWM = "main_decoder.align_func_dict"
HOOKS = {
    "enc_feat": ("encoder", "output", None),
    "quant_z_conv": (f"{_Q}.quant_conv", "output", None),
    "quant_index": (f"{_Q}.embedding", "input", None),
    "quant_z_q": (f"{_Q}.post_quant_conv", "input", None),
    "quant_out": (f"{_Q}.post_quant_conv", "output", None),
    "twm_Level_32_cond": (f"{_TWM}.Level_32.downsample", "output", None),
    "texture_feat_L16": (f"{_TWM}.Level_16", "input", None),
    "twm_Level_32_conv_offset_out": (f"{_TWM}.Level_32.dcn.conv_offset", "output", None),
    "twm_Level_16_conv_offset_out": (f"{_TWM}.Level_16.dcn.conv_offset", "output", None),
    "twm_Level_8_conv_offset_out": (f"{_TWM}.Level_8.dcn.conv_offset", "output", None),
    "twm_Level_16_warp_feat": (f"{_TWM}.Level_16", "output", 0),
    "twm_Level_16_offset_feat": (f"{_TWM}.Level_16", "output", 1),
}


def _call(model: VQFRv1, frame: torch.Tensor) -> dict[str, torch.Tensor]:
    return model(frame)


@pytest.fixture(scope="module")
def golden(conformance_dir) -> dict[str, np.ndarray]:
    return load_golden(conformance_dir / "vqfr" / "golden_v1.npz")


@pytest.fixture(scope="module")
def model(conformance_dir) -> VQFRv1:
    manifest = load_manifest(conformance_dir / "vqfr" / "manifest_v1.json")
    return VQFRv1(**v1_kwargs(manifest["constructor"]))


@pytest.fixture(scope="module")
def ours64(model, golden) -> dict[str, np.ndarray]:
    out = run_frames(model, golden["input"], torch.float64, HOOKS, _call)
    out["quant_index"] = out["quant_index"].reshape(golden["quant_index"].shape)  # (b h w) token order
    return out


@pytest.fixture(scope="module")
def ours32(model, golden, ours64) -> dict[str, np.ndarray]:
    # after the float64 pass (same model, refilled in float32)
    out = run_frames(model, golden["input"], torch.float32, HOOKS, _call)
    out["quant_index"] = out["quant_index"].reshape(golden["quant_index"].shape)
    return out


def test_golden_keys_all_checked(golden):
    assert set(golden) == set(FLOAT_KEYS) | {"input", "quant_index", "restored_face_rgb_u8"}


@pytest.mark.parametrize("name", FLOAT_KEYS)
def test_float64(ours64, golden, name):
    excess = excess_over_storage(ours64[name], golden[name])
    print(f"v1 f64 {name}: max_abs={max_abs_np(ours64[name], golden[name]):.3g} beyond_f32_storage={excess:.3g}")
    assert excess <= F64_TOL


def test_float64_indices(ours64, golden):
    np.testing.assert_array_equal(ours64["quant_index"], golden["quant_index"])


def test_float64_demo_u8(ours64, golden):
    level, count = u8_report(demo_u8(ours64["main_dec"]), golden["restored_face_rgb_u8"])
    print(f"v1 f64 restored_face_rgb_u8: max_level_diff={level} differing={count}")
    assert level <= 1


@pytest.mark.parametrize("name", FLOAT_KEYS)
def test_float32(ours32, golden, name):
    err = max_abs_np(ours32[name], golden[name])
    print(f"v1 f32 {name}: max_abs={err:.3g}")
    assert err <= F32_TOL


def test_float32_indices(ours32, golden):
    np.testing.assert_array_equal(ours32["quant_index"], golden["quant_index"])


def test_float32_demo_u8(ours32, golden):
    level, count = u8_report(demo_u8(ours32["main_dec"]), golden["restored_face_rgb_u8"])
    print(f"v1 f32 restored_face_rgb_u8: max_level_diff={level} differing={count}")
    assert level <= 1
