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


@pytest.mark.parametrize("n,m,d", [(6, 9, 40), (30, 12, 64), (20, 20, 20)])
def test_frechet_with_fewer_samples_than_dimensions_matches_scipy_sqrtm(n, m, d):
    """The low-rank path (N or M < D, as FID on a small split) against scipy's sqrtm, and the
    D x D path on the same data (gaussian stats -> frechet_from_stats)."""
    from vfr_bench.metrics.fvd import frechet_from_stats, gaussian_stats
    g = np.random.default_rng(n + m + d)
    a = g.normal(size=(n, d)) @ g.normal(size=(d, d))
    b = g.normal(size=(m, d)) * 2.0 + 0.3
    ref = scipy_frechet(a, b)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)
    assert frechet_from_stats(*gaussian_stats(a), *gaussian_stats(b)) == pytest.approx(ref, rel=1e-6)


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


def test_per_clip_fvd_is_the_mean_of_each_clips_distance_and_shares_the_i3d_pass():
    """FVD[per-clip]: each clip's own restored-vs-GT windows, then the mean over clips; a clip of
    fewer than 2 windows is NaN and left out. FVD and FVD[per-clip] call the network once per clip."""
    from vfr_bench.metrics import build_metric
    from vfr_bench.metrics.base import MetricContext

    class Counting(torch.nn.Module):
        calls = 0

        def forward(self, x, rescale=True, resize=True, return_features=False):
            Counting.calls += 1
            return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4)), x.amax(dim=(2, 3, 4))], 1)  # [B,9]

    whole, per = build_metric("FVD"), build_metric("FVD[per-clip]")
    assert per.name == "FVD[per-clip]" and not per.higher_is_better and per.weights == ("i3d",)
    whole.i3d = per.i3d = Counting()
    g = torch.Generator().manual_seed(3)
    s_whole, s_per, refs = [], [], []
    for frames in (48, 64, 20):  # 3, 4 and 1 windows
        gt = torch.rand(frames, 3, 32, 32, generator=g)
        ctx = MetricContext((gt * 0.6 + 0.2 * torch.rand(frames, 3, 32, 32, generator=g)).clamp(0, 1), gt)
        before = Counting.calls
        s_whole.append(whole.score(ctx))
        s_per.append(per.score(ctx))
        assert Counting.calls - before == 2  # pred and gt once, for both columns
        f = s_whole[-1].features
        refs.append(scipy_frechet(f[:, 0], f[:, 1]) if len(f) >= 2 else float("nan"))
    assert [s.extra["windows"] for s in s_per] == [3, 4, 1] and s_per[0].features is None
    assert s_per[0].value == pytest.approx(refs[0], rel=1e-4) and np.isnan(s_per[2].value)
    assert per.reduce(s_per) == pytest.approx(np.mean(refs[:2]), rel=1e-4)
    allf = np.concatenate([s.features for s in s_whole])
    assert whole.reduce(s_whole) == pytest.approx(scipy_frechet(allf[:, 0], allf[:, 1]), rel=1e-4)
    assert per.reduce(s_per) != pytest.approx(whole.reduce(s_whole), rel=1e-3)
