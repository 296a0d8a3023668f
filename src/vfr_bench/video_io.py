"""Writing clips as video files (PyAV, libx264, yuv420p)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CRF = 18  # visually lossless for previews and restored videos


class Mp4Writer:
    """Streams RGB frames into an H.264 (libx264, yuv420p) mp4 with PyAV.

    yuv420p needs even sizes: an odd width or height is padded by repeating the last
    column/row (the PNG frames keep the exact size).
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], crf: int = CRF):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = size
        self.container = av.open(str(self.path), "w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.stream.height, self.stream.width = (s + s % 2 for s in size)
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf)}

    def write(self, frames: np.ndarray) -> None:
        """Append [t,H,W,3] uint8 RGB frames."""
        h, w = self.size
        if h % 2 or w % 2:
            frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        for f in frames:
            for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def write_mp4(path: Path, frames: np.ndarray, fps: float, crf: int = CRF) -> Path:
    """Write [T,H,W,3] uint8 RGB frames as one H.264 mp4."""
    writer = Mp4Writer(path, fps, frames.shape[1:3], crf)
    writer.write(frames)
    writer.close()
    return Path(path)
