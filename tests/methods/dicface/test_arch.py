"""DicFace network structure against the official manifest (fast, no weights computed)."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import load_manifest, manifest_shapes, state_dict_shapes

pytest.importorskip("vfr_bench.methods.codeformer.vqgan_arch")
from vfr_bench.methods.dicface.arch import DicFace, from_temporal, to_temporal  # noqa: E402


def test_state_dict_matches_manifest(conformance_dir):
    manifest = load_manifest(conformance_dir / "dicface" / "manifest.json")
    with torch.device("meta"):
        model = DicFace()
    ours = state_dict_shapes(model)
    theirs = manifest_shapes(manifest)
    assert list(ours) == list(theirs)  # keys and order
    assert ours == theirs
    assert sum(p.numel() for p in model.state_dict().values()) == manifest["num_params"]
    assert not list(model.buffers())


def test_default_taps_are_codeformers():
    with torch.device("meta"):
        model = DicFace()
    assert model.skip_blocks == {"512": 2, "256": 5, "128": 8, "64": 11, "32": 14}
    assert {s: model.fuse_blocks[s] for s in model.connect_list} == {
        "32": 9, "64": 12, "128": 15, "256": 18}


def test_temporal_layout_matches_official_rearrange():
    """'d (b t) c -> t (b d) c' and back, written out element by element."""
    hw, b, t, c = 3, 2, 5, 4
    x = torch.randn(hw, b * t, c)
    y = to_temporal(x, t)
    for d in range(hw):
        for bi in range(b):
            for ti in range(t):
                assert torch.equal(y[ti, bi * hw + d], x[d, bi * t + ti])
    assert torch.equal(from_temporal(y, b), x)
