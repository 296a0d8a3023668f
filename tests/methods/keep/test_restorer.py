"""The `keep` method: registration, weight handling, and the pipeline around the network."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vfr_bench.interface import ClipMeta
from vfr_bench.methods import build_method
from vfr_bench.methods.keep.restorer import KeepRestorer, is_gray
from vfr_bench.weights import MissingWeightsError, WeightsMismatchError


def _weights_file() -> Path:
    return Path(os.environ["VFR_BENCH_HOME"]) / "weights" / "KEEP-a1a14d46.pth"


class ScaleNet(nn.Module):
    """Stands in for KEEP: out = 1.5 * x (exercises the clamp); records every chunk."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))
        self.calls: list[torch.Tensor] = []
        self.max_batch_frames: list = []

    def forward(self, x, need_upscale=True, max_batch_frames=None):
        assert need_upscale is False and x.dim() == 5 and x.shape[1] >= 2
        self.calls.append(x.clone())
        self.max_batch_frames.append(max_batch_frames)
        return 1.5 * x


def test_registered_with_official_defaults():
    r = build_method("keep")
    assert isinstance(r, KeepRestorer)
    assert r.config.max_length == 20  # inference_keep.py --max_length default
    assert r.required_weights() == ["keep"]
    assert build_method("keep", {"max_length": 8}).config.max_length == 8
    assert r.config.max_batch_frames is None  # the official forward: the whole chunk per call


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="max_length must be >= 1"):
        build_method("keep", {"max_length": 0})
    with pytest.raises(ValueError, match="max_batch_frames must be >= 1"):
        build_method("keep", {"max_batch_frames": 0})


def test_max_batch_frames_reaches_the_network():
    for value in (None, 1):
        r = build_method("keep", {"max_length": 3, "max_batch_frames": value})
        r.attach({"net": ScaleNet()})
        r.restore(torch.rand(4, 3, 16, 16), ClipMeta("clip", 25.0, (16, 16)))
        assert r.net.max_batch_frames == [value, value]


def test_missing_weights_name_file_and_fetch_command():
    with pytest.raises(MissingWeightsError, match=r"KEEP-a1a14d46\.pth.*vfr-bench weights fetch keep"):
        build_method("keep").prepare()


def test_file_with_wrong_hash_is_rejected():
    _weights_file().parent.mkdir(parents=True)
    torch.save({}, _weights_file())
    with pytest.raises(WeightsMismatchError, match="a1a14d46"):
        build_method("keep").prepare()


def test_restore_pipeline_chunks_range_and_rounding():
    r = build_method("keep", {"max_length": 3})
    r.net = ScaleNet()
    torch.manual_seed(0)
    lq = torch.rand(7, 3, 64, 64)
    pred = r.restore(lq, ClipMeta("clip", 25.0, (512, 512)))
    assert [c.shape[1] for c in r.net.calls] == [3, 3, 2]  # [0,3) [3,6) and frame 6 duplicated
    x = F.interpolate(lq, size=(512, 512), mode="bilinear", align_corners=False) * 2 - 1
    assert torch.allclose(r.net.calls[2][0, 0], x[6]) and torch.allclose(r.net.calls[2][0, 1], x[6])
    ref = torch.round((torch.clamp(1.5 * x, -1, 1) + 1) / 2 * 255) / 255
    assert pred.shape == (7, 3, 512, 512) and pred.dtype == torch.float32
    assert torch.allclose(pred, ref, atol=1e-6)


def test_gray_input_gives_gray_output():
    torch.manual_seed(0)
    colour = torch.rand(1, 3, 32, 32)
    gray = colour[:, :1].expand(1, 3, 32, 32)
    assert is_gray(torch.cat([gray, colour])).tolist() == [True, False]
    r = build_method("keep", {"max_length": 20})
    r.net = ScaleNet()
    pred = r.restore(torch.cat([gray, colour]), ClipMeta("clip", 25.0, (32, 32)))
    assert torch.equal(pred[0, 0], pred[0, 1]) and torch.equal(pred[0, 1], pred[0, 2])
    assert not torch.equal(pred[1, 0], pred[1, 1])
