"""Face geometry: the similarity fit against two independent references (scikit-image's
``SimilarityTransform`` and a linear least-squares solve), exact recovery and round trip,
NaN rows, and the template's scaling to other crop sizes."""
from __future__ import annotations

import numpy as np
import pytest

from vfr_bench.face_geometry import FACE_SIZE, FFHQ_512, estimate_similarity, ffhq_template

# Matrix entries: the linear part is O(1), translations O(100) px; float64 fits agree to ~1e-11.
TOL = 1e-8


def skimage_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    from skimage.transform import SimilarityTransform
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        return SimilarityTransform.from_estimate(src, dst).params[:2]
    t = SimilarityTransform()
    assert t.estimate(src, dst)
    return t.params[:2]


def lstsq_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The same objective, linear in (a, b, tx, ty) for the matrix [[a, -b, tx], [b, a, ty]]:
    no SVD, no reflection possible."""
    n = len(src)
    a = np.zeros((2 * n, 4))
    a[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)]
    a[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(n), np.ones(n)]
    p, q, tx, ty = np.linalg.lstsq(a, dst.reshape(-1), rcond=None)[0]
    return np.array([[p, -q, tx], [q, p, ty]])


def sim(scale: float, deg: float, tx: float, ty: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.array([[scale * np.cos(r), -scale * np.sin(r), tx], [scale * np.sin(r), scale * np.cos(r), ty]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


@pytest.mark.parametrize("seed", range(5))
def test_fit_matches_independent_references_on_noisy_landmarks(seed):
    rng = np.random.default_rng(seed)
    src = apply(sim(0.4 + rng.uniform(), rng.uniform(-40, 40), *rng.uniform(-200, 200, 2)), FFHQ_512)
    src = src + rng.normal(0, 6, src.shape)  # not exactly similar: a real least-squares problem
    m = estimate_similarity(src, FFHQ_512)
    assert np.abs(m - skimage_fit(src, FFHQ_512)).max() < TOL
    assert np.abs(m - lstsq_fit(src, FFHQ_512)).max() < TOL
    # and it is a minimum: nudging any parameter raises the squared residual
    res = ((apply(m, src) - FFHQ_512) ** 2).sum()
    for i, j in [(0, 0), (1, 0), (0, 2), (1, 2)]:
        for eps in (1e-3, -1e-3):
            n = m.copy()
            n[i, j] += eps
            if j == 0:  # keep it a similarity: a = m00 = m11, b = m10 = -m01
                n[1 - i, 1] += eps if i == 0 else -eps
            assert ((apply(n, src) - FFHQ_512) ** 2).sum() > res


def test_fit_never_reflects():
    """Mirrored points: the best rotation+scale (as the linear solve), not the reflection."""
    src = np.random.default_rng(0).uniform(0, 600, (5, 2))
    m = estimate_similarity(src, src * [-1.0, 1.0])
    assert np.linalg.det(m[:, :2]) > 0
    assert np.abs(m - lstsq_fit(src, src * [-1.0, 1.0])).max() < TOL


def test_exact_recovery_and_round_trip():
    m = sim(1.7, 23.0, 12.0, -40.0)
    src = FFHQ_512 / 3 + 150
    fit = estimate_similarity(src, apply(m, src))
    assert np.abs(fit - m).max() < 1e-9
    back = estimate_similarity(apply(m, src), src)
    assert np.abs(apply(back, apply(fit, src)) - src).max() < 1e-9


def test_nan_rows_are_ignored_and_two_points_are_needed():
    rng = np.random.default_rng(3)
    src = FFHQ_512 + rng.normal(0, 5, (5, 2))
    holed = src.copy()
    holed[3:] = np.nan  # dlib's 5-point model: no mouth corners
    assert np.abs(estimate_similarity(holed, FFHQ_512) - estimate_similarity(src[:3], FFHQ_512[:3])).max() < 1e-12
    holed[1:] = np.nan
    with pytest.raises(ValueError, match="at least two"):
        estimate_similarity(holed, FFHQ_512)


def test_template_layout_and_scaling():
    left_eye, right_eye, nose, mouth_l, mouth_r = FFHQ_512
    assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    assert np.array_equal(ffhq_template(FACE_SIZE, FACE_SIZE), FFHQ_512)
    t = ffhq_template(128, 256)  # height 128, width 256
    assert np.allclose(t, FFHQ_512 * [0.5, 0.25], rtol=0, atol=1e-12)
    # a square crop of side s is the 512 crop scaled by s / 512 about the origin
    m = estimate_similarity(ffhq_template(128, 128), FFHQ_512)
    assert np.abs(m - [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0]]).max() < 1e-9
