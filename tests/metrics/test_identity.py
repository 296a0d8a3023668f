"""IDS / sigma_IDS: self-similarity 1 for both backends; dlib ranks another person below a
degraded copy; our IR-SE50 equals facexlib's network; the template warp equals cv2's."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vfr_bench import paths
from vfr_bench.metrics import build_metric
from vfr_bench.metrics.arcface_arch import ArcFaceIRSE50
from vfr_bench.metrics.base import MetricContext, SharedNetworks
from vfr_bench.metrics.identity import template_to_arcface, warp_affine


def test_ids_dlib_of_a_clip_with_itself_is_one(sample_gt):
    ctx = MetricContext(sample_gt, sample_gt.clone())
    s = build_metric("IDS[dlib]").score(ctx)
    assert s.value == pytest.approx(1.0, abs=1e-5)
    assert s.extra["frames_no_face"] == 0 and len(s.per_frame) == len(sample_gt)
    assert build_metric("sigma_IDS[dlib]").score(ctx).value == pytest.approx(0.0, abs=1e-3)  # x1e-2
    # the embeddings reuse the dlib68 landmarks of the same context (no second pass)
    assert "landmarks[dlib68,template]:pred" in ctx._cache


def test_ids_dlib_other_person_below_degraded_self(sample_gt, conformance_dir):
    """GT vs another real face (the conformance input clip) scores lower than GT vs its own x4-degraded copy."""
    path = conformance_dir / "input_clip.npz"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    with np.load(path) as z:
        other = torch.from_numpy(z["frames"]).permute(0, 3, 1, 2).float() / 255.0
    n = min(len(other), len(sample_gt))
    gt = sample_gt[:n]
    small = torch.nn.functional.interpolate(gt, scale_factor=0.25, mode="bicubic", antialias=True)
    degraded = torch.nn.functional.interpolate(small, size=gt.shape[-2:], mode="bicubic").clamp(0, 1)
    m = build_metric("IDS[dlib]")
    own = m.score(MetricContext(degraded, gt)).value
    foreign = m.score(MetricContext(other[:n], gt)).value
    assert foreign < own, (foreign, own)


def test_arcface_arch_equals_facexlib_network():
    """Same keys (and order) as facexlib's Backbone(50, 0.6, 'ir_se'), same output with the same weights."""
    from facexlib.recognition.arcface_arch import Backbone
    ref, ours = Backbone(50, 0.6, "ir_se").eval(), ArcFaceIRSE50().eval()
    assert [(k, v.shape) for k, v in ref.state_dict().items()] == \
        [(k, v.shape) for k, v in ours.state_dict().items()]
    torch.manual_seed(0)
    sd = ArcFaceIRSE50().state_dict()  # random init (running stats at identity)
    ref.load_state_dict(sd, strict=True)
    ours.load_state_dict(sd, strict=True)
    x = torch.rand(1, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-6)


def test_template_warp_matches_cv2():
    img = np.random.default_rng(0).uniform(0, 1, size=(512, 512, 3)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 3)  # smooth, so rounding of sample positions does not matter
    m = template_to_arcface(512, 512)
    ref = cv2.warpAffine(img, m, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    ours = warp_affine(torch.from_numpy(img).permute(2, 0, 1)[None], m, 112)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - ref).max() < 2e-3


def test_ids_arcface_with_test_written_weights(sample_gt):
    """A random-weight IR-SE50 file written by the test: the metric loads it and IDS(clip, clip) = 1."""
    m = build_metric("IDS[arcface]")
    assert "recognition_arcface_ir_se50.pth" in m.unavailable_reason()
    wdir = paths.weights_dir()
    wdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(ArcFaceIRSE50().state_dict(), wdir / "recognition_arcface_ir_se50.pth")
    assert m.unavailable_reason() is None
    nets = SharedNetworks()
    m.setup(torch.device("cpu"), nets)
    sigma = build_metric("sigma_IDS[arcface]").setup(torch.device("cpu"), nets)
    assert sigma.arcface is m.arcface  # one network for both columns
    clip = sample_gt[:2]  # IR-SE50 costs ~2 s a frame on a busy 2-core CPU
    ctx = MetricContext(clip, clip.clone())
    s = m.score(ctx)
    assert s.value == pytest.approx(1.0, abs=1e-5)
    assert sigma.score(ctx).value < 1e-3  # shares ctx's embeddings
    other = m.score(MetricContext(torch.flip(clip[:1], dims=[-1, -2]), clip[:1])).value
    assert other < 1.0 - 1e-4  # a different input gives a different embedding


def test_deg_is_the_per_frame_embedding_angle_from_the_shared_embeddings(sample_gt, monkeypatch):
    """Deg.[dlib] per frame = acos(IDS per frame) in degrees (math.acos reference), the clip value
    their mean; it reuses the embeddings IDS computed on the same context (no second pass)."""
    import math

    from vfr_bench.metrics import identity
    clip = sample_gt[:3]
    small = torch.nn.functional.interpolate(clip, scale_factor=0.25, mode="bicubic", antialias=True)
    degraded = torch.nn.functional.interpolate(small, size=clip.shape[-2:], mode="bicubic").clamp(0, 1)
    ctx = MetricContext(degraded, clip)
    ids = build_metric("IDS[dlib]").score(ctx)

    def second_pass(*a):
        raise AssertionError("Deg. computed the embeddings again")
    deg_metric = build_metric("Deg.[dlib]")
    assert deg_metric.higher_is_better is False
    with monkeypatch.context() as mp:
        mp.setattr(identity, "dlib_embeddings", second_pass)
        deg = deg_metric.score(ctx)
    ref = [math.degrees(math.acos(min(1.0, s))) for s in ids.per_frame]
    assert deg.per_frame == pytest.approx(ref, abs=1e-9)
    assert deg.value == pytest.approx(sum(ref) / len(ref), abs=1e-9) and deg.value > 0.1
    assert deg.extra == {"frames_no_face": 0}
    same = build_metric("Deg.[dlib]").score(MetricContext(clip, clip.clone()))
    assert same.value == pytest.approx(0.0, abs=0.05)  # acos near 1 amplifies rounding: 1e-7 -> 0.03 deg


def test_embedding_angle_handles_rounding_and_missing_faces():
    from vfr_bench.metrics.identity import embedding_angle
    out = embedding_angle(np.array([1.0 + 1e-12, 0.0, -1.0, np.nan]))
    assert out[:3] == pytest.approx([0.0, 90.0, 180.0]) and np.isnan(out[3])
