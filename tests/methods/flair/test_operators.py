"""FLAIR forward operators and DC projection vs golden_dc.npz (float64), plus small unit checks."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F

from tests.helpers import load_golden, max_abs
from vfr_bench.methods.flair import operators as ops
from vfr_bench.methods.flair.x4_kernel import X4_DS_KERNEL

TASKS = {"x8-bicubic": "x8_bicubic", "x16-bicubic": "x16_bicubic",
         "x4-gaussian": "gaussian", "x4-gaussian-jpeg": "jpeg"}
TOL = 1e-6


@pytest.fixture(scope="module")
def golden(conformance_dir):
    return load_golden(conformance_dir / "flair" / "golden_dc.npz")


@pytest.mark.conformance
@pytest.mark.parametrize("task", list(TASKS))
def test_dc_matches_golden(golden, task):
    """A(x0), A^+ y, R(x0) and the projected x0 of each demo degradation, against the stored y."""
    key = TASKS[task]
    op = ops.make_operator(task)
    x0 = torch.from_numpy(golden["x0"]).double()
    y = torch.from_numpy(golden[f"{key}_y"]).double()
    with torch.no_grad():
        got = {"A_x0": op.A(x0), "pinv_y": op.pinv(y), "restore": op.restore(x0, y)}
        got["x0_tilde"] = ops.project(x0, y, op, float(golden[f"{key}_gamma"]))
    diffs = {name: max_abs(v, golden[f"{key}_{name}"]) for name, v in got.items()}
    assert all(d < TOL for d in diffs.values()), diffs
    # The correction is not negligible, so the projection check is meaningful.
    assert float(got["restore"].abs().max()) > 1e-2


@pytest.mark.conformance
@pytest.mark.parametrize("task", ["x8-bicubic", "x16-bicubic"])
def test_bicubic_kernel_and_singulars(golden, task):
    key = TASKS[task]
    op = ops.make_operator(task)
    np.testing.assert_array_equal(op.kernel, golden[f"{key}_kernel1d"])
    assert np.abs(op.singulars - golden[f"{key}_singulars_small"]).max() < 1e-6
    assert (op.singulars > ops.SINGULAR_ZERO).all()  # none zeroed for the demos


@pytest.mark.conformance
@pytest.mark.parametrize("key", ["gaussian", "jpeg"])
def test_x4_filters_derived_from_raw_kernel(golden, key):
    """The shipped 9x9 kernel is what the raw kernels_12.mat[0,3] gives; the other filters follow."""
    derived = ops.derive_x4_ds_kernel(golden[f"{key}_raw_kernel"])
    np.testing.assert_array_equal(derived, golden[f"{key}_ds_kernel"])
    np.testing.assert_array_equal(np.asarray(X4_DS_KERNEL, np.float32), golden[f"{key}_ds_kernel"])
    op = ops.GaussianX4()
    np.testing.assert_array_equal(op.downscale_filter.numpy(), golden[f"{key}_downscale_filter"])
    np.testing.assert_array_equal(op.upscale_filter.numpy(), golden[f"{key}_upscale_filter"])
    assert op.inv_hTh_filter.shape == (39, 39)
    assert max_abs(op.inv_hTh_filter, golden[f"{key}_inv_hTh_filter"]) < TOL


def test_x4_fast_paths_equal_literal_filtering():
    """Strided down/transposed up-filtering equal the official pad-filter-sample formulation."""
    g = torch.Generator().manual_seed(0)
    op = ops.GaussianX4()
    x = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64)
    y = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64)

    def filt(img, k):
        w = k.double().expand(3, 1, *k.shape)
        p = k.shape[0] // 2
        return F.conv2d(F.pad(img, (p,) * 4, mode="replicate"), w, groups=3)

    ref_down = filt(x, op.downscale_filter)[..., 1::4, 1::4]
    up = torch.zeros(2, 3, 32, 32, dtype=torch.float64)
    up[..., 1::4, 1::4] = y
    ref_up = filt(up, op.upscale_filter)
    assert max_abs(op.downscale(x), ref_down) < 1e-12
    assert max_abs(op.upscale(y), ref_up) < 1e-12


def test_bicubic_pinv_is_right_inverse():
    op = ops.BicubicSR(8, size=128)
    y = torch.rand(1, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert max_abs(op.A(op.pinv(y)), y) < 1e-10


def _jpeg_reference(x: np.ndarray, quality: int) -> np.ndarray:
    """Per-block numpy/scipy JPEG emulation with the same conventions, for one image [3,H,W]."""
    s = 200 - 2 * quality
    q1 = np.clip(np.floor((s * np.array(ops._LUMA_TABLE, float) + 50) / 100), 1, 255).reshape(8, 8)
    q2 = np.clip(np.floor((s * np.array(ops._CHROMA_TABLE, float) + 50) / 100), 1, 255).reshape(8, 8)
    pix = (x + 1) / 2 * 255
    ycc = np.tensordot(np.array(ops._RGB_TO_YCBCR), pix, axes=([1], [0]))
    ycc[1:] += 128
    planes = [ycc[0], ycc[1, ::2, ::2], ycc[2, ::2, ::2]]
    out = []
    for plane, q in zip(planes, (q1, q2, q2)):
        rec = np.empty_like(plane)
        for i in range(0, plane.shape[0], 8):
            for j in range(0, plane.shape[1], 8):
                c = scipy.fft.dctn(plane[i:i + 8, j:j + 8] - 128, norm="ortho")
                rec[i:i + 8, j:j + 8] = scipy.fft.idctn(np.round(c / q) * q, norm="ortho") + 128
        out.append(rec)
    full = np.stack([out[0], np.kron(out[1], np.ones((2, 2))), np.kron(out[2], np.ones((2, 2)))])
    full[1:] -= 128
    return np.tensordot(np.array(ops._YCBCR_TO_RGB), full, axes=([1], [0])) / 255 * 2 - 1


def test_jpeg_matches_blockwise_reference():
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    got = ops.jpeg_roundtrip(x, 60)
    ref = np.stack([_jpeg_reference(im, 60) for im in x.numpy()])
    assert max_abs(got, ref) < 1e-9
    assert max_abs(got, x) > 1e-2  # it does quantise


def test_jpeg_tables_q60():
    luma, chroma = ops.jpeg_tables(60)
    assert luma[0, 0] == 13 and luma[7, 7] == 79 and chroma[0, 0] == 14 and chroma[7, 7] == 79


def test_unknown_task_lists_known():
    with pytest.raises(ValueError, match="x8-bicubic"):
        ops.make_operator("x3-bicubic")
