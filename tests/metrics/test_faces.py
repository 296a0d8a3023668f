"""face_found: a blank frame is the one without a face (dlib); the batched RetinaFace path decides
as facexlib's own ``detect_faces`` on the same BGR frames. LQ_IDS: equals IDS with the upsampled
input as GT, 1 for the lq-upsample output, scipy's cosine per frame."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cosine

from tests.metrics.conftest import N_FRAMES
from vfr_bench import paths
from vfr_bench.metrics import build_metric
from vfr_bench.metrics.base import MetricContext, SharedNetworks
from vfr_bench.metrics.identity import clip_embeddings


@pytest.fixture(scope="module")
def sample_lq(sample_split) -> torch.Tensor:
    """The raw LQ frames (128 px) matching ``sample_gt``."""
    from vfr_bench.datasets.clips import read_frames, to_tensor
    return to_tensor(read_frames(sample_split.clips[0].lq)[:N_FRAMES])


def weights_dir():
    d = paths.weights_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d


# --- face_found ----------------------------------------------------------------------------
def test_face_found_dlib_misses_only_the_blank_frame(sample_gt):
    clip = sample_gt[:4].clone()
    clip[2] = 0.5  # a blank grey frame
    m = build_metric("face_found[dlib]")
    assert m.unavailable_reason() is None and not m.needs_gt and m.higher_is_better
    s = m.score(MetricContext(clip))
    assert s.per_frame == [1.0, 1.0, 0.0, 1.0]
    assert s.value == 0.75 and s.extra["frames_no_face"] == 1


def test_face_found_retinaface_names_its_file():
    why = build_metric("face_found[retinaface]").unavailable_reason()
    assert why is not None and "detection_Resnet50_Final.pth" in why


def test_face_found_retinaface_decides_as_facexlib(sample_gt):
    """A random-weight RetinaFace written by the test, its face-class head scaled down and shifted
    so that threshold 0.5 falls between the two frames' best scores: one frame has a face, the
    other not, and our batched path (BGR 0..255 on the metric device) agrees with facexlib's
    per-image ``detect_faces(bgr_uint8, conf_threshold=0.5)`` on each."""
    from vfr_bench.methods.flair.face_nets import build_retinaface
    torch.manual_seed(0)
    net = build_retinaface()
    face = torch.nn.functional.interpolate(sample_gt[:1], size=(256, 256), mode="area")[0]
    face = (face * 255).round() / 255  # 8-bit levels: facexlib reads uint8 frames
    # the face and its red/blue-swapped copy: a path that fed RGB where BGR is due would swap
    # the two decisions
    frames = torch.stack([face, face.flip(0)])
    bgr = [np.ascontiguousarray((f.flip(0).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)) for f in frames]

    def best_logit():
        with torch.no_grad():
            s = [float(net.detect_faces(b, conf_threshold=0.0)[0, 4]) for b in bgr]
        return [np.log(v / (1 - v)) for v in s]

    with torch.no_grad():
        for head in net.ClassHead:
            head.conv1x1.weight.mul_(1e-2)
            head.conv1x1.bias.zero_()
        d = best_logit()
        assert abs(d[0] - d[1]) > 0.05, d
        for head in net.ClassHead:
            head.conv1x1.bias[1::2] -= (d[0] + d[1]) / 2  # face logit: threshold between the frames
    torch.save(net.state_dict(), weights_dir() / "detection_Resnet50_Final.pth")
    with torch.no_grad():
        want = [len(net.detect_faces(b, conf_threshold=0.5)) > 0 for b in bgr]
    assert sorted(want) == [False, True]
    m = build_metric("face_found[retinaface]")
    assert m.unavailable_reason() is None
    m.setup(torch.device("cpu"), SharedNetworks())
    s = m.score(MetricContext(frames))
    assert s.per_frame == [float(w) for w in want]


# --- LQ_IDS --------------------------------------------------------------------------------
def test_lq_ids_dlib_equals_ids_with_upsampled_input_as_gt(sample_gt, sample_lq, sample_lq_up):
    m = build_metric("LQ_IDS[dlib]")
    assert m.unavailable_reason() is None and not m.needs_gt and m.higher_is_better
    ctx = MetricContext(sample_gt, None, None, sample_lq)
    s = m.score(ctx)
    ids = build_metric("IDS[dlib]").score(MetricContext(sample_gt, sample_lq_up))
    assert s.per_frame == pytest.approx(ids.per_frame, abs=1e-12)
    # scipy on the embeddings the metric used: restored frame vs upsampled input frame
    ep, _ = clip_embeddings(ctx, "pred", "dlib")
    el, _ = clip_embeddings(ctx.cached("context:lq@pred_size", None), "pred", "dlib")
    assert s.per_frame == pytest.approx([1 - cosine(a, b) for a, b in zip(ep, el)], abs=1e-12)
    assert 0.9 < s.value < 1.0


def test_lq_ids_of_the_lq_upsample_output_is_one(sample_lq, sample_lq_up):
    s = build_metric("LQ_IDS[dlib]").score(MetricContext(sample_lq_up, None, None, sample_lq))
    assert s.value == pytest.approx(1.0, abs=1e-12)


def test_lq_ids_arcface_with_test_written_weights(sample_gt, sample_lq, sample_lq_up):
    from vfr_bench.metrics.arcface_arch import ArcFaceIRSE50
    m = build_metric("LQ_IDS[arcface]")
    assert "recognition_arcface_ir_se50.pth" in m.unavailable_reason()
    torch.manual_seed(0)
    torch.save(ArcFaceIRSE50().state_dict(), weights_dir() / "recognition_arcface_ir_se50.pth")
    nets = SharedNetworks()
    m.setup(torch.device("cpu"), nets)
    ids = build_metric("IDS[arcface]").setup(torch.device("cpu"), nets)
    assert ids.arcface is m.arcface
    got = m.score(MetricContext(sample_gt[:3], None, None, sample_lq[:3]))
    want = ids.score(MetricContext(sample_gt[:3], sample_lq_up[:3]))
    assert got.per_frame == pytest.approx(want.per_frame, abs=1e-6)
    assert got.value < 1 - 1e-6  # restored (GT) vs blurry input: not the trivial 1
