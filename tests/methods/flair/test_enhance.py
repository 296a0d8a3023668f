"""FLAIR enhancement module: face nets vs manifests, detection post-processing, alignment,
crop/paste geometry, no-face frames, RFE weights."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from tests.helpers import load_manifest, manifest_shapes, max_abs, state_dict_shapes
from vfr_bench.face_geometry import FFHQ_512
from vfr_bench.methods.flair import face_nets
from vfr_bench.methods.flair.face_mask import face_blend_mask
from vfr_bench.methods.flair.enhance import (CROP_BORDER, FaceEnhancer, WindowFaces, crop_faces,
                                             rfe_weights, template_affine)


def _no_download(*args, **kwargs):
    raise AssertionError(f"a download was triggered: {args} {kwargs}")


@pytest.fixture
def no_downloads(monkeypatch):
    import facexlib.utils
    import torch.hub
    import torchvision.models._api as tv_api
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    monkeypatch.setattr(tv_api, "load_state_dict_from_url", _no_download)
    monkeypatch.setattr(facexlib.utils, "load_file_from_url", _no_download)


@pytest.mark.parametrize("manifest_name,build", [
    ("manifest_retinaface_resnet50.json", face_nets.build_retinaface),
    ("manifest_parsenet.json", face_nets.build_parsenet),
])
def test_face_nets_match_manifests(conformance_dir, no_downloads, manifest_name, build):
    manifest = load_manifest(conformance_dir / "flair" / manifest_name)
    net = build()
    ours, ref = state_dict_shapes(net), manifest_shapes(manifest)
    assert list(ours) == list(ref) and ours == ref
    assert all(v.dtype == torch.float32 for v in net.state_dict().values() if v.is_floating_point())


class _FakeRetina(nn.Module):
    """RetinaFace stand-in: zero regressions (boxes = priors) and chosen prior scores."""

    def __init__(self, scores: dict[int, float], landm_shift: float = 0.0):
        super().__init__()
        from facexlib.detection.retinaface import generate_config
        self.cfg = generate_config("resnet50")
        self.p = nn.Parameter(torch.zeros(1))
        self.scores, self.landm_shift, self.seen = scores, landm_shift, None

    def forward(self, x):
        self.seen = x.clone()
        from facexlib.detection.retinaface_utils import PriorBox
        n = PriorBox(self.cfg, image_size=x.shape[-2:]).forward().shape[0]
        conf = torch.zeros(x.shape[0], n, 2)
        conf[..., 0] = 1
        for i, s in self.scores.items():
            conf[:, i] = torch.tensor([1 - s, s])
        landm = torch.zeros(x.shape[0], n, 10)
        landm[..., 0::2] = torch.linspace(-1, 1, 5) * self.landm_shift  # spread the 5 x's
        return torch.zeros(x.shape[0], n, 4), conf, landm


def test_detection_colour_quirk_threshold_and_largest_face():
    from facexlib.detection.retinaface_utils import PriorBox
    # 64x64: level 0 (step 8) has 8x8 cells x 2 anchors (16, 32 px); level 2 (step 32) 256/512 px
    cfg = _FakeRetina({}).cfg
    priors = PriorBox(cfg, image_size=(64, 64)).forward()
    small, big, weak = 0, 128 + 32 + 1, 2  # a 16 px box, a 512 px box (clipped: whole frame), 0.4
    net = _FakeRetina({small: 0.9, big: 0.6, weak: 0.4}, landm_shift=2.0)
    frames = torch.zeros(2, 3, 64, 64)
    frames[:, 0] = 10.0  # R
    frames[:, 2] = 200.0  # B
    out = face_nets.RetinaFaceLandmarks(net)(frames)
    # RGB data minus the BGR-ordered mean (official quirk)
    assert torch.equal(net.seen[:, 0], torch.full((2, 64, 64), 10.0 - 104))
    assert torch.equal(net.seen[:, 2], torch.full((2, 64, 64), 200.0 - 123))
    assert len(out) == 2 and out[0].shape == (5, 2) and out[0].dtype == np.float32
    # the largest clipped box wins over the higher score; landmarks decoded around its prior
    cx, cy, w, h = priors[big].tolist()
    expect_x = (cx + 0.1 * np.linspace(-2, 2, 5) * w) * 64
    assert np.allclose(out[0][:, 0], expect_x, atol=1e-4) and np.allclose(out[0][:, 1], cy * 64)
    # eye distance: with landm_shift=0 all points coincide (0 px) -> no face
    net0 = _FakeRetina({small: 0.9, big: 0.6})
    assert face_nets.RetinaFaceLandmarks(net0)(frames) == [None, None]
    assert face_nets.RetinaFaceLandmarks(_FakeRetina({weak: 0.4}, 2.0))(frames) == [None, None]


def test_template_affine_matches_opencv_on_known_similarity():
    m_true = np.array([[0.5 * np.cos(0.2), -0.5 * np.sin(0.2), 30.0],
                       [0.5 * np.sin(0.2), 0.5 * np.cos(0.2), 12.0]])  # crop -> frame
    lms = FFHQ_512 @ m_true[:, :2].T + m_true[:, 2]
    m = template_affine(lms)  # frame -> crop
    back = lms @ m[:, :2].T + m[:, 2]
    assert np.abs(back - FFHQ_512).max() < 1e-3


class _Identity(nn.Module):
    """CodeFormer stand-in: returns its input (optionally shifted)."""

    def __init__(self, shift=0.0):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.shift, self.calls = shift, []

    def forward(self, x, w=None, adain=None):
        self.calls.append((x.shape[0], w, adain))
        return (x + self.shift, None, None)


class _AllFace(nn.Module):
    """ParseNet stand-in: class 1 (skin) everywhere."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 19, *x.shape[-2:], dtype=x.dtype)
        logits[:, 1] = 1
        return logits, None


def _face_frame(sample_split, size=256):
    from vfr_bench.datasets.splits import frame_files
    path = frame_files(sample_split.clips[0].gt)[0]
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(img).permute(2, 0, 1).double() / 255 * 2 - 1


def test_crop_paste_geometry_and_no_face_frame(sample_split):
    """Identity 'CodeFormer', all-face parse: the blend returns the input where the mask is 1,
    up to the bicubic crop + inverse-warp error; the no-face frame is returned unchanged."""
    face = _face_frame(sample_split)  # 256x256, FFHQ-aligned astronaut
    grey = torch.zeros_like(face)
    x0 = torch.stack([face, grey, face.flip(-1)])
    lms = FFHQ_512 / 2  # frame (256) -> crop (512): scale 2
    cf = _Identity()
    calls = []

    def landmarks(frames):
        calls.append(frames.shape)
        return [lms, None, lms]

    enh = FaceEnhancer(cf, _AllFace(), landmarks)
    faces = enh.locate(x0)
    assert faces.found == [0, 2] and faces.missing == [1] and calls == [(3, 3, 256, 256)]
    out = enh(x0, faces)
    assert cf.calls == [(2, 1.0, True)]  # the faces only, w=1.0, adain=True
    assert torch.equal(out[1], x0[1])
    # where the warped mask is 1 (the blurred all-face mask is 1 well inside the crop); at
    # scale 2 the crop's even pixels are the frame's pixels, so the round trip is exact
    inner = torch.zeros(256, 256, dtype=torch.bool)
    inner[60:196, 60:196] = True  # crop pixels 120..392, > 110 px from its border
    err = max(max_abs(out[i][:, inner], x0[i][:, inner]) for i in (0, 2))
    assert err < 1e-6, err  # measured 6.0e-8 (float32 0..255 round trip)
    # a rotated, non-integer scale alignment: bicubic there and back (cv2 INTER_CUBIC)
    a, sc = 0.15, 0.45  # crop -> frame similarity
    rot = sc * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    lms2 = FFHQ_512 @ rot.T + np.array([20.0, 15.0])
    faces2 = FaceEnhancer(cf, _AllFace(), lambda f: [lms2]).locate(x0[:1])
    out2 = enh(x0[:1], faces2)
    m = face_blend_mask(torch.ones(1, 512, 512, dtype=torch.long))[0, 0].numpy()
    back = cv2.warpAffine(m, cv2.invertAffineTransform(faces2.matrices[0]), (256, 256),
                          flags=cv2.INTER_LINEAR)
    full = torch.from_numpy(back > 1 - 1e-9)
    assert int(full.sum()) > 5000
    err2 = max_abs(out2[0][:, full], x0[0][:, full])
    print("paste error", err, err2)
    assert err2 < 0.08, err2  # measured 5.5e-2 (two bicubic resamplings of a sharp photo)
    support = cv2.dilate((m > 0).astype(np.float32), np.ones((9, 9), np.uint8))  # cubic taps
    far = cv2.warpAffine(support, cv2.invertAffineTransform(faces2.matrices[0]), (256, 256),
                         flags=cv2.INTER_LINEAR)
    blend_free = torch.from_numpy(far == 0)
    assert int(blend_free.sum()) > 5000
    assert torch.equal(out2[0][:, blend_free], x0[0][:, blend_free])  # outside the mask: x0

    # the crop with the face shifted by 20 px: scale-2 bicubic, facexlib's grey outside the frame
    shifted = template_affine(lms - 20)  # crop (0,0) <- frame (-20,-20)
    crops = crop_faces(x0[:1], [shifted])
    assert crops.shape == (1, 3, 512, 512)
    grey_px = torch.tensor(CROP_BORDER, dtype=torch.float64) / 255 * 2 - 1
    assert max_abs(crops[0, :, :30, :30], grey_px.view(3, 1, 1).expand(3, 30, 30)) < 1e-6
    # crop pixel u <- frame pixel u/2 - 20: at even u the bicubic weights are (0,1,0,0)
    assert max_abs(crops[0, :, 40::2, 40::2], x0[0, :, :236, :236]) < 1e-6


@pytest.mark.slow
def test_enhancement_moves_face_pixels_with_real_nets(sample_split):
    """CodeFormer and ParseNet with the deterministic fill on a face frame at 512: the face
    region changes, pixels far outside the mask and the no-face frame do not."""
    from vfr_bench.fill import fill_state_dict
    from vfr_bench.methods.codeformer.arch import CodeFormer
    from vfr_bench.methods.codeformer.restorer import NET_ARGS
    cf, pn = CodeFormer(**NET_ARGS), face_nets.build_parsenet()
    cf.load_state_dict(fill_state_dict(cf.state_dict(), torch.float32))
    pn.load_state_dict(fill_state_dict(pn.state_dict(), torch.float32))
    face = _face_frame(sample_split, 512).float()
    x0 = torch.stack([face, torch.zeros_like(face)])
    enh = FaceEnhancer(cf.eval(), pn.eval(), lambda f: [FFHQ_512, None])
    faces = enh.locate(x0)
    out = enh(x0, faces)
    assert out.shape == x0.shape and out.dtype == x0.dtype
    assert torch.equal(out[1], x0[1])
    assert bool((out >= -1).all() and (out <= 1).all())
    # the mask is zero on the crop's 10-px border, i.e. on the frame's border here (identity)
    assert torch.equal(out[0, :, :8], x0[0, :, :8])
    changed = (out[0] - x0[0]).abs().amax(0) > 1e-3
    assert int(changed.sum()) > 0


def test_rfe_weights_background_from_parse():
    class Halves(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            logits = torch.zeros(x.shape[0], 19, *x.shape[-2:])
            logits[..., :, : x.shape[-1] // 2][:, 0] = 1  # left half background
            logits[..., :, x.shape[-1] // 2:][:, 3] = 1
            return logits, None

    w = rfe_weights(Halves(), torch.zeros(4, 3, 8, 8), 0.93)
    assert w.shape == (1, 4, 1, 8, 8)
    assert bool((w[..., :4] == 0.93).all()) and bool((w[..., 4:] == 1).all())


def test_window_faces_positions():
    f = WindowFaces([np.eye(2, 3), None, None, np.eye(2, 3)])
    assert f.found == [0, 3] and f.missing == [1, 2]
