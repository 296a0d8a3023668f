"""Reading speed of the split's LQ clips: PNG folders (cv2) vs the same frames as H.264 mp4
read with PyAV and decord (the mp4s are written first, not timed; libx264 CRF 18, yuv420p)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from vfr_bench.perf.timing import timed


def decode_rows(split, n_clips: Optional[int] = None, n_frames: Optional[int] = None) -> dict:
    """frames/s reading the split's LQ clips (all, whole by default: decoding is cheap), one
    timed pass per reader after a warm-up pass (file cache, codec init)."""
    from vfr_bench.datasets.clips import read_frames
    from vfr_bench.video_io import write_mp4
    clips = split.clips[:n_clips]
    out: dict = {"clips": len(clips)}
    with tempfile.TemporaryDirectory() as tmp:
        videos, n = [], 0
        for c in clips:
            frames = read_frames(c.lq, n_frames)
            n += frames.shape[0]
            videos.append(write_mp4(Path(tmp) / f"{c.id}.mp4", frames, c.fps))
        out["frames"] = n
        out["size"] = list(frames.shape[1:3])
        readers: dict[str, Callable[[], list]] = {"png": lambda: [read_frames(c.lq, n_frames) for c in clips]}
        try:
            import av

            def pyav():
                res = []
                for v in videos:
                    with av.open(str(v)) as container:
                        res.append(np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]))
                return res
            readers["pyav"] = pyav
        except ImportError:
            out["pyav_note"] = "PyAV not installed"
        try:
            import decord

            def dec():
                res = []
                for v in videos:
                    vr = decord.VideoReader(str(v), ctx=decord.cpu(0))
                    res.append(vr.get_batch(list(range(len(vr)))).asnumpy())
                return res
            readers["decord"] = dec
        except ImportError:
            out["decord_note"] = "decord not installed"
        for name, fn in readers.items():
            fn()  # warm-up
            seconds, res = timed(fn, torch.device("cpu"))
            got = sum(a.shape[0] for a in res)
            out[name] = {"fps": got / seconds, "frames": got}
    return out
