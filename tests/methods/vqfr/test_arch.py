"""Fast checks of the VQFR networks: official state-dict layout, the DCN, the ratio pass."""
from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import load_manifest, manifest_shapes, state_dict_shapes
from tests.methods.vqfr.common import v1_kwargs, v2_kwargs
from vfr_bench.fill import fill_state_dict
from vfr_bench.methods.vqfr import VQFRv1, VQFRv2
from vfr_bench.methods.vqfr.blocks_arch import ModulatedDeformConv

VERSIONS = {"v1": (VQFRv1, v1_kwargs), "v2": (VQFRv2, v2_kwargs)}


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_state_dict_matches_manifest(conformance_dir, version):
    """Keys, their order and shapes equal the official state dict; defaults are the release."""
    cls, to_kwargs = VERSIONS[version]
    manifest = load_manifest(conformance_dir / "vqfr" / f"manifest_{version}.json")
    kwargs = to_kwargs(manifest["constructor"])
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    assert defaults == kwargs
    model = cls(**kwargs)
    ours, official = state_dict_shapes(model), manifest_shapes(manifest)
    assert list(ours) == list(official)
    assert ours == official
    assert sum(p.numel() for p in model.state_dict().values()) == manifest["num_params"]
    assert len(ours) == manifest["num_keys"]


def _dcn_reference(x, raw, weight, bias, groups):
    """Modulated DCN from its definition (README section 5) with grid_sample, float64.

    offset = raw[:, :18g] (dy at 18g+2k, dx at 18g+2k+1), mask = sigmoid(raw[:, 18g:]) at 9g+k;
    zero outside the image; input channels split into ``groups`` contiguous groups.
    """
    b, c, h, w = x.shape
    cg = c // groups
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    sampled = torch.zeros(b, c, 9, h, w, dtype=x.dtype)
    for g in range(groups):
        for k in range(9):
            i, j = divmod(k, 3)
            py = ys - 1 + i + raw[:, 18 * g + 2 * k]
            px = xs - 1 + j + raw[:, 18 * g + 2 * k + 1]
            grid = torch.stack([2 * px / (w - 1) - 1, 2 * py / (h - 1) - 1], dim=-1)  # align_corners=True
            vals = F.grid_sample(x[:, g * cg:(g + 1) * cg], grid, mode="bilinear", padding_mode="zeros",
                                 align_corners=True)
            mask = torch.sigmoid(raw[:, 18 * groups + 9 * g + k])
            sampled[:, g * cg:(g + 1) * cg, k] = vals * mask[:, None]
    return torch.einsum("ocij,bcijhw->bohw", weight, sampled.view(b, c, 3, 3, h, w)) + bias[None, :, None, None]


def test_modulated_dcn_layout_matches_reference():
    torch.manual_seed(0)
    groups, c = 4, 8
    dcn = ModulatedDeformConv(c, 6, groups).double()
    with torch.no_grad():
        dcn.conv_offset.weight.mul_(20)  # offsets of several pixels, some samples outside the image
        dcn.bias.normal_()
    x = torch.randn(2, c, 7, 9, dtype=torch.float64)
    feat = torch.randn(2, 6, 7, 9, dtype=torch.float64)
    with torch.no_grad():
        raw = dcn.conv_offset(feat)
        assert raw[:, :72].abs().max() > 3
        ours = dcn(x, feat)
        ref = _dcn_reference(x, raw, dcn.weight, dcn.bias, groups)
    assert (ours - ref).abs().max() < 1e-12


def _small_v2() -> VQFRv2:
    model = VQFRv2(base_channels=32, channel_multipliers=(1, 1, 2), code_dim=32, inpfeat_dim=8, num_code=16).double()
    model.load_state_dict(fill_state_dict(model.state_dict()), strict=True)
    return model.eval()


def test_v2_forward_ratios_one_pass():
    """forward_ratios equals forward per ratio; ratio 0 is bitwise the texture image."""
    model = _small_v2()
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 2 - 1
    ratios = (0.0, 0.3, 1.0)
    with torch.no_grad():
        multi = model.forward_ratios(x, ratios)
        assert multi["main_dec"].shape == (3, 1, 3, 16, 16)
        assert torch.equal(multi["main_dec"][0], multi["texture_dec"])
        assert not torch.allclose(multi["main_dec"][2], multi["texture_dec"])
        for r, main in zip(ratios, multi["main_dec"]):
            single = model(x, fidelity_ratio=r)
            assert list(single) == ["enc_feat", "quant_logit", "texture_dec", "main_dec"]
            assert torch.allclose(single["main_dec"], main, rtol=0, atol=1e-12)
    assert multi["enc_feat"].shape == (1, 32, 4, 4) and multi["quant_logit"].shape == (1, 16, 16)


def test_v1_forward_outputs():
    model = VQFRv1(base_channels=32, channel_multipliers=(1, 1, 2), code_dim=32, inpfeat_dim=8, num_code=16).double()
    model.load_state_dict(fill_state_dict(model.state_dict()), strict=True)
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        out = model.eval()(x)
        ignored = model(x, fidelity_ratio=0.7)
    assert list(out) == ["dec", "main_dec"]
    assert out["dec"].shape == out["main_dec"].shape == (1, 3, 16, 16)
    assert torch.equal(out["main_dec"], ignored["main_dec"])
