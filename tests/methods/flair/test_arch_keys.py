"""FLAIR networks: state-dict keys, order, shapes and fp16 layout against the manifests.

Models are built on the ``meta`` device (no memory for 413 M parameters).
"""
from __future__ import annotations

import pytest
import torch

from tests.helpers import load_manifest, manifest_shapes, state_dict_shapes
from vfr_bench.methods.flair.checkpoint import shared_module_prefixes
from vfr_bench.methods.flair.spynet_arch import SPyNet
from vfr_bench.methods.flair.unet_new_arch import UNET_NEW_CONFIG, UNetNew
from vfr_bench.methods.flair.unet_sr3_arch import SR3_CONFIG, UNetSR3

CASES = [
    ("manifest_unet_bicubic.json", UNetSR3, SR3_CONFIG),
    ("manifest_unet_blur.json", UNetNew, UNET_NEW_CONFIG),
]


def _meta(cls, cfg):
    with torch.device("meta"):
        return cls(**cfg)


@pytest.mark.parametrize("manifest_name,cls,cfg", CASES)
def test_state_dict_matches_manifest(conformance_dir, manifest_name, cls, cfg):
    manifest = load_manifest(conformance_dir / "flair" / manifest_name)
    model = _meta(cls, cfg)
    ours, ref = state_dict_shapes(model), manifest_shapes(manifest)
    assert list(ours) == list(ref)  # keys and their order
    assert ours == ref
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"]


@pytest.mark.parametrize("manifest_name,cls,cfg", CASES)
def test_config_matches_official_constructor(conformance_dir, manifest_name, cls, cfg):
    official = load_manifest(conformance_dir / "flair" / manifest_name)["constructor"]
    # official-only switches: fp16 (our convert_to_fp16) and the torso dtype
    official = {k: v for k, v in official.items() if k not in ("dtype", "use_fp16")}
    ours = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    assert ours == official


@pytest.mark.parametrize("manifest_name,cls,cfg", CASES)
def test_fp16_layout_matches_manifest_dtypes(conformance_dir, manifest_name, cls, cfg):
    manifest = load_manifest(conformance_dir / "flair" / manifest_name)
    model = _meta(cls, cfg)
    model.convert_to_fp16()
    ours = {k for k, v in model.state_dict().items() if v.dtype == torch.float16}
    ref = {k for k, e in manifest["state_dict"].items() if e["dtype"] == "float16"}
    assert ours == ref
    others = {str(v.dtype) for k, v in model.state_dict().items() if k not in ours}
    assert others == {"torch.float32"}


def test_spynet_matches_manifest(conformance_dir):
    manifest = load_manifest(conformance_dir / "flair" / "manifest_spynet.json")
    spynet = SPyNet()
    assert list(state_dict_shapes(spynet).items()) == list(manifest_shapes(manifest).items())
    for name, values in manifest["buffers"].items():
        if name in ("mean", "std"):
            torch.testing.assert_close(getattr(spynet, name).flatten(), torch.tensor(values))
    assert sum(p.numel() for p in spynet.parameters()) == manifest["num_params"]


@pytest.mark.parametrize("manifest_name,cls,cfg", CASES)
def test_spynet_prefixes_match_manifest(conformance_dir, manifest_name, cls, cfg):
    manifest = load_manifest(conformance_dir / "flair" / manifest_name)
    model = _meta(cls, cfg)
    spynet_keys = list(state_dict_shapes(SPyNet()))
    prefixes = sorted({k[: k.index("spynet.") + len("spynet.")]
                       for k in model.state_dict() if "spynet." in k})
    assert prefixes == sorted(manifest["spynet_prefixes"])
    for p in prefixes:
        assert [k[len(p):] for k in model.state_dict() if k.startswith(p)] == spynet_keys
    shared = shared_module_prefixes(model)
    if len(prefixes) > 1:  # sr3: one instance under every prefix, ups.13 last
        assert shared == [_in_order(model, prefixes)]
        assert shared[0][-1] == "ups.13.vsrpp.wrapped_module.spynet."
    else:
        assert shared == []


def _in_order(model, prefixes):
    keys = list(model.state_dict())
    return sorted(prefixes, key=lambda p: next(i for i, k in enumerate(keys) if k.startswith(p)))
