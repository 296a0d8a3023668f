"""MUSIQ / CLIP-IQA / MANIQA: our columns equal pyiqa's own metric with the same weights on the
same frames; nothing is downloaded; without the files the columns name them; our settings
are pyiqa's defaults for those metric names.

The weight files are random networks written by the tests into the (per-test) weights folder;
the reference is ``pyiqa.create_metric(...)`` loading the same file through pyiqa's loader.
"""
from __future__ import annotations

import socket

import pytest
import torch

pyiqa = pytest.importorskip("pyiqa")

from vfr_bench import paths  # noqa: E402
from vfr_bench.metrics import build_metric  # noqa: E402
from vfr_bench.metrics import iqa  # noqa: E402
from vfr_bench.metrics.base import MetricContext  # noqa: E402

COLUMNS = {"MUSIQ": ("musiq", "musiq_koniq_ckpt-e95806b9.pth"), "CLIP-IQA": ("clipiqa", "RN50.pt"),
           "MANIQA": ("maniqa", "ckpt_koniq10k.pt")}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any download attempt (pyiqa's helper, torch.hub, or any socket) fails the test."""
    def refuse(*a, **k):
        raise AssertionError(f"network access attempted: {a[:2]}")
    import pyiqa.archs.arch_util as arch_util
    import pyiqa.utils.download_util as download_util
    monkeypatch.setattr(download_util, "load_file_from_url", refuse)
    monkeypatch.setattr(arch_util, "load_file_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def frames(n: int = 2, size: int = 256) -> torch.Tensor:
    """[n,3,size,size] smooth random frames in [0,1] that differ from each other."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def weights_file(name: str):
    d = paths.weights_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d / name


class _Holder(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def torchscript_archive(state: dict, path) -> None:
    """Save ``state`` as a TorchScript archive whose ``state_dict()`` is ``state``: the format of
    OpenAI's CLIP files, the only one pyiqa's CLIP loader reads from a path."""
    root = _Holder()
    for key, value in state.items():
        *parents, leaf = key.split(".")
        m = root
        for p in parents:
            if not hasattr(m, p):
                m.add_module(p, _Holder())
            m = getattr(m, p)
        m.register_buffer(leaf, value)
    torch.jit.save(torch.jit.script(root), str(path))


def ours_and_reference(column: str, x: torch.Tensor, reference) -> tuple[list[float], list[float]]:
    m = build_metric(column)
    assert m.unavailable_reason() is None and not m.needs_gt
    m.setup(torch.device("cpu"))
    s = m.score(MetricContext(x, None, None, x))
    with torch.no_grad():
        want = [float(reference(x[i:i + 1])) for i in range(len(x))]
    assert s.value == pytest.approx(sum(s.per_frame) / len(s.per_frame), rel=1e-12)
    return s.per_frame, want


@pytest.mark.parametrize("column", list(COLUMNS))
def test_missing_weights_name_the_file(column):
    m = build_metric(column)
    assert m.higher_is_better and not m.needs_gt
    why = m.unavailable_reason()
    assert why is not None and COLUMNS[column][1] in why


def test_settings_are_pyiqas_defaults():
    """Our constructor options are pyiqa's default metric options minus the weight choice
    (which our file replaces), so the columns are pyiqa's ``musiq``/``clipiqa``/``maniqa``."""
    from pyiqa.default_model_configs import DEFAULT_CONFIGS
    for model in iqa.MODELS:
        default = dict(DEFAULT_CONFIGS[model]["metric_opts"])
        default.pop("type")
        assert default.pop("pretrained", "koniq10k") == "koniq10k"  # MUSIQ: the KonIQ head
        assert default.pop("train_dataset", "koniq") == "koniq"      # MANIQA: the KonIQ checkpoint
        ours = {k: v for k, v in iqa.MODEL_OPTS[model].items() if k not in ("model_type", "backbone")}
        assert ours == default, model
    assert iqa.MODEL_OPTS["clipiqa"] == {"model_type": "clipiqa", "backbone": "RN50"}  # CLIPIQA's defaults


def test_musiq_equals_pyiqa():
    from pyiqa.archs.musiq_arch import MUSIQ
    torch.manual_seed(0)
    path = weights_file("musiq_koniq_ckpt-e95806b9.pth")
    torch.save(MUSIQ(pretrained=False).state_dict(), path)
    ref = pyiqa.create_metric("musiq", device=torch.device("cpu"), pretrained=False,
                              pretrained_model_path=str(path))
    x = frames(3)
    ours, want = ours_and_reference("MUSIQ", x, ref)
    assert ours == pytest.approx(want, abs=1e-5)
    assert max(want) - min(want) > 1e-4  # the frames get different scores: a non-trivial check


def test_clipiqa_equals_pyiqa(weight_entry):
    weight_entry.unhashed("clip-rn50")  # the test's random file cannot carry OpenAI's sha256
    from pyiqa.archs.clip_model import CLIP
    torch.manual_seed(0)
    # CLIP RN50's architecture (what pyiqa's build_model reads back from the state dict)
    net = CLIP(1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12)
    path = weights_file("RN50.pt")
    torchscript_archive({k: v.half() for k, v in net.state_dict().items()}, path)  # fp16, as OpenAI's file
    del net
    ref = pyiqa.create_metric("clipiqa", device=torch.device("cpu"), backbone=str(path))
    x = frames(2)
    ours, want = ours_and_reference("CLIP-IQA", x, ref)
    assert ours == pytest.approx(want, abs=1e-5)
    assert all(0 < v < 1 for v in ours) and abs(want[0] - want[1]) > 1e-6


@pytest.mark.slow
def test_maniqa_equals_pyiqa(monkeypatch, tmp_path):
    """One 224 crop per frame instead of pyiqa's 20 on both sides (the count goes straight to
    pyiqa's MANIQA; ~2 s a crop here). The reference's ViT trunk is also built without timm's
    download: its weights come from the checkpoint, loaded strict by pyiqa."""
    import pyiqa.archs.maniqa_arch as arch
    monkeypatch.setitem(iqa.MODEL_OPTS, "maniqa", dict(iqa.MODEL_OPTS["maniqa"], test_sample=1))
    torch.manual_seed(0)
    with iqa.timm_without_download(arch):
        sd = {k: v.half() for k, v in arch.MANIQA(pretrained=False, scale=0.8).state_dict().items()}
    torch.save(sd, weights_file("ckpt_koniq10k.pt"))
    torch.save({"params": sd}, tmp_path / "maniqa_params.pt")  # pyiqa's local-file layout
    del sd
    with iqa.timm_without_download(arch):
        ref = pyiqa.create_metric("maniqa", device=torch.device("cpu"), test_sample=1,
                                  pretrained_model_path=str(tmp_path / "maniqa_params.pt"))
    x = frames(2, 240)
    ours, want = ours_and_reference("MANIQA", x, ref)
    assert ours == pytest.approx(want, abs=1e-5)
    assert abs(want[0] - want[1]) > 1e-6
