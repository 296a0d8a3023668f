"""LPIPS equals lpips.LPIPS(net='alex') called directly, with a test-written AlexNet file (offline)."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torchvision

from vfr_bench import paths, weights
from vfr_bench.metrics import build_metric
from vfr_bench.metrics.base import MetricContext


@pytest.fixture
def alexnet_file(monkeypatch, weight_entry):
    """torchvision AlexNet with seed-0 random weights, saved under the registry's file name
    (random weights cannot carry the release's sha256 prefix: that check is waived here)."""
    weight_entry.unhashed("alexnet")
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None)
    wdir = paths.weights_dir()
    wdir.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), wdir / "alexnet-owt-7be5be79.pth")
    return net


def test_lpips_equals_reference_package(alexnet_file, monkeypatch):
    import lpips
    import lpips.pretrained_networks as pn
    m = build_metric("LPIPS")
    assert m.unavailable_reason() is None

    def no_download(*a, **k):
        raise AssertionError("torchvision tried to download weights")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    m.setup(torch.device("cpu"))
    conv1 = m.model.net.slice1[0].weight
    assert conv1.dim() == 4 and conv1.is_contiguous(memory_format=torch.channels_last)  # the faster layout

    # reference: the package's own LPIPS(net='alex'), whose trunk constructor receives the
    # test's AlexNet instead of downloading torchvision's
    monkeypatch.setattr(pn.tv, "alexnet", lambda *a, **k: alexnet_file)
    ref = lpips.LPIPS(net="alex", verbose=False).eval()

    g = torch.Generator().manual_seed(1)
    gt = torch.rand(3, 3, 64, 64, generator=g)
    pred = (gt + 0.1 * torch.randn(3, 3, 64, 64, generator=g)).clamp(0, 1)
    s = m.score(MetricContext(pred, gt))
    with torch.no_grad():
        want = [float(ref(pred[i:i + 1], gt[i:i + 1], normalize=True)) for i in range(3)]
    assert max(abs(a - b) for a, b in zip(s.per_frame, want)) < 1e-6
    assert s.value == pytest.approx(sum(want) / 3, abs=1e-6)
    assert min(want) > 1e-3  # the frames differ: the comparison is not 0 == 0


def test_lpips_unavailable_names_the_file():
    for name, f in (("LPIPS", "alexnet-owt-7be5be79.pth"), ("LPIPS[vgg]", "vgg16-397923af.pth")):
        why = build_metric(name).unavailable_reason()
        assert why is not None and f in why


def test_filled_trunk_needs_no_file_and_is_deterministic():
    """``trunk="filled"`` (perf only): no weights file, the same fill every time, and the
    trunk really holds it (not torchvision's random init)."""
    from vfr_bench.fill import fill_state_dict
    from vfr_bench.metrics.lpips import LPIPS
    a, b = LPIPS("alex", trunk="filled"), LPIPS("alex", trunk="filled")
    assert build_metric("LPIPS").unavailable_reason() is not None  # no AlexNet file in this home
    assert a.unavailable_reason() is None and a.weights == ()
    a.setup(torch.device("cpu"))
    b.setup(torch.device("cpu"))
    sd = a.model.net.state_dict()
    want = fill_state_dict(sd, torch.float32)
    assert all(torch.equal(sd[k], want[k]) for k in sd)
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 64, 64, generator=g)
    pred = (gt + 0.1 * torch.randn(2, 3, 64, 64, generator=g)).clamp(0, 1)
    assert a.score(MetricContext(pred, gt)).per_frame == b.score(MetricContext(pred, gt)).per_frame
    with pytest.raises(ValueError, match="trunk"):
        LPIPS("alex", trunk="random")
