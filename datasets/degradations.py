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
