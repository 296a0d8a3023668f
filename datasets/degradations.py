"""Degradation operators used to synthesise LQ clips.

Every random draw comes from a ``torch.Generator`` passed in by the caller (seeded
per split and clip with :func:`clip_generator`), never from global state, so a
split is rebuilt byte for byte. Frames are [T,3,H,W] float32 RGB in [0,1] except
where a function says uint8.
"""
from __future__ import annotations

import hashlib
import io
import math

import av
import numpy as np
import torch
import torch.nn.functional as F


def clip_generator(seed: int, clip_id: str) -> torch.Generator:
    """A CPU generator seeded by (split seed, clip id), independent of clip order."""
    digest = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2 ** 63 - 1))


def uniform(gen: torch.Generator, low: float, high: float) -> float:
    """One draw from U[low, high]."""
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def gaussian_kernel1d(sigma: float, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian with radius ceil(3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    r = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-r ** 2 / (2 * sigma ** 2))
    return (k / k.sum()).to(dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable isotropic Gaussian blur with reflect padding; ``sigma`` in pixels."""
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma, x.dtype)
    c, r = x.shape[1], (k.numel() - 1) // 2
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def bicubic_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize to (H, W) with antialiasing when shrinking (as MATLAB/PIL imresize)."""
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


def gaussian_noise(x: torch.Tensor, sigma255: float, gen: torch.Generator) -> torch.Tensor:
    """Additive white Gaussian noise with std ``sigma255`` on the 0..255 scale."""
    if sigma255 <= 0:
        return x
    n = torch.randn(x.shape, generator=gen, dtype=torch.float32)
    return x + n.to(x.dtype) * (sigma255 / 255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[T,3,H,W] float in [0,1] -> [T,H,W,3] uint8 (clamp, round half to even)."""
    return torch.round(x.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    """[T,H,W,3] uint8 -> [T,3,H,W] float32 in [0,1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def video_codec(frames: np.ndarray, crf: int, codec: str = "libx264", fps: int = 25,
                preset: str = "medium") -> np.ndarray:
    """Encode [T,H,W,3] uint8 RGB with PyAV (yuv420p, one encoder thread) and decode it back.

    One thread and fixed options make libx264's output reproducible. H and W must be even.
    """
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": str(crf), "preset": preset, "threads": "1"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf, mode="r") as inp:
        inp.streams.video[0].thread_count = 1
        decoded = [fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)]
    if len(decoded) != len(frames):
        raise RuntimeError(f"codec round trip returned {len(decoded)} of {len(frames)} frames")
    return np.stack(decoded)


# --- ops used by the split recipes (configs/splits/*.yaml) --------------------------------

def gaussian_kernel2d(size: int, sigma_x: float, sigma_y: float | None = None,
                      theta: float = 0.0) -> torch.Tensor:
    """[size,size] float64 normalised (an)isotropic Gaussian, rotated by ``theta`` radians.

    Same construction as BasicSR's ``bivariate_Gaussian`` (KEEP/DicFace blur kernels).
    """
    sigma_y = sigma_x if sigma_y is None else sigma_y
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    cov = rot @ torch.diag(torch.tensor([sigma_x ** 2, sigma_y ** 2], dtype=torch.float64)) @ rot.T
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    xy = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1)  # [..., (x, y)]
    k = torch.exp(-0.5 * torch.einsum("hwi,ij,hwj->hw", xy, torch.linalg.inv(cov), xy))
    return k / k.sum()


def motion_kernel(size: int, length: float, angle: float) -> torch.Tensor:
    """[size,size] float64 normalised linear motion-blur kernel of ``length`` px at ``angle`` rad.

    The line is rasterised with 8x supersampling so that sub-pixel lengths are honoured.
    """
    n = max(2, int(math.ceil(length * 8)))
    t = torch.linspace(-length / 2, length / 2, n, dtype=torch.float64)
    xs, ys = t * math.cos(angle) + (size - 1) / 2, t * math.sin(angle) + (size - 1) / 2
    k = torch.zeros(size, size, dtype=torch.float64)
    ix, iy = xs.round().long().clamp(0, size - 1), ys.round().long().clamp(0, size - 1)
    k.index_put_((iy, ix), torch.ones(n, dtype=torch.float64), accumulate=True)
    return k / k.sum()


def filter2d(x: torch.Tensor, kernel: torch.Tensor, padding: str = "reflect") -> torch.Tensor:
    """Correlate every channel of [T,C,H,W] with a 2-D kernel through ``cv2.filter2D`` (what the
    KEEP/DicFace data code calls; it switches to a DFT for large kernels, which matters for
    41x41 blurs). ``padding``: ``reflect`` (OpenCV's default reflect-101) or ``replicate``.
    """
    import cv2
    border = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}[padding]
    k = kernel.to(torch.float32).numpy()
    frames = x.permute(0, 2, 3, 1).contiguous().numpy()
    out = np.stack([cv2.filter2D(f, -1, k, borderType=border).reshape(f.shape) for f in frames])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.dtype).contiguous()


RESIZE_MODES = ("area", "bilinear", "bicubic", "bicubic-aa")


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize [T,C,H,W] to (H, W).

    ``area``/``bilinear``/``bicubic`` match OpenCV's INTER_AREA (integer factors), INTER_LINEAR
    and INTER_CUBIC (no antialiasing, a=-0.75) as the KEEP/DicFace data code uses them;
    ``bicubic-aa`` is MATLAB ``imresize`` bicubic (a=-0.5, antialiased), FLAIR's SRConv operator.
    """
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    if mode == "bilinear":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    if mode == "bicubic":
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False)
    if mode == "bicubic-aa":
        return bicubic_resize(x, size)
    raise ValueError(f"unknown resize mode {mode!r}; valid: {', '.join(RESIZE_MODES)}")


def kernel_downsample(x: torch.Tensor, kernel: torch.Tensor, scale: int) -> torch.Tensor:
    """Blur with ``kernel`` (replicate padding) and keep every ``scale``-th pixel starting at
    offset ``scale // 2 - 1``: FLAIR's x4 Gaussian-kernel operator (``pseudoSR.DownscaleOP``)."""
    y = filter2d(x, kernel, padding="replicate")
    off = max(scale // 2 - 1, 0)
    return y[..., off::scale, off::scale]


def channel_noise(x: torch.Tensor, sigma255: float, gray: bool, gen: torch.Generator) -> torch.Tensor:
    """AWGN on one frame [C,H,W] (or clip): ``gray`` draws one value per pixel shared by all
    channels (BasicSR ``generate_gaussian_noise(gray_noise=True)``)."""
    if sigma255 <= 0:
        return x
    shape = (*x.shape[:-3], 1, *x.shape[-2:]) if gray else x.shape
    n = torch.randn(shape, generator=gen, dtype=torch.float32).to(x.dtype)
    return x + n.expand_as(x) * (sigma255 / 255.0)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma (OpenCV ``COLOR_RGB2GRAY`` weights) repeated to 3 channels."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True).expand(-1, 3, -1, -1).contiguous()


def jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    """JPEG encode/decode every frame of [T,H,W,3] uint8 RGB with libjpeg (OpenCV, 4:2:0)."""
    import cv2
    out = []
    for f in frames:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(f[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return np.ascontiguousarray(np.stack(out))


def brush_stroke_mask(strokes: list[dict], height: int, width: int, ref: int = 512) -> np.ndarray:
    """[H,W] bool mask of free-form brush strokes (DicFace ``brush_stroke_mask_video``).

    Args:
        strokes: each ``{"vertices": [[x, y], ...] in [0,1] of the frame, "width": px at ref}``,
            drawn as a polyline with round joints (a disc at every vertex), as DicFace draws them.
        ref: frame size the widths refer to (DicFace trains and tests at 512).
    """
    import cv2
    mask = np.zeros((height, width), np.uint8)
    scale = math.sqrt(height * width) / ref
    for s in strokes:
        pts = np.round(np.asarray(s["vertices"], np.float64) * [width, height]).astype(np.int32)
        w = max(1, int(round(s["width"] * scale)))
        cv2.polylines(mask, [pts.reshape(-1, 1, 2)], False, 255, thickness=w)
        for x, y in pts:
            cv2.circle(mask, (int(x), int(y)), w // 2, 255, thickness=-1)
    return mask > 0
