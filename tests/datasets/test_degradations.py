"""Recipe operators against independent references (scipy, OpenCV, closed forms)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from scipy import ndimage

from vfr_bench.datasets import degradations as D


def test_gaussian_kernel2d_matches_the_closed_form():
    k = D.gaussian_kernel2d(21, 3.0, 1.5, math.pi / 6).numpy()
    r = np.arange(21) - 10.0
    x, y = np.meshgrid(r, r)
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    u, v = c * x + s * y, -s * x + c * y  # rotate into the kernel's axes
    ref = np.exp(-0.5 * (u ** 2 / 9.0 + v ** 2 / 2.25))
    assert np.abs(k - ref / ref.sum()).max() < 1e-12
    assert np.allclose(D.gaussian_kernel2d(9, 2.0).numpy(), D.gaussian_kernel2d(9, 2.0).numpy().T)


def test_filter2d_is_correlation_with_reflect101_or_replicate():
    x = torch.rand(2, 3, 40, 36)
    k = torch.rand(7, 5, dtype=torch.float64)
    k /= k.sum()
    for pad, mode in (("reflect", "mirror"), ("replicate", "nearest")):
        ref = ndimage.correlate(x.double().numpy(), k.numpy()[None, None], mode=mode)
        assert np.abs(D.filter2d(x, k, pad).double().numpy() - ref).max() < 1e-5


def test_kernel_downsample_samples_offset_one_every_fourth():
    x = torch.rand(1, 3, 32, 32)
    delta = torch.zeros(3, 3, dtype=torch.float64)
    delta[1, 1] = 1
    y = D.kernel_downsample(x, delta, 4)
    assert y.shape == (1, 3, 8, 8) and torch.equal(y, x[..., 1::4, 1::4])


def test_resize_modes_match_opencv():
    x = (torch.rand(1, 3, 64, 64) * 255).round() / 255
    img = x[0].permute(1, 2, 0).numpy()
    for mode, interp in (("area", cv2.INTER_AREA), ("bilinear", cv2.INTER_LINEAR), ("bicubic", cv2.INTER_CUBIC)):
        ref = cv2.resize(img, (16, 16), interpolation=interp)
        got = D.resize(x, (16, 16), mode)[0].permute(1, 2, 0).numpy()
        assert np.abs(got - ref).max() < 2e-3, mode


def test_grayscale_matches_opencv_luma():
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 3, 8, 8)).astype(np.float32) / 255)
    ref = cv2.cvtColor(D.to_uint8(x)[0], cv2.COLOR_RGB2GRAY)
    got = D.to_uint8(D.grayscale(x))[0]
    assert np.abs(got[..., 0].astype(int) - ref).max() <= 1 and (got[..., 0] == got[..., 2]).all()


def test_jpeg_quality_orders_the_error():
    f = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    f = cv2.GaussianBlur(f[0], (0, 0), 2)[None]
    err = [np.abs(D.jpeg(f, q).astype(int) - f).mean() for q in (95, 60, 10)]
    assert err[0] < err[1] < err[2] and np.array_equal(D.jpeg(f, 60), D.jpeg(f, 60))


def test_motion_kernel_is_a_normalised_line():
    k = D.motion_kernel(25, 11.0, 0.0).numpy()
    cols = k.sum(0)
    assert abs(k.sum() - 1) < 1e-12 and np.count_nonzero(k.sum(1)) == 1  # one horizontal row
    assert 11 <= np.count_nonzero(cols) <= 13 and np.allclose(cols, cols[::-1])  # 11 px, centred
    assert abs(float((cols > 0.05).sum()) - 11) <= 1


def test_gray_noise_is_shared_by_channels():
    g = torch.Generator().manual_seed(0)
    n = D.channel_noise(torch.zeros(3, 16, 16), 10.0, True, g)
    assert torch.equal(n[0], n[1]) and torch.equal(n[1], n[2]) and abs(float(n.std()) - 10 / 255) < 0.01


def test_brush_mask_draws_thick_strokes():
    m = D.brush_stroke_mask([{"vertices": [[0.1, 0.5], [0.9, 0.5]], "width": 40}], 512, 512)
    assert m[256, 256] and m[256 + 15, 256] and not m[256 + 30, 256] and not m[10, 10]
