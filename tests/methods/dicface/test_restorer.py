"""The `dicface`, `dicface-color`, `dicface-inpaint` methods: registration, weights, pipeline."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vfr_bench.interface import ClipMeta
from vfr_bench.methods import build_method
from vfr_bench.weights import MissingWeightsError

pytest.importorskip("vfr_bench.methods.codeformer.vqgan_arch")
from vfr_bench.methods.dicface import restorer as dicface_restorer  # noqa: E402
from vfr_bench.methods.dicface.mixture import dirichlet_mean  # noqa: E402
from tests.methods.dicface.test_inference import _tiny_model  # noqa: E402

FILES = {"dicface": "bfr_100k.pth", "dicface-color": "color_100k.pth",
         "dicface-inpaint": "inpainting_100k.pth"}


def _weights_dir() -> Path:
    return Path(os.environ["VFR_BENCH_HOME"]) / "weights"


@pytest.mark.parametrize("name,weights", [("dicface", "dicface-bfr"),
                                          ("dicface-color", "dicface-color"),
                                          ("dicface-inpaint", "dicface-inpaint")])
def test_registered_with_official_settings(name, weights):
    r = build_method(name)
    assert isinstance(r, dicface_restorer.DicFaceRestorer)
    assert r.required_weights() == [weights]
    cfg = r.describe()["config"]
    assert (cfg["w"], cfg["window"], cfg["max_length"]) == (1.0, "official", 10)
    assert {"mixture", "seed", "path"} <= set(cfg)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="multiple of 5"):
        build_method("dicface", {"max_length": 12})
    with pytest.raises(ValueError, match="mixture='argmax' is not allowed; mixture must be one of 'sample', 'mean'"):
        build_method("dicface", {"mixture": "argmax"})


def test_missing_weights_name_the_file():
    with pytest.raises(MissingWeightsError, match=r"inpainting_100k\.pth"):
        build_method("dicface-inpaint").prepare()


def test_checkpoint_without_params_ema_is_rejected():
    _weights_dir().mkdir(parents=True, exist_ok=True)
    torch.save({"params": {}}, _weights_dir() / FILES["dicface"])
    with pytest.raises(KeyError, match="params_ema"):
        build_method("dicface").prepare()


def test_restore_pipeline_on_a_tiny_network(monkeypatch):
    """Strict params_ema load, resize, [-1,1], official window forward with w=1, clamp, [0,1]."""
    net = _tiny_model()
    monkeypatch.setattr(dicface_restorer, "DicFace", _tiny_model)
    monkeypatch.setattr(dicface_restorer.DicFaceRestorer, "net_size", 64)
    _weights_dir().mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": net.state_dict()}, _weights_dir() / FILES["dicface"])
    r = build_method("dicface", {"mixture": "mean"}).prepare()

    torch.manual_seed(0)
    lq = torch.rand(3, 3, 32, 32)
    pred = r.restore(lq, ClipMeta("clip", 25.0, (48, 48)))

    x = F.interpolate(lq, size=(64, 64), mode="bilinear", align_corners=False) * 2 - 1
    ref = []
    with torch.no_grad():
        for s in range(3):  # official max_length 10: output s is position 0 of [s..s+4]
            frames = [min(s + j, 2) for j in range(5)]
            ref.append(net(x[frames], w=1.0, mix_fn=dirichlet_mean)[0][:1])
    ref = (torch.cat(ref).clamp(-1, 1) + 1) / 2
    ref = F.interpolate(ref, size=(48, 48), mode="bilinear", align_corners=False).clamp(0, 1)
    assert pred.shape == (3, 3, 48, 48) and pred.dtype == torch.float32
    assert torch.allclose(pred, ref, atol=1e-5)
    assert float(pred.std()) > 0
