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
    column/row (``video_size`` says what is written; the PNG frames keep the exact size).
    H.264 cannot code an odd size in 4:2:0 at all (its frame cropping works in 2-pixel steps);
    yuv444p could, but many players (most browsers, hardware decoders) do not play it, and
    cropping would drop input pixels; so an odd size gains one repeated row/column.

    ``reproducible=True`` gives the same file for the same frames: one encoder thread (the
    output depends on the thread count, hence on the machine) and no SIMD (``asm=0``): with
    its assembly on, libx264 wrote 2-5 different files in 5-6 encodes of the same 320 px
    wide frames in one process (192, 288, 352, 448 px too; 64, 128, 256, 384, 512, 1024 px
    were stable), 2026-11-30, PyAV 18.1 / libavcodec 62. It costs ~4x the encode time.
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], crf: int = CRF,
                 reproducible: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = size
        self.container = av.open(str(self.path), "w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.video_size = tuple(s + s % 2 for s in size)
        self.stream.height, self.stream.width = self.video_size
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf)}
        if reproducible:
            self.stream.codec_context.thread_count = 1
            self.stream.options = {"crf": str(crf), "threads": "1", "x264-params": "asm=0"}

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

    def discard(self) -> None:
        """Close without flushing the encoder (the file is about to be deleted)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - a half-written file; the caller removes it
            pass


def write_mp4(path: Path, frames: np.ndarray, fps: float, crf: int = CRF, reproducible: bool = False) -> Path:
    """Write [T,H,W,3] uint8 RGB frames as one H.264 mp4 (``reproducible``: see :class:`Mp4Writer`)."""
    writer = Mp4Writer(path, fps, frames.shape[1:3], crf, reproducible)
    writer.write(frames)
    writer.close()
    return Path(path)
