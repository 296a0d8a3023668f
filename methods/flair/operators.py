"""FLAIR's forward operators A, their pseudo-inverses and the data-consistency (DC) projection.

FLAIR (Zou et al., "Flair: A Conditional Diffusion Framework with Applications to Face Video
Restoration", WACV 2025; official code https://github.com/wustl-cig/FLAIR) is non-blind: at
every sampling step it projects the x0-prediction towards the measurement y,

    x0 <- clamp(x0 - gamma_t * R(x0), -1, 1),

with R(x) = A^+(A x - y) for the bicubic tasks (exact SVD pseudo-inverse, official
``restore_util.SRConv``) and R(x) = H(Inv(J(D x))) - H(Inv(y)) for the x4 Gaussian tasks
(official ``pseudoSR.pseudoSR_PyTorch.A_pinv``; J = JPEG encode+decode for ``jpeg``, identity
for ``gaussian``). All images here are [N,3,H,W] in [-1,1] RGB; everything runs in the dtype
and on the device of the input.
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench.methods.flair.x4_kernel import X4_DS_KERNEL

SINGULAR_ZERO = 3e-2  # singular values of the 1-D bicubic matrix below this are zeroed (SRConv)
JPEG_QUALITY = 60  # the jpeg demo's quality factor


# --------------------------------------------------------------------------- bicubic (SRConv)
def bicubic_kernel_1d(factor: int) -> np.ndarray:
    """Official 1-D bicubic anti-aliasing kernel (a=-0.5, 4*factor taps), float32 as used.

    Taps at x = (i - 2*factor + 0.5)/factor, normalised in float64, cast to float32 and
    normalised once more in float32 (``get_A_func`` then ``SRConv(kernel / kernel.sum())``).
    """
    a = -0.5
    x = np.abs((np.arange(4 * factor) - 2 * factor + 0.5) / factor)
    k = np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1,
                 np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))
    k = (k / k.sum()).astype(np.float32)
    return k / k.sum()


def bicubic_matrix_1d(kernel: np.ndarray, size: int, factor: int) -> np.ndarray:
    """[size/factor, size] float64 1-D downsampling matrix with reflective padding.

    Row k is centred at pixel i = factor/2 + factor*k and holds kernel taps j - i + K/2 for
    j in [i - K/2, i + K/2); taps that fall outside are reflected (-j-1, 2*size-1-j) and added.
    """
    taps = kernel.shape[0]
    mat = np.zeros((size // factor, size), dtype=np.float64)
    for row, i in enumerate(range(factor // 2, size + factor // 2, factor)):
        for j in range(i - taps // 2, i + taps // 2):
            col = -j - 1 if j < 0 else (2 * size - 1 - j if j >= size else j)
            mat[row, col] += float(kernel[j - i + taps // 2])
    return mat


class BicubicSR:
    """x8/x16 bicubic downsampling of a 512 frame, applied separably: y = M X M^T per channel.

    The pseudo-inverse is the SVD one of the 1-D matrix with singular values < 3e-2 zeroed,
    which equals the official 2-D ``SRConv.A_pinv`` (singular values of the 2-D operator are
    the products of the 1-D ones). Args of methods: x [N,3,512,512], y [N,3,512/f,512/f].
    """

    def __init__(self, factor: int, size: int = 512):
        self.factor = factor
        self.kernel = bicubic_kernel_1d(factor)
        mat = bicubic_matrix_1d(self.kernel, size, factor)
        u, s, vt = np.linalg.svd(mat, full_matrices=False)
        s = np.where(s < SINGULAR_ZERO, 0.0, s)
        self.singulars = s
        inv_s = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
        self._mat = torch.from_numpy(mat)
        self._pinv = torch.from_numpy((vt.T * inv_s) @ u.T)  # [size, size/f]

    def _apply(self, m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        m = m.to(x)
        return m @ x @ m.transpose(0, 1)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        """x [N,3,H,W] -> y [N,3,H/f,W/f]."""
        return self._apply(self._mat, x)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """A^+ y: [N,3,H/f,W/f] -> [N,3,H,W]."""
        return self._apply(self._pinv, y)

    def restore(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """R(x) = A^+(A x - y), the DC correction before gamma."""
        return self.pinv(self.A(x) - y)


# --------------------------------------------------------------------------- x4 Gaussian
def _energy_profile(k: np.ndarray) -> np.ndarray:
    """sqrt energy left after cropping 0,1,2,... pixels from every side, relative to all."""
    e = [np.sqrt((k**2).sum())] + [np.sqrt((k[m:-m, m:-m] ** 2).sum())
                                   for m in range(1, int(np.ceil(k.shape[0] / 2)))]
    return np.asarray(e) / e[0]


def _recentre(kernel: np.ndarray, factor: int) -> np.ndarray:
    """pseudoSR ``Center_Mass``: zero-pad so the centre of mass is central, crop to 99% energy."""
    n = kernel.shape[0]
    cols = np.arange(n)
    # convolve2d(grid, kernel, 'valid') of equal sizes = sum grid[i,j] kernel[n-1-i, n-1-j]
    xc = float((kernel * (n - 1 - cols)[None, :]).sum()) + 1
    yc = float((kernel * (n - 1 - cols)[:, None]).sum()) + 1
    x_pad, y_pad = 2 * (n / 2 - xc), 2 * (n / 2 - yc)
    if round(abs(y_pad)) != round(abs(x_pad)):
        raise NotImplementedError("kernel needs unequal axis padding; not used by FLAIR's demos")
    rnd = lambda v: int(np.round(v))  # noqa: E731
    kernel = np.pad(kernel, ((rnd(max(0, -y_pad)), rnd(max(0, y_pad))),
                             (rnd(max(0, -x_pad)), rnd(max(0, x_pad)))))
    margins = [int(np.argwhere(_energy_profile(kernel) < 0.99)[0][0])] * 2
    side = 0
    while (kernel.shape[0] - sum(margins) - 1 + (factor + 1) % 2) % factor != 0:
        margins[side] -= 1
        side = 1 - side
    kernel = kernel[margins[0]:-margins[1], margins[0]:-margins[1]]
    return kernel / kernel.sum()


def derive_x4_ds_kernel(raw_kernel: np.ndarray, factor: int = 4) -> np.ndarray:
    """The official ``ds_kernel`` (9x9 float32) from the raw blur kernel (kernels_12.mat[0,3]).

    Re-centred and cropped (``Center_Mass``) to 8x8, one zero row/column in front (the even
    factor's stride padding: pre 1, post 2), rotated by 180 degrees, cast to float32.
    """
    k = _recentre(np.asarray(raw_kernel), factor) * factor**2
    k = np.pad(k, ((1, 0), (1, 0)))
    return (np.rot90(k, 2).astype(np.float32) / factor**2).astype(np.float32)


def derive_inv_hTh(ds_kernel: np.ndarray, factor: int = 4) -> np.ndarray:
    """The 39x39 regularised inverse of h*h^T (pseudoSR ``compute_inv_hTh``), float32.

    hTh = full 2-D convolution of h with its 180-degree rotation, times factor^2, sampled every
    4th tap from 0; inverted in the Fourier domain with 36 zeros of padding and the magnitude
    floored at 0.01; cropped around its maximum.
    """
    h = np.asarray(ds_kernel, dtype=np.float64)
    n = h.shape[0]
    hth = np.zeros((2 * n - 1, 2 * n - 1))
    hr = np.rot90(h, 2)
    for i in range(n):  # full convolution of two n x n kernels
        for j in range(n):
            hth[i:i + n, j:j + n] += h[i, j] * hr
    hth = (hth * factor**2)[0::factor, 0::factor]
    spec = np.fft.fft2(np.pad(hth, 18))
    spec = spec * np.maximum(1, 0.01 / np.abs(spec))
    inv = np.real(np.fft.ifft2(1 / spec))
    r, c = np.unravel_index(int(np.argmax(inv)), inv.shape)
    half = min(inv.shape[0] - r - 1, inv.shape[1] - c - 1, r, c)
    return inv[r - half:r + half + 1, c - half:c + half + 1].astype(np.float32)


def _depthwise(x: torch.Tensor, filt: torch.Tensor, pad: int) -> torch.Tensor:
    """Replicate-pad by ``pad`` and correlate every channel with ``filt`` (Filter_Layer)."""
    c = x.shape[1]
    w = filt.to(x).expand(c, 1, *filt.shape)
    return F.conv2d(F.pad(x, (pad,) * 4, mode="replicate"), w, groups=c)


class GaussianX4:
    """x4 downsampling with FLAIR's Gaussian blur kernel, optionally followed by JPEG.

    D = replicate pad 4, correlate with rot180(h), keep the sample at offset 1 of each 4x4 cell;
    H = zero insertion at offset 1, replicate pad 4, correlate with 16 h; Inv = replicate pad 19,
    correlate with inv(h*h^T). A = J o D (J = JPEG q=60 for ``jpeg``, identity otherwise).

    Args:
        jpeg_quality: None for the ``gaussian`` task, 60 for ``jpeg``.
    """

    factor = 4
    phase = 1  # pseudoSR calc_strides for factor 4: pre_stride 1

    def __init__(self, jpeg_quality: int | None = None):
        self.jpeg_quality = jpeg_quality
        ds = np.asarray(X4_DS_KERNEL, dtype=np.float32)
        self.ds_kernel = ds
        self.downscale_filter = torch.from_numpy(np.ascontiguousarray(np.rot90(ds, 2)))
        self.upscale_filter = torch.from_numpy(ds * self.factor**2)
        self.inv_hTh_filter = torch.from_numpy(derive_inv_hTh(ds, self.factor))

    def downscale(self, x: torch.Tensor) -> torch.Tensor:
        """D: [N,3,H,W] -> [N,3,H/4,W/4]."""
        pad = self.ds_kernel.shape[0] // 2
        c = x.shape[1]
        w = self.downscale_filter.to(x).expand(c, 1, *self.downscale_filter.shape)
        xp = F.pad(x, (pad,) * 4, mode="replicate")[..., self.phase:, self.phase:]
        return F.conv2d(xp, w, stride=self.factor, groups=c)  # = full filtering, then sampling

    def upscale(self, y: torch.Tensor) -> torch.Tensor:
        """H: [N,3,h,w] -> [N,3,4h,4w] (zero insertion then interpolation filter)."""
        # The zero-inserted image has zero first/last rows and columns (phase 1 of 4), so its
        # replicate padding is zero padding and the filtering is a strided transposed conv.
        c, h, w = y.shape[1:]
        k = self.upscale_filter.to(y).flip(0, 1).expand(c, 1, *self.upscale_filter.shape)
        out = F.conv_transpose2d(y, k, stride=self.factor, groups=c)
        off = self.ds_kernel.shape[0] // 2 - self.phase  # 3
        return out[..., off:off + h * self.factor, off:off + w * self.factor]

    def inv_hTh(self, y: torch.Tensor) -> torch.Tensor:
        """Inv: correlation with the 39x39 regularised inverse of h*h^T at LR size."""
        return _depthwise(y, self.inv_hTh_filter, self.inv_hTh_filter.shape[0] // 2)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        """Forward operator J(D x): [N,3,H,W] -> [N,3,H/4,W/4]."""
        y = self.downscale(x)
        return y if self.jpeg_quality is None else jpeg_roundtrip(y, self.jpeg_quality)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """H(Inv(y)) (the official A_pinv without a generated image)."""
        return self.upscale(self.inv_hTh(y))

    def restore(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """R(x) = H(Inv(J(D x))) - H(Inv(y)); Inv and H are linear, so one pass on the difference."""
        return self.pinv(self.A(x) - y)


# --------------------------------------------------------------------------- JPEG
_LUMA_TABLE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
_CHROMA_TABLE = (17, 18, 24, 47) + (99,) * 4 + (18, 21, 26, 66) + (99,) * 4 \
    + (24, 26, 56) + (99,) * 5 + (47, 66) + (99,) * 6 + (99,) * 32
_RGB_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.1687, -0.3313, 0.5), (0.5, -0.4187, -0.0813))
_YCBCR_TO_RGB = ((1.0, -3.68199903e-05, 1.40198758), (1.0, -0.344113281, -0.714103821),
                 (1.0, 1.77197812, -1.34583413e-04))


def jpeg_tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    """IJG luma/chroma tables scaled for ``quality``: floor((s q + 50)/100) clipped to [1,255]."""
    s = 5000 / quality if quality < 50 else 200 - 2 * quality
    scale = lambda t: np.clip(np.floor((s * np.asarray(t, np.float64) + 50) / 100), 1, 255)  # noqa: E731
    return (torch.from_numpy(scale(_LUMA_TABLE).reshape(8, 8)),
            torch.from_numpy(scale(_CHROMA_TABLE).reshape(8, 8)))


def _dct_matrix(n: int = 8) -> torch.Tensor:
    """Orthonormal DCT-II matrix D[k, i] (rows = frequencies)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return torch.from_numpy(d)


def _blockwise(x: torch.Tensor, fn) -> torch.Tensor:
    """Apply ``fn`` to every 8x8 block of x [N,C,H,W] given as [N,C,H/8,W/8,8,8]."""
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)
    out = fn(blocks)
    return out.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def jpeg_roundtrip(x: torch.Tensor, quality: int = JPEG_QUALITY) -> torch.Tensor:
    """FLAIR's differentiable JPEG emulation, encode then decode (official ``jpeg.py``).

    RGB->YCbCr with fixed matrices, chroma subsampled by taking every second pixel, 8x8
    orthonormal DCT of (value - 128), division by the quality-scaled IJG tables, ``torch.round``
    (half to even), then the inverse path with nearest chroma upsampling.

    Args:
        x: [N,3,H,W] in [-1,1] RGB, H and W multiples of 16.
    Returns:
        [N,3,H,W] in about [-1,1] (not clamped).
    """
    m = torch.tensor(_RGB_TO_YCBCR, dtype=x.dtype, device=x.device)
    m_inv = torch.tensor(_YCBCR_TO_RGB, dtype=x.dtype, device=x.device)
    dct = _dct_matrix().to(x)
    q_luma, q_chroma = (q.to(x) for q in jpeg_tables(quality))
    offset = torch.tensor([0.0, 128.0, 128.0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)

    def code(blocks: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        coef = dct @ (blocks - 128) @ dct.T
        coef = torch.round(coef / q) * q
        return dct.T @ coef @ dct + 128

    pix = (x + 1) / 2 * 255
    ycc = torch.einsum("nkhw,ck->nchw", pix, m) + offset
    luma = _blockwise(ycc[:, :1], lambda b: code(b, q_luma))
    chroma = _blockwise(ycc[:, 1:, ::2, ::2], lambda b: code(b, q_chroma))
    chroma = chroma.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    ycc = torch.cat([luma, chroma], dim=1) - offset
    rgb = torch.einsum("nkhw,ck->nchw", ycc, m_inv)
    return rgb / 255 * 2 - 1


# --------------------------------------------------------------------------- DC projection
Operator = Union[BicubicSR, GaussianX4]


def make_operator(task: str) -> Operator:
    """Operator of a FLAIR task: ``x8-bicubic``, ``x16-bicubic``, ``x4-gaussian``, ``x4-gaussian-jpeg``."""
    if task == "x8-bicubic":
        return BicubicSR(8)
    if task == "x16-bicubic":
        return BicubicSR(16)
    if task == "x4-gaussian":
        return GaussianX4()
    if task == "x4-gaussian-jpeg":
        return GaussianX4(jpeg_quality=JPEG_QUALITY)
    raise ValueError(f"unknown FLAIR task {task!r}; known: x8-bicubic, x16-bicubic, "
                     "x4-gaussian, x4-gaussian-jpeg")


def project(x0: torch.Tensor, y: torch.Tensor, operator: Operator,
            gamma: float | torch.Tensor) -> torch.Tensor:
    """DC step: clamp(x0 - gamma R(x0), -1, 1).

    Args:
        x0: [N,3,H,W] x0-prediction in [-1,1].
        y: [N,3,h,w] measurement in [-1,1] (the LQ frames).
        gamma: the step's gamma_t (float32 value, see ``schedules``).
    """
    return (x0 - gamma * operator.restore(x0, y)).clamp(-1, 1)
