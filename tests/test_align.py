"""Face alignment: known similarity transforms are recovered, temporal smoothing removes
landmark jitter, missing frames are interpolated, crops paste back."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from vfr_bench import align as A


def sim(scale: float, deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a o b for 2x3 affine matrices."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


@pytest.fixture(scope="module")
def moving_clip():
    """Astronaut photo moved by a known similarity per frame (scale, rotation, shift)."""
    from skimage.data import astronaut
    photo = astronaut()
    transforms = [sim(2.3 + 0.1 * k, -8 + 3 * k, -240 + 10 * k, -40 - 6 * k) for k in range(6)]
    frames = np.stack([cv2.warpAffine(photo, s, (640, 640), flags=cv2.INTER_CUBIC,
                                      borderMode=cv2.BORDER_REFLECT_101) for s in transforms])
    return photo, transforms, frames


def test_estimate_similarity_is_exact_on_similar_points():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (5, 2))
    m = sim(1.7, 23.0, 12.0, -40.0)
    assert np.abs(A.estimate_similarity(src, A.apply_affine(m, src)) - m).max() < 1e-9
    assert np.abs(A.apply_affine(A.invert_affine(m), A.apply_affine(m, src)) - src).max() < 1e-9


def test_recovers_known_transforms_with_the_dlib_detector(moving_clip):
    """Landmarks of the photo, carried by each frame's known transform and then by the
    recovered alignment, land where the photo's own alignment puts them (< 2 px at 512)."""
    photo, transforms, frames = moving_clip
    det = A.build_detector("hog")
    ref_landmarks = det(photo)  # photo coordinates
    assert np.isfinite(ref_landmarks[:3]).all()
    photo_align = A.estimate_similarity(ref_landmarks, A.FFHQ_512)
    res = A.align_clip(frames, detector=det, sigma=0)
    assert res.backend == "dlib-hog" and res.faces.shape == (6, 512, 512, 3)
    target = A.apply_affine(photo_align, ref_landmarks[:3])
    for s, m in zip(transforms, res.matrices):
        got = A.apply_affine(m, A.apply_affine(s, ref_landmarks[:3]))
        assert np.linalg.norm(got - target, axis=1).max() < 2.0
    # The crops show the same aligned face: frame t's crop against the photo's crop.
    ref_crop = A.warp_faces(photo[None], photo_align[None])[0].astype(np.float64)
    for crop in res.faces:
        diff = crop[128:384, 128:384].astype(np.float64) - ref_crop[128:384, 128:384]
        assert 10 * np.log10(255 ** 2 / np.mean(diff ** 2)) > 24


def test_given_landmarks_skip_the_detector(moving_clip, monkeypatch):
    photo, transforms, frames = moving_clip
    monkeypatch.setattr(A, "build_detector", lambda *a, **k: pytest.fail("detector used"))
    ref = A.FFHQ_512 / 3 + 150  # any 5 points in photo coordinates
    given = np.stack([A.apply_affine(s, ref) for s in transforms])
    res = A.align_clip(frames, landmarks=given, sigma=0)
    assert res.backend == "annotation"
    expected = [compose(A.estimate_similarity(ref, A.FFHQ_512), A.invert_affine(s)) for s in transforms]
    assert np.abs(res.matrices - np.stack(expected)).max() < 1e-6


def test_smoothing_removes_injected_jitter():
    """Frame-to-frame variance of the aligned (true) landmarks drops >= 5x with sigma 5."""
    t = np.arange(60)
    rng = np.random.default_rng(1)
    truth = np.stack([A.apply_affine(sim(1.0 + 0.05 * np.sin(0.05 * k), 5 * np.sin(0.04 * k),
                                         100 + 20 * np.sin(0.03 * k), 80 + 10 * np.cos(0.05 * k)),
                                     A.FFHQ_512 / 2) for k in t])
    jittered = truth + rng.normal(0, 1.5, truth.shape)
    frames = np.zeros((60, 64, 64, 3), np.uint8)

    def jitter(sigma):
        m = A.align_clip(frames, landmarks=jittered, sigma=sigma, size=512).matrices
        aligned = np.stack([A.apply_affine(mm, p) for mm, p in zip(m, truth)])
        return np.var(np.diff(aligned, axis=0))

    raw, smooth = jitter(0), jitter(A.SMOOTH_SIGMA)
    assert raw > 5 * smooth, (raw, smooth)


def test_smoothing_uses_gaussian_filter1d_reflect():
    from scipy.ndimage import gaussian_filter1d
    x = np.random.default_rng(2).normal(size=(30, 5, 2))
    assert np.allclose(A.smooth_tracks(x, 5), gaussian_filter1d(x, 5, axis=0, mode="reflect"))


def test_missing_frames_are_interpolated():
    lm = np.stack([A.FFHQ_512 + k for k in range(5)])
    lm[[0, 2]] = np.nan
    lm[:, 3:] = np.nan  # mouth never seen (dlib 5-point): stays NaN
    out = A.interpolate_missing(lm)
    assert np.allclose(out[:, :3], np.stack([A.FFHQ_512[:3] + max(k, 1) for k in range(5)]))
    assert np.isnan(out[:, 3:]).all()
    with pytest.raises(A.NoFaceError):
        A.interpolate_missing(np.full((4, 5, 2), np.nan))


def test_paste_back_restores_the_face_region(moving_clip):
    _, transforms, frames = moving_clip
    res = A.align_clip(frames[:2], landmarks=np.stack([A.apply_affine(s, A.FFHQ_512 / 3 + 150)
                                                      for s in transforms[:2]]), sigma=0)
    pasted = A.paste_back(frames[:2], res.faces, res.matrices)
    centre = A.apply_affine(A.invert_affine(res.matrices[0]), np.array([[256.0, 256.0]]))[0].astype(int)
    win = (slice(centre[1] - 60, centre[1] + 60), slice(centre[0] - 60, centre[0] + 60))
    diff = pasted[0][win].astype(float) - frames[0][win].astype(float)
    assert 10 * np.log10(255 ** 2 / np.mean(diff ** 2)) > 30
    assert pasted.shape == frames[:2].shape


def test_import_loads_no_dlib():
    code = "import sys, vfr_bench.align; assert 'dlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_retinaface_backend_loads_strict_and_returns_five_points(tmp_path, monkeypatch):
    """With (here randomly initialised) weights present, ``auto`` picks RetinaFace; the detector
    loads them strictly and answers [5,2] (NaN when nothing passes facexlib's 0.97 threshold)."""
    import torch
    from facexlib.detection.retinaface import RetinaFace
    from vfr_bench import weights
    torch.manual_seed(0)
    path = tmp_path / "detection_Resnet50_Final.pth"
    net = RetinaFace(network_name="resnet50", half=False, device=torch.device("cpu"))
    state = {f"module.{k}": v for k, v in net.state_dict().items()}  # the release's DataParallel keys
    monkeypatch.setattr(weights, "is_present", lambda name: name == "retinaface-resnet50")
    monkeypatch.setattr(weights, "locate", lambda name: path)

    def load(p, map_location=None, weights_only=False):
        assert p == path and weights_only is True  # read as data (vfr_bench.checkpoint)
        return state

    monkeypatch.setattr(torch, "load", load)
    det = A.build_detector("auto")
    assert det.backend == "retinaface-resnet50"
    out = det(np.full((160, 160, 3), 128, np.uint8))
    assert out.shape == (5, 2)
