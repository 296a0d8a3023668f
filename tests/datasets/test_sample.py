"""The embedded sample split: deterministic bytes, seed-dependent content, a valid manifest."""
from __future__ import annotations

import json

import pytest

from vfr_bench.datasets.sample import N_CLIPS, N_FRAMES, RECIPE, build_sample
from vfr_bench.datasets.splits import read_split, sha256_bytes


def _file_hashes(root):
    """sha256 of every file actually on disk (not what the manifest claims)."""
    return {p.relative_to(root).as_posix(): sha256_bytes(p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_build_twice_is_byte_identical_and_seed_changes_it(tmp_path):
    a = _file_hashes(build_sample(tmp_path / "a", seed=0))
    b = _file_hashes(build_sample(tmp_path / "b", seed=0))
    assert a == b
    c = _file_hashes(build_sample(tmp_path / "c", seed=1))
    lq_files = [k for k in a if "/lq/" in k]
    assert all(a[k] != c[k] for k in lq_files), "another seed must change every LQ frame"
    assert a["manifest.json"] != c["manifest.json"]


def test_manifest_matches_files(sample_split):
    m = sample_split.manifest
    assert len(sample_split.clips) == N_CLIPS
    on_disk = _file_hashes(sample_split.root)
    for clip in m["clips"]:
        assert clip["n_frames"] == N_FRAMES
        assert len(clip["files"]) == 2 * N_FRAMES
        for rel, digest in clip["files"].items():
            assert on_disk[rel] == digest
        p = clip["params"]
        assert RECIPE["blur_sigma"][0] <= p["blur_sigma"] <= RECIPE["blur_sigma"][1]
        assert RECIPE["noise_sigma"][0] <= p["noise_sigma"] <= RECIPE["noise_sigma"][1]
    assert read_split(sample_split.root).manifest_sha256 == sample_split.manifest_sha256
    assert json.loads((sample_split.root / "manifest.json").read_text())["seed"] == 0


def test_clips_differ_in_motion(sample_split):
    motions = [json.dumps(c["params"]["motion"], sort_keys=True) for c in sample_split.manifest["clips"]]
    assert len(set(motions)) == N_CLIPS
