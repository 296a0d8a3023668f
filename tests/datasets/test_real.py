"""``vfr-bench degrade --recipe real``: aligned LQ crops of unaligned videos, no GT, faceless clips
skipped with their reason, crops equal an independent re-computation of the official real-video
path (upscale the short side to 512, warp the smoothed landmarks onto the FFHQ-512 template)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.transform import SimilarityTransform

from tests.helpers import REPO
from vfr_bench.align import BORDER_RGB, FFHQ_512, apply_affine
from vfr_bench.datasets import sample_real
from vfr_bench.datasets.build import DegradeError, degrade, verify
from vfr_bench.datasets.clips import read_frames, to_tensor
from vfr_bench.datasets.recipes import load_recipe
from vfr_bench.datasets.sources import read_video
from vfr_bench.datasets.splits import read_split

FACE_IDS = ["talk-a", "talk-b"]


def _points(nested) -> np.ndarray:
    return np.array([[[np.nan if v is None else v for v in p] for p in f] for f in nested], np.float64)


@pytest.fixture(scope="module")
def real_src(tmp_path_factory) -> Path:
    """Two unaligned face videos, one without a face, one frame folder with a face in 8 of 24 frames."""
    src = tmp_path_factory.mktemp("real_src")
    for cid in FACE_IDS:
        sample_real.write_source_clip(src / f"{cid}.mp4", 0, cid)
    sample_real.write_source_clip(src / "empty-room.mp4", 0, "empty-room", face=False)
    face = read_video(src / "talk-a.mp4")
    room = read_video(src / "empty-room.mp4")
    (src / "mostly-away").mkdir()
    for i in range(24):
        f = face[i] if i < 8 else room[i]
        cv2.imwrite(str(src / "mostly-away" / f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return src


@pytest.fixture(scope="module")
def real_split(real_src, tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "split"
    return degrade("real", real_src, out, progress=False, detector="hog")


def test_recipe_means_align_only():
    r = load_recipe("real")
    assert r.degradation == "real" and r.degradations == () and r.name == "real"


def test_manifest_says_no_gt_and_lists_skipped_reasons(real_split):
    m = real_split.manifest
    assert m["gt"] == "none" and m["track"] == "real" and m["degradation"] == "real"
    assert [c["id"] for c in m["clips"]] == FACE_IDS
    reasons = {s["id"]: s["reason"] for s in m["skipped"]}
    assert reasons["empty-room"] == "no face found in any frame"
    n = sum(m["clips"][0]["alignment"]["found"][:8])  # the same 8 frames of talk-a
    assert n >= 6 and reasons["mostly-away"].startswith(f"face found in only {n} of 24 frames")
    split = read_split(real_split.root)
    assert not split.has_gt and split.track == "real"
    for c in split.clips:
        assert c.gt is None and c.n_frames == 24 and c.fps == 25
        assert read_frames(c.lq).shape == (24, 512, 512, 3)
        assert not (c.lq.parent / "gt").exists()
    for c in m["clips"]:
        a = c["alignment"]
        assert c["gt"] is None and a["backend"] == "dlib-hog" and a["n_found"] == sum(a["found"]) >= 20
        assert np.array(a["matrices"]).shape == (24, 2, 3) and len(a["landmarks"]) == 24
    assert verify(real_split.root) == []


def test_synthetic_splits_keep_their_manifest_fields(sample_split):
    assert sample_split.has_gt and sample_split.track == "synthetic" and "gt" not in sample_split.manifest
    assert all(c.gt is not None for c in sample_split.clips)


def test_crops_equal_an_independent_official_path(real_split, real_src):
    """Upscale the frame (cv2, short side 512), fit the similarity with skimage (least squares) on
    the recorded smoothed landmarks in the upscaled frame, warp with the facexlib grey border."""
    split = read_split(real_split.root)
    entry = real_split.manifest["clips"][0]
    frames = read_video(real_src / f"{entry['id']}.mp4")
    f = 512 / 240
    assert entry["alignment"]["prescale"] == pytest.approx(f)
    smoothed = _points(entry["alignment"]["smoothed"])[:, :3]
    crops = read_frames(split.clips[0].lq)
    for t in (0, 11, 23):
        up = cv2.resize(frames[t], (0, 0), fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
        assert up.shape[:2] == (512, 683)
        lm_up = (smoothed[t] + 0.5) * f - 0.5
        m = SimilarityTransform.from_estimate(lm_up, FFHQ_512[:3]).params[:2]
        ref = cv2.warpAffine(up, m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=BORDER_RGB)
        diff = np.abs(ref.astype(int) - crops[t].astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99  # landmarks are recorded to 1e-3 px
        # the recorded matrix maps the original frame's landmarks where the upscaled fit maps them
        rec = np.array(entry["alignment"]["matrices"][t])
        np.testing.assert_allclose(apply_affine(rec, smoothed[t]), apply_affine(m, lm_up), atol=5e-3)


def test_lq_upsample_returns_the_aligned_crop_unchanged(real_split):
    from vfr_bench.interface import ClipMeta
    from vfr_bench.methods import build_method
    clip = read_split(real_split.root).clips[0]
    lq = to_tensor(read_frames(clip.lq, 4))
    out = build_method("lq-upsample").prepare("cpu").restore(lq, ClipMeta(clip.id, clip.fps, (512, 512),
                                                                          degradation="real"))
    assert torch.equal(out, lq)


def test_no_usable_clip_is_an_error_and_writes_nothing(real_src, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    os.symlink(real_src / "empty-room.mp4", src / "empty-room.mp4")
    with pytest.raises(DegradeError, match="no usable clip .*empty-room: no face found in any frame"):
        degrade("real", src, tmp_path / "out", progress=False, detector="hog")
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == [src]


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vfr_bench.cli", *args], capture_output=True, text=True, env=env)


def test_cli_skips_faceless_video_and_fails_in_one_line_when_nothing_is_usable(real_src, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("talk-b.mp4", "empty-room.mp4"):
        os.symlink(real_src / name, src / name)
    ok = _cli("degrade", "--recipe", "real", "--src", str(src), "--out", str(tmp_path / "real"),
              "--detector", "hog", "--no-progress")
    assert ok.returncode == 0, ok.stderr
    assert "1 clips, 1 skipped" in ok.stdout and "skipped empty-room: no face found in any frame" in ok.stdout
    assert "Traceback" not in ok.stderr and not read_split(tmp_path / "real").has_gt
    (src / "talk-b.mp4").unlink()
    bad = _cli("degrade", "--recipe", "real", "--src", str(src), "--out", str(tmp_path / "none"),
               "--detector", "hog", "--no-progress")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfr-bench: error: no usable clip in ")
    assert "empty-room: no face found in any frame" in lines[0] and not (tmp_path / "none").exists()


def test_detector_reads_frames_from_png_folders(real_src):
    """read_frames returns a BGR->RGB flipped view (negative stride); dlib found no face in it
    before Dlib5Detector made it contiguous."""
    from vfr_bench.align import build_detector
    flipped = read_frames(real_src / "mostly-away", 2)
    assert flipped.strides[-1] < 0
    det = build_detector("hog")
    for f in flipped:
        lm = det(f)
        assert np.isfinite(lm[:3]).all()
        np.testing.assert_array_equal(lm, det(np.ascontiguousarray(f)))
