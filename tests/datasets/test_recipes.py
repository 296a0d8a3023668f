"""Recipes: every YAML loads, declares its paper's ranges, and sampled parameters stay inside them."""
from __future__ import annotations

import pytest

from vfr_bench.config import ConfigError
from vfr_bench.datasets.recipes import in_spec, load_recipe, recipe_names, sample_params
from vfr_bench.registry import UnknownNameError

RECIPES = ["celebv-deblur", "celebv-jpeg", "celebv-x16", "celebv-x4-blur", "celebv-x4-blur-jpeg", "celebv-x8", "vfhq-bfr",
           "vfhq-color", "vfhq-heavy", "vfhq-inpaint", "vfhq-medium", "vfhq-mild"]


def _spec(recipe, op):
    return [s.params for s in recipe.degradations if s.op == op]


def test_the_issue_recipes_exist():
    assert recipe_names() == sorted(RECIPES + ["real"])  # real: align only, tests/datasets/test_real.py


@pytest.mark.parametrize("name", RECIPES)
def test_ranges_honoured_across_50_clip_ids(name):
    r = load_recipe(name)
    assert r.name == name and r.source and r.version >= 1
    checked = 0
    for k in range(50):
        params = sample_params(r, f"clip-{k:03d}", n_frames=6)
        assert [p["op"] for p in params] == [s.op for s in r.degradations]
        for step, p in zip(r.degradations, params):
            for key, spec in step.params.items():
                if key in p:
                    assert in_spec(p[key], spec), f"{name} {step.op}.{key}={p[key]} outside {spec}"
                    checked += 1
    assert checked > 0 or not any(s.params for s in r.degradations)


@pytest.mark.parametrize("name,sigma,noise,crf", [
    ("vfhq-mild", [2, 5], [0, 5], [18, 25]),
    ("vfhq-medium", [5, 10], [5, 10], [25, 35]),
    ("vfhq-heavy", [5, 10], [5, 10], [35, 45]),
])
def test_keep_splits_follow_table_a1(name, sigma, noise, crf):
    r = load_recipe(name)
    assert [s.op for s in r.degradations] == ["blur", "noise", "resize", "noise", "codec"]
    assert _spec(r, "blur")[0]["sigma_x"] == {"uniform": sigma}
    assert [p["sigma"] for p in _spec(r, "noise")] == [{"uniform": noise}] * 2
    assert _spec(r, "resize")[0]["scale"] == 4
    assert _spec(r, "codec")[0]["crf"] == {"randint": crf}
    assert r.degradation == "blind"


def test_flair_splits_declare_their_operators():
    names = ("celebv-x16", "celebv-x8", "celebv-x4-blur", "celebv-x4-blur-jpeg")
    assert {n: load_recipe(n).degradation for n in names} == {
        "celebv-x16": "x16-bicubic", "celebv-x8": "x8-bicubic", "celebv-x4-blur": "x4-gaussian",
        "celebv-x4-blur-jpeg": "x4-gaussian-jpeg"}
    assert [s.op for s in load_recipe("celebv-x4-blur-jpeg").degradations] == ["flair_x4", "noise", "flair_jpeg"]
    assert _spec(load_recipe("celebv-x4-blur-jpeg"), "flair_jpeg")[0]["quality"] == 60
    assert [s.op for s in load_recipe("celebv-x4-blur").degradations] == ["flair_x4", "noise"]


def test_flair_x4_recipe_op_is_flairs_operator():
    """The split's x4 step equals an independent cv2 computation of FLAIR's D (correlation with
    the rotated 9x9 kernel, replicate border, sample offset 1 of each 4x4 cell), and the JPEG
    step is FLAIR's emulation J, so A = J o D of the flair task reproduces the split's LQ."""
    import numpy as np
    import torch
    from vfr_bench.datasets import degradations as D
    from vfr_bench.datasets.recipes import OPS, ClipState
    from vfr_bench.methods.flair.operators import jpeg_roundtrip
    from vfr_bench.methods.flair.x4_kernel import X4_DS_KERNEL
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g, dtype=torch.float64)
    s = ClipState(x.clone())
    OPS["flair_x4"][1](s, {}, g)
    k = torch.from_numpy(np.rot90(np.asarray(X4_DS_KERNEL, np.float32), 2).copy())
    ref = D.kernel_downsample(x, k, 4)
    assert s.x.shape == (2, 3, 16, 16) and float((s.x - ref).abs().max()) < 1e-6
    before = s.x.clone()
    OPS["flair_jpeg"][1](s, {"quality": 60}, g)
    assert torch.equal(s.x, ((jpeg_roundtrip(before * 2 - 1, 60) + 1) / 2).clamp(0, 1))
    assert float((s.x - before).abs().max()) > 1e-3  # JPEG did something


def test_crf_spans_its_range_over_clip_ids():
    """randint ends are inclusive: both ends of CRF [18, 25] are reached over 200 clips."""
    r = load_recipe("vfhq-mild")
    crfs = {sample_params(r, f"c{k}", 2)[-1]["crf"] for k in range(200)}
    assert min(crfs) == 18 and max(crfs) == 25


def test_unknown_recipe_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as e:
        load_recipe("vfhq-mld")
    assert "vfhq-mild" in str(e.value) and "celebv-x8" in str(e.value)


def test_unknown_op_names_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: bad\nversion: 1\nseed: 0\nsource: x\ndegradation: blind\ndata: x\n"
                 "description: x\ndegradations:\n  - {op: sharpen, params: {}}\n")
    with pytest.raises(ConfigError, match="sharpen"):
        load_recipe(str(p))
