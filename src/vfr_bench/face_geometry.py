"""Face geometry shared by alignment, the sample builder and the metrics: the FFHQ-512
five-point template, its scaling to other crop sizes, and the least-squares similarity fit.

The template is the one of CodeFormer / facexlib ``FaceRestoreHelper`` (used by KEEP and
DicFace). The fit is Umeyama's closed form (Umeyama, "Least-squares estimation of
transformation parameters between two point patterns", TPAMI 1991), rotation only (no
reflection). Numpy only, so metrics and dataset builders can import it without OpenCV or dlib.
"""
from __future__ import annotations

import numpy as np

# Side in pixels of the aligned crop the template is given in.
FACE_SIZE = 512
# FFHQ-512 5-point template: left eye, right eye (image left to right), nose tip, left and
# right mouth corners.
FFHQ_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                     [201.26117, 371.41043], [313.08905, 371.15118]])


def ffhq_template(height: int, width: int) -> np.ndarray:
    """[5,2] float64 FFHQ template for an aligned (height, width) crop (x scaled by
    ``width / 512``, y by ``height / 512``)."""
    return FFHQ_512 * np.array([width / FACE_SIZE, height / FACE_SIZE])


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, translation) mapping ``src``
    [N,2] onto ``dst`` [N,2]: the minimiser of ``sum_i |s R src_i + t - dst_i|^2``.

    Rows where ``src`` is NaN are ignored (e.g. dlib's absent mouth corners).

    Raises:
        ValueError: fewer than two finite ``src`` rows.
    """
    ok = np.isfinite(src).all(1)
    s_pts, d_pts = src[ok].astype(np.float64), dst[ok].astype(np.float64)
    if len(s_pts) < 2:
        raise ValueError("a similarity transform needs at least two landmarks")
    mu_s, mu_d = s_pts.mean(0), d_pts.mean(0)
    s, d = s_pts - mu_s, d_pts - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(s_pts))
    # Umeyama's S: flip the last axis when U V^T is a reflection (det 0: no flip).
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ sign @ vt
    scale = (sig * np.diag(sign)).sum() / ((s ** 2).sum() / len(s_pts))
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m
