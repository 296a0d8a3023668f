"""Our CPU modulated deformable convolution against ``torchvision.ops.deform_conv2d``."""
import pytest
import torch
import torchvision

from vfr_bench.methods.deform_conv import deform_conv2d


def _inputs(n, cin, cout, h, w, groups, kernel, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    kh, kw = kernel
    x = torch.randn(n, cin, h, w, generator=gen, dtype=dtype)
    weight = torch.randn(cout, cin, kh, kw, generator=gen, dtype=dtype)
    bias = torch.randn(cout, generator=gen, dtype=dtype)
    # Offsets up to +-1.5 image sizes: many taps fall outside the image.
    offset = (torch.rand(n, 2 * groups * kh * kw, h, w, generator=gen, dtype=dtype) - 0.5) * 3 * max(h, w)
    # A third of the rows get integer offsets, many landing exactly on or just past the border
    # (y in {-1, 0, H-1, H}, x likewise), where torchvision's zero-outside rule switches.
    offset[..., : h // 3, :] = offset[..., : h // 3, :].round().clamp(-h - 2, h + 2)
    mask = torch.rand(n, groups * kh * kw, h, w, generator=gen, dtype=dtype)
    return x, offset, weight, bias, mask


def _border_offsets(offset, h, w, kernel, padding):
    """Set the integer-offset rows so every tap samples exactly y or x in {-1, 0, H-1, H}."""
    kh, kw = kernel
    ph, pw = padding
    taps = kh * kw
    off = offset.view(offset.shape[0], -1, taps, 2, h, offset.shape[-1])
    rows = torch.arange(h, dtype=offset.dtype).view(1, 1, 1, h, 1)
    cols = torch.arange(off.shape[-1], dtype=offset.dtype).view(1, 1, 1, 1, -1)
    tap_y = torch.arange(kh, dtype=offset.dtype).repeat_interleave(kw).view(1, 1, taps, 1, 1)
    tap_x = torch.arange(kw, dtype=offset.dtype).repeat(kh).view(1, 1, taps, 1, 1)
    targets_y = torch.tensor([-1.0, 0.0, h - 1.0, float(h)], dtype=offset.dtype)
    targets_x = torch.tensor([-1.0, 0.0, w - 1.0, float(w)], dtype=offset.dtype)
    n_rows = h // 3
    ty = targets_y[torch.arange(n_rows * off.shape[-1]) % 4].view(n_rows, -1)
    tx = targets_x[torch.arange(n_rows * off.shape[-1]) // 3 % 4].view(n_rows, -1)
    base_y = (rows - ph + tap_y)[..., :n_rows, :]
    base_x = cols - pw + tap_x
    off[:, :, :, 0, :n_rows] = ty - base_y
    off[:, :, :, 1, :n_rows] = tx - base_x
    return offset


CASES = [  # n, cin, cout, h, w, groups, kernel, padding
    (2, 8, 5, 7, 9, 1, (3, 3), (1, 1)),
    (2, 8, 6, 9, 6, 2, (3, 3), (1, 1)),
    (3, 16, 4, 6, 8, 4, (3, 3), (1, 1)),
    (2, 16, 3, 8, 7, 16, (3, 3), (1, 1)),
    (2, 6, 4, 8, 9, 3, (3, 3), (0, 0)),
    (2, 4, 3, 7, 8, 2, (1, 3), (0, 1)),
]


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("with_mask", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_matches_torchvision(case, with_mask, dtype, rtol):
    n, cin, cout, h, w, groups, kernel, padding = case
    x, offset, weight, bias, mask = _inputs(n, cin, cout, h, w, groups, kernel, dtype, seed=cin * h + w)
    ho, wo = h + 2 * padding[0] - kernel[0] + 1, w + 2 * padding[1] - kernel[1] + 1
    offset, mask = offset[..., :ho, :wo].contiguous(), mask[..., :ho, :wo].contiguous()
    if (ho, wo) == (h, w):  # 'same' output: the integer rows hit the border exactly
        offset = _border_offsets(offset, h, w, kernel, padding)
    mask = mask if with_mask else None
    expected = torchvision.ops.deform_conv2d(x, offset, weight, bias, padding=padding, mask=mask)
    got = deform_conv2d(x, offset, weight, bias, padding=padding, mask=mask)
    assert got.shape == expected.shape and got.dtype == dtype
    assert (got - expected).abs().max().item() <= rtol * expected.abs().max().item()


def test_border_samples_are_zero_outside():
    """A tap exactly at y = -1 or y = H (or x likewise) contributes 0, one at y = 0 the pixel."""
    x = torch.arange(1, 13, dtype=torch.float64).view(1, 1, 3, 4)
    weight = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    for dy, dx, value in [(-1.0, 0.0, 0.0), (3.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 4.0, 0.0),
                          (2.0, 3.0, 12.0), (-0.5, 0.0, 0.5), (2.5, 3.0, 6.0)]:
        offset = torch.tensor([dy, dx], dtype=torch.float64).view(1, 2, 1, 1).expand(1, 2, 3, 4)
        got = deform_conv2d(x, offset.contiguous(), weight, None, padding=0, mask=None)
        assert got[0, 0, 0, 0].item() == pytest.approx(value, abs=1e-12)
