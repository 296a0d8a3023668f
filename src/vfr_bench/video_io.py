"""Writing clips as video files (PyAV, libx264, yuv420p)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_mp4(path: Path, frames: np.ndarray, fps: float, crf: int = 18) -> Path:
    """Write [T,H,W,3] uint8 RGB frames as H.264 mp4; odd sizes are padded by one edge pixel
    (yuv420p needs even sizes)."""
    t, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=int(round(fps)) or 25)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(stream.encode())
    return path
