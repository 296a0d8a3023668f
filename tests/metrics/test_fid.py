"""FID / KID / FID[ref]: split reductions against scipy's sqrtm Fréchet distance and a pair-by-pair
unbiased polynomial-kernel MMD; KID's subsets equal torch-fidelity's; the Inception network loads
from our weights folder only; reference statistics files; the bench path through stored features."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch

from tests.helpers import REPO, make_split
from vfr_bench import paths
from vfr_bench.metrics import build_metric
from vfr_bench.metrics import fid as F
from vfr_bench.metrics.base import ClipScore, MetricContext
from vfr_bench.metrics.fvd import frechet_distance


def scipy_frechet_stats(mu1, s1, mu2, s2) -> float:
    """The textbook formula with scipy.linalg.sqrtm (independent reference)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def scipy_frechet(a, b) -> float:
    return scipy_frechet_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def mmd2_pairwise(x, y) -> float:
    """Unbiased MMD^2 written out pair by pair: k(a,b) = (a.b/d + 1)^3, i != j within each set."""
    m, d = len(x), x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def clip_features(seed: int, lengths=(7, 9, 6), d: int = 12) -> list[np.ndarray]:
    """Per-clip [T,2,d] float32 features (restored, GT), the layout stored beside each clip."""
    g = np.random.default_rng(seed)
    mix = g.normal(size=(d, d))
    return [np.stack([g.normal(size=(t, d)) @ mix + 0.3, np.abs(g.normal(size=(t, d)) @ mix)], 1).astype(np.float32)
            for t in lengths]


def scores_of(feats) -> list[ClipScore]:
    return [ClipScore(float("nan"), None, {"frames": len(f)}, f) for f in feats]


# --- the split reductions ------------------------------------------------------------------

def test_fid_reduce_pools_clips_and_equals_scipy_frechet():
    feats = clip_features(0)
    allf = np.concatenate(feats).astype(np.float64)
    ref = scipy_frechet(allf[:, 0], allf[:, 1])
    assert ref > 1.0
    assert build_metric("FID").reduce(scores_of(feats)) == pytest.approx(ref, rel=1e-6)
    assert np.isnan(build_metric("FID").reduce([])) and np.isnan(build_metric("FID").reduce(scores_of([feats[0][:1]])))


def test_kid_below_subset_size_is_the_unbiased_mmd_of_all_frames():
    feats = clip_features(1, lengths=(5, 6))
    allf = np.concatenate(feats).astype(np.float64)
    ref = mmd2_pairwise(allf[:, 0], allf[:, 1])
    assert abs(ref) > 1e-3
    assert build_metric("KID").reduce(scores_of(feats)) == pytest.approx(ref, rel=1e-9)
    assert F.mmd2_polynomial(allf[:, 0], allf[:, 0]) == pytest.approx(
        mmd2_pairwise(allf[:, 0], allf[:, 0]), abs=1e-9)


def test_kid_subsets_equal_torch_fidelity_and_each_subset_the_pairwise_mmd():
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric
    g = np.random.default_rng(2)
    x, y = g.normal(size=(40, 8)), g.normal(size=(35, 8)) * 1.3 + 0.2
    ours = F.kernel_inception_distance(x, y, subsets=6, subset_size=10)
    tf = kid_features_to_metric(torch.from_numpy(x), torch.from_numpy(y), kid_subsets=6, kid_subset_size=10,
                                kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                kid_kernel_poly_coef0=1, rng_seed=2020, verbose=False)[KEY_METRIC_KID_MEAN]
    assert ours == pytest.approx(tf, rel=1e-9)
    rng = np.random.RandomState(2020)  # torch-fidelity's draws, written out
    per = []
    for _ in range(6):
        ix, iy = rng.choice(40, 10, replace=False), rng.choice(35, 10, replace=False)
        per.append(mmd2_pairwise(x[ix], y[iy]))
    assert ours == pytest.approx(np.mean(per), rel=1e-9)


def write_npz_stats(path, mu, sigma):
    np.savez(path, mu=mu, sigma=sigma)
    return path


@pytest.mark.parametrize("lengths", [(7, 9, 6), (3, 4)])  # more and fewer frames than dimensions
def test_fid_ref_against_npz_and_vqfr_style_pth_stats(lengths, tmp_path, monkeypatch):
    monkeypatch.setattr(F, "DIM", 12)
    feats = clip_features(3, lengths)
    g = np.random.default_rng(4)
    real = g.normal(size=(50, 12)) * 0.7
    mu, sigma = real.mean(0), np.cov(real, rowvar=False)
    pred = np.concatenate(feats)[:, 0].astype(np.float64)
    ref = scipy_frechet_stats(pred.mean(0), np.cov(pred, rowvar=False), mu, sigma)
    npz = write_npz_stats(tmp_path / "ffhq.npz", mu, sigma)
    pth = tmp_path / "inception_FFHQ_512.pth"
    torch.save({"name": "FFHQ", "size": 512, "mean": mu, "cov": sigma}, pth)  # basicsr's layout
    for path in (npz, pth):
        m = build_metric("FID[ref]", ref_stats=path)
        assert not m.needs_gt  # runs on splits without GT too
        assert "weights-inception" in m.unavailable_reason()  # the file was read: only the network is missing
        stored = [ClipScore(float("nan"), None, {}, f[:, 0]) for f in feats]  # FID[ref] stores restored only
        assert m.reduce(stored) == pytest.approx(ref, rel=1e-6)


def test_fid_ref_without_or_with_a_bad_file_is_unavailable_with_the_reason(tmp_path, monkeypatch):
    assert "--fid-ref" in build_metric("FID[ref]").unavailable_reason()
    assert "not found" in build_metric("FID[ref]", ref_stats=tmp_path / "nope.npz").unavailable_reason()
    np.savez(tmp_path / "keys.npz", m=np.zeros(3))
    assert "no mu/sigma or mean/cov" in build_metric("FID[ref]", ref_stats=tmp_path / "keys.npz").unavailable_reason()
    write_npz_stats(tmp_path / "small.npz", np.zeros(3), np.eye(3))
    assert "(2048,)" in build_metric("FID[ref]", ref_stats=tmp_path / "small.npz").unavailable_reason()
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert "cannot read" in build_metric("FID[ref]", ref_stats=tmp_path / "junk.pth").unavailable_reason()
    assert build_metric("FID", ref_stats=tmp_path / "junk.pth").reference == "gt"  # the option is FID[ref]'s only


def test_bench_with_an_unreadable_fid_ref_is_one_line_exit_2(tmp_path):
    g = np.random.default_rng(0)
    split = make_split(tmp_path / "tiny", {"a": (g.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8),
                                                 g.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8))})
    r = subprocess.run([sys.executable, "-m", "vfr_bench.cli", "bench", "--method", "lq-upsample", "--split",
                        str(split), "--out", str(tmp_path / "res"), "--accelerator", "cpu", "--no-wandb",
                        "--fid-ref", str(tmp_path / "missing.npz")],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "--fid-ref" in r.stderr and "missing.npz" in r.stderr


# --- the network ---------------------------------------------------------------------------

@pytest.fixture
def inception_file(monkeypatch):
    """A random-weight torch-fidelity Inception state dict written as our weights file (no download:
    the test builds the network without loading, takes its state dict, saves it)."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe
    with monkeypatch.context() as mp:
        mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None)
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    wdir = paths.weights_dir()
    wdir.mkdir(parents=True, exist_ok=True)
    path = wdir / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return path


def test_missing_weights_name_the_file_and_the_registry_lists_url_and_license():
    from vfr_bench import weights as W
    for name in ("FID", "KID"):
        why = build_metric(name).unavailable_reason()
        assert why is not None and "weights-inception-2015-12-05-6726825d.pth" in why and "torch-fidelity" in why
    e = W.get("inception-fid")
    assert e.url == "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + e.filename
    assert "Apache-2.0" in e.license and "TensorFlow" in e.license and not e.manual


def test_network_loads_from_our_folder_never_downloads(inception_file, monkeypatch):
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    def no_download(*a, **k):
        raise AssertionError("torch-fidelity tried to download its weights")
    monkeypatch.setattr(fe, "load_state_dict_from_url", no_download)
    net = F.build_inception()
    sd = torch.load(inception_file, weights_only=True)
    assert all(torch.equal(v, sd[k]) for k, v in net.state_dict().items())
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 64, 64, generator=g)
    f = F.inception_features(gt, net)
    assert f.shape == (2, 2048) and f.dtype == np.float32 and np.isfinite(f).all()
    # uint8 RGB input, as torch-fidelity expects: the float frames equal their 8-bit levels
    assert np.array_equal(F.inception_features((gt * 255).round() / 255, net), f)


def test_fid_kid_score_store_features_and_reduce_through_records(inception_file, tmp_path):
    """score -> features written beside the clip record -> reloaded -> reduce (the summary's path)."""
    from vfr_bench.metrics.base import SharedNetworks
    from vfr_bench.results import ClipRecord, read_features, write_record
    nets = SharedNetworks()
    fid, kid = build_metric("FID").setup(torch.device("cpu"), nets), build_metric("KID").setup(torch.device("cpu"), nets)
    assert fid.inception is kid.inception  # one network for both columns
    g = torch.Generator().manual_seed(1)
    stored = []
    for k, t in enumerate((2, 1)):
        gt = torch.rand(t, 3, 48, 48, generator=g)
        ctx = MetricContext((gt * 0.7 + 0.1).clamp(0, 1), gt)
        s_fid, s_kid = fid.score(ctx), kid.score(ctx)
        assert s_fid.features.shape == (t, 2, 2048) and np.array_equal(s_fid.features, s_kid.features)
        assert np.isnan(s_fid.value) and "inception:pred" in ctx._cache
        rec = ClipRecord(clip_id=f"c{k}", run={}, provenance={}, status="ok")
        write_record(tmp_path, rec, {"FID": s_fid.features, "KID": s_kid.features})
        stored.append(read_features(tmp_path, f"c{k}"))
    allf = np.concatenate([d["FID"] for d in stored]).astype(np.float64)
    fid_v = fid.reduce(scores_of([d["FID"] for d in stored]))
    assert fid_v == pytest.approx(frechet_distance(allf[:, 0], allf[:, 1]), rel=1e-9) and fid_v > 0
    assert kid.reduce(scores_of([d["KID"] for d in stored])) == pytest.approx(mmd2_pairwise(allf[:, 0], allf[:, 1]),
                                                                              rel=1e-6)
    same = fid.score(MetricContext(gt[:1], gt[:1].clone())).features
    assert np.array_equal(same[:, 0], same[:, 1])


def test_bench_writes_fid_kid_and_fid_ref_from_the_stored_features(inception_file, tmp_path):
    """run_bench with --fid-ref: FID[ref] joins the metrics, every clip's features are stored beside
    its record, and the leaderboard values are the reductions of those stored features."""
    import pandas as pd

    from tests.helpers import run_dir
    from vfr_bench.bench import BenchOptions, run_bench
    from vfr_bench.metrics.fvd import frechet_distance_to_stats
    from vfr_bench.results import read_features
    g = np.random.default_rng(0)
    frames = lambda n, s: g.integers(0, 255, (n, s, s, 3), dtype=np.uint8)  # noqa: E731
    split = make_split(tmp_path / "tiny", {"a": (frames(2, 8), frames(2, 32)), "b": (frames(1, 8), frames(1, 32))})
    real = g.normal(size=(3000, 2048)).astype(np.float32) * 0.01  # stats of a made-up reference set
    ref = write_npz_stats(tmp_path / "ref.npz", real.mean(0), np.cov(real[:40], rowvar=False) + np.eye(2048) * 1e-4)
    rc = run_bench(BenchOptions(methods=["lq-upsample"], split=str(split), out=tmp_path / "res", progress=False,
                                accelerator="cpu", wandb="off", previews=0, metrics=["FID", "KID"], fid_ref=ref),
                   log=lambda *_: None)
    assert rc == 0
    row = pd.read_csv(tmp_path / "res" / "leaderboard.csv").iloc[0]
    rd = run_dir(tmp_path / "res", "lq-upsample", "tiny")
    stored = [read_features(rd, c) for c in ("a", "b")]
    assert [sorted(d) for d in stored] == [["FID", "FID[ref]", "KID"]] * 2
    pairs = np.concatenate([d["FID"] for d in stored]).astype(np.float64)
    assert row["FID"] == pytest.approx(frechet_distance(pairs[:, 0], pairs[:, 1]), rel=1e-6)
    assert row["KID"] == pytest.approx(mmd2_pairwise(pairs[:, 0], pairs[:, 1]), rel=1e-6)
    mu, sigma = F.load_reference_stats(ref)
    assert row["FID[ref]"] == pytest.approx(frechet_distance_to_stats(pairs[:, 0], mu, sigma), rel=1e-6)
