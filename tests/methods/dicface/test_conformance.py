"""DicFace against the official float64 goldens (deterministic weights from vfr_bench.fill).

Goldens: ``conformance/dicface/golden.npz`` computed by the official
``TemporalCodeFormerDirDistMultiScale`` (fudan-generative-vision/DicFace) with w=1.0. The
deterministic path replaces the Dirichlet draw by its mean; the random path is checked by
injecting the official draw ``rand_mix_weights_f0``. Heavy: float64 at 512x512, frames run
one at a time; run under ``flock /tmp/vfr-heavy.lock``.
"""
from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from tests.helpers import load_golden, max_abs
from vfr_bench.fill import fill_state_dict
from vfr_bench.methods.dicface.arch import DicFace, from_temporal
from vfr_bench.methods.dicface.mixture import dirichlet_mean

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

CHECKED = ("enc_latent", "lq_feat", "tf_layer0_out", "tf_out", "alpha", "mix_weights",
           "mixed_latent", "output", "rand_mixed_latent_f0", "rand_output_f0")


@pytest.fixture(scope="module")
def results(conformance_dir):
    """Run the float64 model once over the golden clip; return ours and the goldens."""
    golden = load_golden(conformance_dir / "dicface" / "golden.npz")
    model = DicFace().double().eval()
    model.load_state_dict(fill_state_dict(model.state_dict()), strict=True)
    captured = {}

    def keep_layer0(module, inputs, output):  # returns None: output unchanged
        captured.setdefault("tf_layer0_out", from_temporal(output, 1))

    hook = model.dir_dist_layers[0].register_forward_hook(keep_layer0)
    ours = {}
    with torch.no_grad():
        x = torch.from_numpy(golden["input"]).double()
        latents, skips = [], []
        for frame in x:  # one frame at a time: float64 convs at 512^2 are memory-hungry
            lat, sk = model.encode(frame[None])
            latents.append(lat)
            skips.append(sk)
        ours["enc_latent"] = torch.cat(latents)
        ours["lq_feat"] = torch.cat([model.fuse_scales(lat, sk) for lat, sk in zip(latents, skips)])
        tokens = model.transform(ours["lq_feat"])
        ours["tf_layer0_out"] = captured["tf_layer0_out"]
        ours["tf_out"] = tokens
        ours["alpha"] = model.concentration(tokens)
        ours["mix_weights"] = dirichlet_mean(ours["alpha"])
        ours["mixed_latent"] = model.mix(ours["mix_weights"])
        ours["output"] = torch.cat([model.decode(ours["mixed_latent"][i:i + 1], skips[i], w=1.0)
                                    for i in range(len(skips))])
        rand_weights = torch.from_numpy(golden["rand_mix_weights_f0"]).double()
        ours["rand_mixed_latent_f0"] = model.mix(rand_weights)
        ours["rand_output_f0"] = model.decode(ours["rand_mixed_latent_f0"], skips[0], w=1.0)
    hook.remove()
    del model, skips, latents
    gc.collect()
    return {k: ours[k].numpy() for k in CHECKED}, {k: golden[k] for k in CHECKED}


@pytest.mark.parametrize("key", CHECKED)
def test_matches_golden(results, key):
    ours, golden = results
    scale = float(np.abs(golden[key]).max())
    diff = max_abs(ours[key], golden[key])
    print(f"{key}: max|diff| {diff:.3e} (max|x| {scale:.3e})")
    assert diff <= 1e-5 * scale, f"{key}: max|diff| {diff:.3e} > 1e-5 x {scale:.3e}"
