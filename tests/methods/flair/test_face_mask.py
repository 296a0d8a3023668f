"""FLAIR face blend mask vs an OpenCV computation of the official numpy/cv2 steps."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from tests.helpers import max_abs
from vfr_bench.methods.flair.face_mask import face_blend_mask, gaussian_kernel_1d


def _parse_maps() -> np.ndarray:
    """Two fixed 512x512 label maps: nested ellipses of all 19 classes plus random speckle."""
    yy, xx = np.mgrid[:512, :512]
    maps = []
    for cx, cy, seed in ((256, 250, 0), (300, 220, 1)):
        r = np.sqrt(((xx - cx) / 1.0) ** 2 + ((yy - cy) / 1.3) ** 2)
        lab = np.clip((r / 14).astype(np.int64), 0, 18)
        lab = (18 - lab) % 19  # centre gets high classes, far away background 0 ...
        rng = np.random.default_rng(seed)
        speck = rng.random((512, 512)) < 0.02
        lab[speck] = rng.integers(0, 19, speck.sum())
        maps.append(lab)
    return np.stack(maps)


def _opencv_reference(parse: np.ndarray) -> np.ndarray:
    colormap = [0] + [255] * 13 + [0] * 5
    mask = np.zeros(parse.shape)
    for idx, color in enumerate(colormap):
        mask[parse == idx] = color
    mask = cv2.GaussianBlur(mask, (101, 101), 26)
    mask = cv2.GaussianBlur(mask, (101, 101), 26)
    mask[:10, :] = 0
    mask[-10:, :] = 0
    mask[:, :10] = 0
    mask[:, -10:] = 0
    return mask / 255.0


def test_mask_matches_opencv():
    parse = _parse_maps()
    ref = np.stack([_opencv_reference(p) for p in parse])[:, None]
    got = face_blend_mask(torch.from_numpy(parse))
    assert got.shape == (2, 1, 512, 512) and got.dtype == torch.float64
    assert max_abs(got, ref) < 1e-6
    assert 0.05 < float(got.mean()) < 0.95 and float(got.max()) > 0.9  # a non-trivial mask
    got32 = face_blend_mask(torch.from_numpy(parse), dtype=torch.float32)
    assert max_abs(got32, ref) < 1e-5


def test_kernel_is_opencv_kernel():
    ref = cv2.getGaussianKernel(101, 26, ktype=cv2.CV_64F)[:, 0]
    assert max_abs(gaussian_kernel_1d(101, 26.0), ref) < 1e-15
