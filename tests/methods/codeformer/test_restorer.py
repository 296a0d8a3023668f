"""The `codeformer` method: registration, weight handling and the per-frame pipeline."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vfr_bench.fill import fill_state_dict
from vfr_bench.interface import ClipMeta
from vfr_bench.methods import build_method
from vfr_bench.methods.codeformer.arch import CodeFormer
from vfr_bench.methods.codeformer.restorer import NET_ARGS, CodeFormerRestorer
from vfr_bench.weights import MissingWeightsError


def _weights_file() -> Path:
    return Path(os.environ["VFR_BENCH_HOME"]) / "weights" / "codeformer.pth"


def test_registered_with_official_defaults():
    r = build_method("codeformer")
    assert isinstance(r, CodeFormerRestorer)
    assert (r.config.w, r.config.adain) == (0.5, True)  # inference_codeformer.py defaults
    assert r.required_weights() == ["codeformer"]
    assert build_method("codeformer", {"w": 0.9}).config.w == 0.9


def test_missing_weights_name_file_and_fetch_command():
    with pytest.raises(MissingWeightsError, match=r"codeformer\.pth.*vfr-bench weights fetch codeformer"):
        build_method("codeformer").prepare()


def test_checkpoint_without_params_ema_is_rejected():
    _weights_file().parent.mkdir(parents=True)
    torch.save({"params": {}}, _weights_file())
    with pytest.raises(KeyError, match="params_ema"):
        build_method("codeformer").prepare()


@pytest.mark.slow
def test_restore_matches_official_pipeline_with_filled_checkpoint():
    """Strict load of params_ema, resize to 512, [-1,1], net(x, w, adain=True), clamp, back to [0,1]."""
    net = CodeFormer(**NET_ARGS)
    sd = fill_state_dict(net.state_dict(), dtype=torch.float32)
    _weights_file().parent.mkdir(parents=True)
    torch.save({"params_ema": sd}, _weights_file())
    r = build_method("codeformer", {"w": 0.7, "batch_size": 1}).prepare()

    torch.manual_seed(0)
    lq = torch.rand(2, 3, 128, 128)
    pred = r.restore(lq, ClipMeta("clip", 25.0, (512, 512)))

    net.load_state_dict(sd)
    net.eval()
    with torch.no_grad():
        x = F.interpolate(lq, size=(512, 512), mode="bilinear", align_corners=False) * 2 - 1
        ref = (net(x, w=0.7, adain=True)[0].clamp(-1, 1) + 1) / 2
    assert pred.shape == (2, 3, 512, 512) and pred.dtype == torch.float32
    assert torch.allclose(pred, ref, atol=1e-5)
    assert 0 < float(pred.std())  # the filled network does not collapse to a constant
