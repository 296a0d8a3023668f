"""FLAIR schedules vs schedules.npz / schedules.json (each demo configuration)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers import load_golden
from vfr_bench.methods.flair import schedules as sch

DEMOS = {"x8_bicubic": "sr3", "x16_bicubic": "sr3", "gaussian": "unet_new", "jpeg": "unet_new"}


@pytest.fixture(scope="module")
def golden(conformance_dir):
    d = conformance_dir / "flair"
    with open(d / "schedules.json") as f:
        cfg = json.load(f)
    return load_golden(d / "schedules.npz"), cfg


@pytest.mark.parametrize("demo", list(DEMOS))
def test_schedule_matches_official(golden, demo):
    npz, cfg = golden
    c = cfg[demo]
    s = sch.make_schedule(DEMOS[demo], w=c["w"], rho=c["rho"], noise_level=c["noise_level"],
                          zeta=c["zeta"], tau=c["tau"])
    g = lambda k: npz[f"{demo}_{k}"]  # noqa: E731
    np.testing.assert_array_equal(sch.base_betas(DEMOS[demo]), g("base_betas"))
    np.testing.assert_array_equal(s.timestep_map, g("timestep_map"))
    np.testing.assert_array_equal(s.visit_order(), g("visit_order_spaced"))
    np.testing.assert_array_equal(s.timestep_map[s.visit_order()], g("visit_order_original"))
    np.testing.assert_array_equal(s.timestep_map[s.visit_order()], c["timesteps_visited_original"])
    np.testing.assert_allclose(s.betas, g("spaced_betas"), rtol=1e-12, atol=0)
    np.testing.assert_allclose(s.alphas_cumprod, g("spaced_alphas_cumprod"), rtol=1e-12, atol=0)
    assert s.model_time.dtype == g("model_time_input").dtype
    np.testing.assert_array_equal(s.model_time, g("model_time_input"))
    np.testing.assert_array_equal(s.aux_applied, g("aux_applied"))
    for ours, key in [(s.gammas, "gammas"), (s.ws, "ws"),
                      (s.sqrt_alphas_cumprod_prev, "coef_x0_sqrt_alphas_cumprod_prev"),
                      (s.sqrt_one_minus_alphas_cumprod_prev,
                       "coef_noise_sqrt_one_minus_alphas_cumprod_prev"),
                      (s.sqrt_recip_alphas_cumprod, "sqrt_recip_alphas_cumprod"),
                      (s.sqrt_recipm1_alphas_cumprod, "sqrt_recipm1_alphas_cumprod")]:
        np.testing.assert_allclose(ours, g(key), rtol=1e-12, atol=1e-15, err_msg=key)
        # What the sampler actually uses: the float32 value of each coefficient.
        np.testing.assert_array_equal(ours.astype(np.float32), g(key).astype(np.float32), err_msg=key)
    assert s.ws[c["tau"]] == pytest.approx(c["ws_at_tau"]) and s.ws[99] == 1.0
    assert s.gammas.min() == pytest.approx(c["gamma_min"]) and s.gammas.max() == pytest.approx(c["gamma_max"])
    co = s.coefficients(60)
    assert all(v.dtype == torch.float32 for v in co.values())
    assert float(co["gamma"]) == np.float32(g("gammas")[60])
    ti = s.model_time_input(60, 3)
    assert ti.shape == (3,) and ti[0].item() == g("model_time_input")[60]
    assert ti.dtype == (torch.float32 if DEMOS[demo] == "sr3" else torch.int64)


def test_space_timesteps_uniform():
    assert sch.space_timesteps(1000, 100)[:3] == [0, 10, 20]
    assert sch.space_timesteps(2000, 100)[:4] == [0, 20, 40, 61]
    assert len(sch.space_timesteps(2000, 100)) == 100


def test_gamma_rule_thresholds():
    ab = np.array([0.999999, 0.9, 0.5, 1e-4])
    g = sch.dc_gammas(ab, noise_level=2.55, zeta=1.0)
    # g = 6.5025 * ab/(1-ab): >=1 -> 0.991 (gamma 0.009); tiny -> 1e-6 (gamma ~1)
    assert g[0] == pytest.approx(0.009) and g[1] == pytest.approx(0.009)
    assert g[3] == pytest.approx(1 - 1e-6)
    assert np.all(sch.dc_gammas(ab, 0.0, -1) == 1)
