"""User study: export -> a blind simulated participant -> score round trip, byte-identical exports for a
seed, Wilson intervals against the quadratic they solve, Bradley-Terry against known strengths and a
direct maximum-likelihood fit."""
from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import norm

from tests.helpers import REPO, make_split
from vfr_bench import study
from vfr_bench.cli import main
from vfr_bench.datasets.sources import read_video
from vfr_bench.results import ClipRecord, write_record

METHODS_DIR = Path(__file__).parent / "study_methods"
CLIPS = [f"c{i}" for i in range(4)]


@pytest.fixture(autouse=True)
def _darken(monkeypatch):
    monkeypatch.setenv("VFR_BENCH_METHODS", str(METHODS_DIR))


@pytest.fixture
def tiny(tmp_path):
    g = np.random.default_rng(0)
    clips = {c: (g.integers(60, 200, (3, 32, 32, 3), dtype=np.uint8),
                 g.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)) for c in CLIPS}
    return make_split(tmp_path / "tiny", clips)


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _export(tiny, out, seed=0, **kw):
    return study.export(str(tiny), ["lq-upsample", "darken"], out, seed=seed, progress=False, log=lambda *_: None, **kw)


def _blind_participant(out: Path) -> Path:
    """Fills pairs.csv from the videos alone: picks the brighter side (darken halves the brightness)."""
    rows = list(csv.DictReader(open(out / "study" / "pairs.csv")))
    for r in rows:
        v = read_video(out / "study" / "clips" / f"{r['pair_id']}.mp4").astype(np.float64)
        half = v.shape[2] // 2
        r["choice"] = "left" if v[:, :, :half].mean() > v[:, :, half:].mean() else "right"
    votes = out / "votes.csv"
    with open(votes, "w", newline="") as f:
        w = csv.DictWriter(f, ["pair_id", "choice"])
        w.writeheader()
        w.writerows(rows)
    return votes


def test_export_score_round_trip(tiny, tmp_path, capsys):
    out = tmp_path / "study"
    res = _export(tiny, out)
    assert len(res.pairs) == len(CLIPS)  # 4 clips x 1 method pair
    assert sorted(p.name for p in out.iterdir()) == ["key.csv", "study", "study.json"]
    assert sorted(p.name for p in (out / "study").iterdir()) == ["README.txt", "clips", "pairs.csv"]
    key = list(csv.DictReader(open(out / "key.csv")))
    assert sorted(k["clip_id"] for k in key) == CLIPS
    assert all({k["left"], k["right"]} == {"lq-upsample", "darken"} for k in key)
    v = read_video(out / "study" / "clips" / "p001.mp4")
    assert v.shape == (3, 64, 128, 3)  # same 3 frames, two 64 px outputs side by side
    votes = _blind_participant(out)
    s = study.score(votes, out / "key.csv", n_boot=200)
    row = s.pairs.iloc[0]
    assert (row.method_a, row.method_b, row.n) == ("darken", "lq-upsample", 4) and row.wins_a == 0
    z2 = norm.ppf(0.975) ** 2
    assert row.ci_low == 0 and row.ci_high == pytest.approx(z2 / (4 + z2))  # Wilson for 0 of 4
    assert list(s.ranking.method) == ["lq-upsample", "darken"] and s.ranking.strength.iloc[0] == pytest.approx(1.0)
    assert main(["study", "score", str(votes), str(out / "key.csv"), "--n-boot", "50"]) == 0
    text = capsys.readouterr().out
    assert "4 answered votes (0 unanswered)" in text and "Bradley-Terry" in text and "Wilson" in text


def test_same_seed_is_byte_identical_other_seed_differs(tiny, tmp_path):
    a = _hashes(_export(tiny, tmp_path / "a").out)
    assert a == _hashes(_export(tiny, tmp_path / "b").out)
    assert len([k for k in a if k.endswith(".mp4")]) == 4
    c = _hashes(_export(tiny, tmp_path / "c", seed=1).out)
    assert c["key.csv"] != a["key.csv"] and any(c[k] != a[k] for k in a if k.endswith(".mp4"))


def test_reproducible_encoder_at_a_width_where_libx264_simd_was_not(tmp_path):
    """These 320 px wide frames gave 4 different files in 4 one-thread libx264 encodes with its
    SIMD on (2026-11-30); ``reproducible`` also turns the SIMD off."""
    from skimage.data import astronaut

    from vfr_bench.datasets import degradations as D
    from vfr_bench.datasets import sample_real
    from vfr_bench.video_io import write_mp4
    gen = D.clip_generator(0, "astronaut-real-00")
    params = sample_real._draw_params(gen)
    frames = sample_real.render_clip(astronaut(), params, gen)
    digests = {hashlib.sha256(write_mp4(tmp_path / f"{i}.mp4", frames, 25, crf=18, reproducible=True).read_bytes())
               .hexdigest() for i in range(4)}
    assert len(digests) == 1


def test_results_restrict_to_clips_every_method_finished(tiny, tmp_path):
    from vfr_bench.datasets.splits import read_split
    split = read_split(tiny)
    results = tmp_path / "res"
    for m, done in (("lq-upsample", ["c0", "c1", "c2"]), ("darken", ["c1", "c2", "c3"])):
        for c in done:
            write_record(study.run_dir(results, m, split), ClipRecord(c, "ok", {"split_sha256": split.manifest_sha256}))
    write_record(study.run_dir(results, "darken", split),
                 ClipRecord("c0", "failed", {"split_sha256": split.manifest_sha256}))
    res = _export(tiny, tmp_path / "out", results=results)
    assert sorted(p.clip_id for p in res.pairs) == ["c1", "c2"]
    with pytest.raises(study.StudyError, match="no clip of split tiny is finished"):
        _export(tiny, tmp_path / "none", results=tmp_path / "empty")


def test_plan_pairs_is_seeded_and_order_free():
    a = study.plan_pairs(CLIPS, ["c", "a", "b"], 7, seed=3)
    assert a == study.plan_pairs(CLIPS, ["a", "b", "c"], 7, seed=3) and len(a) == 7
    assert len({(p.clip_id, frozenset((p.left, p.right))) for p in a}) == 7  # distinct comparisons
    assert any(p.left < p.right for p in a) and any(p.left > p.right for p in a)  # sides drawn
    with pytest.raises(study.StudyError, match="choose 1..12"):
        study.plan_pairs(CLIPS, ["a", "b", "c"], 13, seed=0)


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "VFR_BENCH_METHODS": str(METHODS_DIR), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vfr_bench.cli", *args], capture_output=True, text=True, env=env)


def test_cli_errors_are_one_line(tiny, tmp_path):
    one = _cli("study", "export", "--split", str(tiny), "--methods", "lq-upsample", "--out", str(tmp_path / "o"))
    assert one.returncode == 2 and "Traceback" not in one.stderr
    assert one.stderr.strip() == "vfr-bench: error: a pairwise study needs at least two methods, got lq-upsample"
    unknown = _cli("study", "export", "--split", str(tiny), "--methods", "lq-upsample,darkn",
                   "--out", str(tmp_path / "o"))
    assert unknown.returncode == 2 and "Did you mean darken" in unknown.stderr and "Traceback" not in unknown.stderr
    key = tmp_path / "key.csv"
    key.write_text("pair_id,clip_id,left,right\np001,c0,a,b\n")
    votes = tmp_path / "votes.csv"
    votes.write_text("pair_id,choice\np001,up\n")
    bad = _cli("study", "score", str(votes), str(key))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == f"vfr-bench: error: {votes}: line 2: choice 'up' is not left or right"


# --- statistics ----------------------------------------------------------------------------------

@pytest.mark.parametrize("k,n", [(8, 10), (0, 7), (7, 7), (37, 120), (1, 2)])
def test_wilson_interval_solves_the_score_equation(k, n):
    """Wilson's bounds are the roots in p of (k/n - p)^2 = z^2 p (1 - p) / n."""
    z = norm.ppf(0.975)
    ph = k / n
    roots = np.sort(np.roots([1 + z * z / n, -(2 * ph + z * z / n), ph * ph]).real)
    assert study.wilson_interval(k, n) == pytest.approx(tuple(roots), abs=1e-12)


def test_wilson_interval_hand_computed():
    lo, hi = study.wilson_interval(8, 10)  # z = 1.959964: (0.8 + 0.19207) / 1.38415 -/+ 0.22630
    assert lo == pytest.approx(0.49016, abs=1e-5) and hi == pytest.approx(0.94331, abs=1e-5)
    assert all(np.isnan(study.wilson_interval(0, 0)))


def _simulate(strength, per_pair, seed):
    rng = np.random.default_rng(seed)
    m = len(strength)
    wins = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            w = rng.binomial(per_pair, strength[i] / (strength[i] + strength[j]))
            wins[i, j], wins[j, i] = w, per_pair - w
    return wins


def test_bradley_terry_recovers_known_strengths_and_is_the_mle():
    true = np.array([0.45, 0.3, 0.15, 0.1])
    wins = _simulate(true, 600, seed=1)
    p = study.bradley_terry(wins)
    assert list(np.argsort(-p)) == [0, 1, 2, 3] and p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(p, true, rtol=0.12)

    def nll(theta):  # direct maximum likelihood on log-strengths
        s = np.exp(theta)
        return -sum(wins[i, j] * np.log(s[i] / (s[i] + s[j])) for i in range(4) for j in range(4) if i != j)
    theta = minimize(nll, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(p, np.exp(theta) / np.exp(theta).sum(), rtol=1e-5)


def test_bootstrap_interval_covers_the_truth(tmp_path):
    true = np.array([0.6, 0.3, 0.1])
    wins = _simulate(true, 150, seed=2)
    names = ["m0", "m1", "m2"]
    key, votes = [["pair_id", "clip_id", "left", "right"]], [["pair_id", "choice"]]
    k = 0
    for i in range(3):
        for j in range(3):
            for _ in range(int(wins[i, j])):
                k += 1
                key.append([f"p{k}", "c", names[i], names[j]])
                votes.append([f"p{k}", "left" if k % 2 else "L"])
    for path, rows in (("key.csv", key), ("votes.csv", votes)):
        with open(tmp_path / path, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    s = study.score(tmp_path / "votes.csv", tmp_path / "key.csv", seed=0, n_boot=300)
    assert list(s.ranking.method) == names
    for _, r in s.ranking.iterrows():
        t = true[names.index(r.method)]
        assert r.ci_low <= t <= r.ci_high and r.ci_low < r.strength < r.ci_high
    again = study.score(tmp_path / "votes.csv", tmp_path / "key.csv", seed=0, n_boot=300)
    assert again.ranking.equals(s.ranking)


def test_a_bad_output_is_a_one_line_error_naming_method_and_clip(tiny, tmp_path, monkeypatch):
    import torch
    from tests.study_methods.darken import Darken
    monkeypatch.setattr(Darken, "restore", lambda self, lq, meta: torch.full((len(lq), 3, *meta.gt_size), 2.0))
    with pytest.raises(study.StudyError, match=r"darken on clip c\d: output range \[2, 2\] is outside \[0, 1\]"):
        _export(tiny, tmp_path / "out")
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["tiny"]
