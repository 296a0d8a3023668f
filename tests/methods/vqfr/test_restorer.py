"""The vqfr-v1 / vqfr-v2 methods: registration, checkpoint path, pre/post-processing.

A small network (same code, fewer channels, no attention, 64x64 instead of 512x512)
stands in for the released one, saved as a fake official checkpoint (``params_ema`` with
``module.`` keys) where the weights registry looks for it.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from vfr_bench import weights
from vfr_bench.fill import fill_state_dict
from vfr_bench.interface import ClipMeta
from vfr_bench.methods import build_method
from vfr_bench.methods.vqfr import VQFRv1, VQFRv2
from vfr_bench.methods.vqfr.restorer import VQFRv1Restorer, VQFRv2Restorer

NET = 64  # network input size for the small stand-in (512 in the method)
SMALL = {
    "vqfr-v1": (VQFRv1Restorer, lambda: VQFRv1(base_channels=32, channel_multipliers=(1, 1, 2), code_dim=32,
                                               inpfeat_dim=8, num_code=16)),
    "vqfr-v2": (VQFRv2Restorer, lambda: VQFRv2(base_channels=32, channel_multipliers=(1, 1, 2), code_dim=32,
                                               inpfeat_dim=8, num_code=16, use_enc_attention=False,
                                               use_dec_attention=False)),
}


def _small_method(name, monkeypatch, weight_entry, **overrides):
    """``name`` built from its YAML, with the small network saved as its checkpoint."""
    cls, build = SMALL[name]
    # the stand-in cannot carry the release's sha256 prefix (VQFR_v1-33a1fac5.pth): check waived
    weight_entry(dataclasses.replace(weights.get(name), sha256_prefix=None))
    monkeypatch.setattr(cls, "build_networks", lambda self: {"net": build()})
    monkeypatch.setattr(cls, "net_size", NET)
    net = build()
    sd = fill_state_dict(net.state_dict(), torch.float32)
    path = weights.path_of(weights.get(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": {}, "params_ema": {f"module.{k}": v for k, v in sd.items()}}, path)
    method = build_method(name, overrides).prepare("cpu")
    assert type(method) is cls
    return method, sd


def test_yaml_defaults():
    v1, v2 = build_method("vqfr-v1"), build_method("vqfr-v2")
    assert v1.net_size == v2.net_size == 512
    assert v1.required_weights() == ["vqfr-v1"] and v2.required_weights() == ["vqfr-v2"]
    assert v2.describe()["config"]["fidelity_ratio"] == 0.0  # demo default, recorded with results


@pytest.mark.parametrize("name", sorted(SMALL))
def test_missing_weights_name_file(name):
    with pytest.raises(weights.MissingWeightsError, match=weights.get(name).filename):
        build_method(name).prepare("cpu")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_restore_pipeline(name, monkeypatch, weight_entry):
    """Loads params_ema strictly; resize to the net size, [-1,1], main_dec, clamp, [0,1]."""
    method, sd = _small_method(name, monkeypatch, weight_entry, batch_frames=2)
    loaded = method.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())
    torch.manual_seed(0)
    lq = torch.rand(3, 3, 32, 32)
    pred = method.restore(lq, ClipMeta(clip_id="c", fps=25.0, gt_size=(NET, NET)))
    assert pred.shape == (3, 3, NET, NET) and pred.dtype == torch.float32
    assert pred.min() >= 0 and pred.max() <= 1
    with torch.no_grad():  # the demo's steps, all frames at once
        x = F.interpolate(lq, size=(NET, NET), mode="bilinear", align_corners=False) * 2 - 1
        out = method.net(x, **({"fidelity_ratio": 0.0} if name == "vqfr-v2" else {}))
    expected = (out["main_dec"].clamp(-1, 1) + 1) / 2
    assert (pred - expected).abs().max() < 1e-5
    assert (expected - (out["main_dec"] + 1) / 2).abs().max() > 0  # the clamp mattered
    other = method.restore(lq[:1], ClipMeta(clip_id="c", fps=25.0, gt_size=(80, 96)))  # non-square GT
    assert other.shape == (1, 3, 80, 96)


def test_v2_fidelity_ratio_reaches_network(monkeypatch, weight_entry):
    method, _ = _small_method("vqfr-v2", monkeypatch, weight_entry, fidelity_ratio=0.0)
    lq = torch.rand(1, 3, NET, NET)
    meta = ClipMeta(clip_id="c", fps=25.0, gt_size=(NET, NET))
    pred0 = method.restore(lq, meta)
    with torch.no_grad():
        texture = method.net(lq * 2 - 1)["texture_dec"]
    assert torch.equal(pred0, (texture.clamp(-1, 1) + 1) / 2)  # ratio 0 = texture branch
    method.config.fidelity_ratio = 1.0
    assert (method.restore(lq, meta) - pred0).abs().max() > 1e-3
