"""FVD: the Fréchet distance against scipy's sqrtm reference; split-level reduction from stored features."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from vfr_bench.metrics.base import ClipScore
from vfr_bench.metrics.fvd import FVD, clip_windows, frechet_distance


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy.linalg.sqrtm (independent reference)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("n,d", [(200, 32), (64, 16)])
def test_frechet_matches_scipy_sqrtm(n, d):
    g = np.random.default_rng(n)
    mix = g.normal(size=(d, d))
    a = g.normal(size=(n, d)) @ mix
    b = g.normal(size=(n, d)) @ (mix + 0.3 * g.normal(size=(d, d))) + 0.5
    ours, ref = frechet_distance(a, b), scipy_frechet(a, b)
    assert ref > 1.0
    assert abs(ours - ref) / ref < 1e-3


def test_identical_feature_sets_give_zero():
    a = np.random.default_rng(1).normal(size=(100, 24)) * 3
    assert abs(frechet_distance(a, a)) < 1e-8 * np.trace(np.cov(a, rowvar=False))


def test_reduce_pools_stored_features_over_clips():
    """reduce() pools the per-clip [W,2,D] features (as the summary reloads them from .npz)."""
    g = np.random.default_rng(2)
    clips = [g.normal(size=(w, 2, 8)) + [[0.0], [0.4]] for w in (5, 7, 6)]
    m = FVD()
    scores = [ClipScore(float("nan"), None, {"windows": len(f)}, f) for f in clips]
    allf = np.concatenate(clips)
    assert m.reduce(scores) == pytest.approx(scipy_frechet(allf[:, 0], allf[:, 1]), rel=1e-3)
    assert np.isnan(m.reduce([]))


def test_windows_are_16_frames_at_224_in_minus1_1():
    x = torch.rand(40, 3, 64, 64)
    w = clip_windows(x)
    assert w.shape == (2, 3, 16, 224, 224)
    assert float(w.min()) >= -1 - 1e-6 and float(w.max()) <= 1 + 1e-6
    assert clip_windows(torch.rand(15, 3, 32, 32)).shape[0] == 0


def test_unavailable_without_i3d_names_the_file():
    why = FVD().unavailable_reason()
    assert why is not None and "i3d_torchscript.pt" in why


def test_score_and_compute_with_a_stand_in_detector(monkeypatch):
    """The clip -> windows -> detector -> stored features -> split distance path, with a small
    TorchScript stand-in for I3D written by the test (same call signature)."""
    from vfr_bench import paths
    from vfr_bench.metrics.base import MetricContext

    class StandIn(torch.nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                    return_features: bool = False) -> torch.Tensor:
            assert not rescale and not resize and return_features
            return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], 1)  # [B,6]

    wdir = paths.weights_dir()
    wdir.mkdir(parents=True, exist_ok=True)
    torch.jit.script(StandIn()).save(str(wdir / "i3d_torchscript.pt"))
    m = FVD()
    assert m.unavailable_reason() is None
    m.setup(torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    scores = []
    for k in range(3):
        gt = torch.rand(32, 3, 48, 48, generator=g)
        s = m.score(MetricContext(gt * 0.8, gt))
        assert np.isnan(s.value) and s.features.shape == (2, 2, 6) and s.extra["windows"] == 2
        scores.append(s)
    f = np.concatenate([s.features for s in scores])
    assert m.reduce(scores) == pytest.approx(scipy_frechet(f[:, 0], f[:, 1]), rel=1e-3)
    assert m.reduce(scores) > 0
