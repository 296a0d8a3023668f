"""HQ sources for ``vfr-bench degrade``: a built split, or a folder of clips.

A folder clip is either a folder of PNG/JPG frames (VFHQ-Test's layout) or a video file
(mp4/mov/mkv/avi, decoded with decord, PyAV as fallback). A frame folder may come with a
VFHQ-style annotation, found as ``<src>/<clip>.txt``, ``<src>/annotations/<clip>.txt`` or a
single ``.txt`` inside the clip folder: one line per frame, ``INDEX X0 Y0 W H`` followed by
the five landmarks (VFHQ meta info), or ``NAME x1 y1 ... x5 y5`` / ten bare numbers (the
landmark files of KEEP and DicFace); header lines are skipped. Landmarks are in FFHQ order
(left eye, right eye, nose, left and right mouth corners).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from vfr_bench.datasets.clips import read_frames
from vfr_bench.datasets.splits import built_splits, load_split
from vfr_bench.registry import UnknownNameError

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi")


class SourceError(ValueError):
    """``--src`` names nothing usable (no such folder, a single file)."""


@dataclass(frozen=True)
class HQClip:
    """One HQ source clip.

    Attributes:
        id: clip id (folder name or video file stem).
        path: frame folder or video file.
        fps: frames per second (25 when unknown).
        annotation: VFHQ-style annotation file, if any.
        aligned: frames are FFHQ-aligned already (clips of a built split).
    """
    id: str
    path: Path
    fps: float = 25.0
    annotation: Optional[Path] = None
    aligned: bool = False

    def read(self) -> np.ndarray:
        """[T,H,W,3] uint8 RGB. Raises ValueError for empty/unreadable clips or mixed sizes."""
        if self.path.is_dir():
            return read_frames(self.path)
        return read_video(self.path)


def read_video(path: Path) -> np.ndarray:
    """[T,H,W,3] uint8 RGB frames of a video file (decord, else PyAV, one thread).

    Raises:
        ValueError: neither can decode it, or it has no frames.
    """
    frames, decord_error = None, None
    try:
        import decord
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        frames = vr.get_batch(list(range(len(vr)))).asnumpy() if len(vr) else np.zeros((0,))
    except ImportError:
        pass
    except Exception as e:  # decord cannot open it: try PyAV before giving up
        decord_error = e
    if frames is None:
        import av
        try:
            with av.open(str(path)) as c:
                c.streams.video[0].thread_count = 1
                decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        except Exception as e:
            extra = f" (decord: {decord_error})" if decord_error else ""
            raise ValueError(f"cannot decode video {path}: {e}{extra}") from None
        frames = np.stack(decoded) if decoded else np.zeros((0,))
    if len(frames) == 0:
        raise ValueError(f"no frames in {path}")
    return np.ascontiguousarray(frames)


def video_fps(path: Path) -> float:
    try:
        import av
        with av.open(str(path)) as c:
            rate = c.streams.video[0].average_rate
            return float(rate) if rate else 25.0
    except Exception:
        return 25.0


def read_annotation(path: Path) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Landmarks [T,5,2] and boxes [T,4] (x0, y0, w, h; None when absent) of an annotation file.

    Raises:
        ValueError: no landmark line in the file.
    """
    lms, boxes = [], []
    for line in Path(path).read_text().splitlines():
        tok = line.replace(",", " ").split()
        if not tok:
            continue
        try:
            nums = [float(t) for t in tok]
            name = None
        except ValueError:
            try:
                nums = [float(t) for t in tok[1:]]
            except ValueError:
                continue  # header line
            name = tok[0]
        if name is None and len(nums) in (11, 15):
            nums = nums[1:]  # leading frame index
        if len(nums) == 14:
            boxes.append(nums[:4])
            lms.append(nums[4:])
        elif len(nums) == 10:
            lms.append(nums)
    if not lms:
        raise ValueError(f"no landmark lines in {path}")
    return np.asarray(lms).reshape(-1, 5, 2), (np.asarray(boxes) if len(boxes) == len(lms) else None)


def _annotation_for(src: Path, clip: Path) -> Optional[Path]:
    for p in (src / f"{clip.name}.txt", src / "annotations" / f"{clip.name}.txt"):
        if p.is_file():
            return p
    inside = sorted(clip.glob("*.txt")) if clip.is_dir() else []
    return inside[0] if len(inside) == 1 else None


def list_clips(src: str | Path) -> tuple[list[HQClip], str]:
    """The HQ clips of ``src`` and a description of the source.

    ``src`` is a built split name (its GT clips), a split folder (has ``manifest.json``) or a
    folder of clip folders / video files.

    Raises:
        UnknownNameError: ``src`` is neither a folder nor a built split name.
        SourceError: ``src`` is a path that does not exist, or a file.
        SplitError: ``src`` is a split whose manifest cannot be read.
    """
    p = Path(src)
    if p.is_file():
        raise SourceError(f"--src {src} is a file; give the folder that holds the clips (frame folders or "
                          f"video files), or a built split name")
    if p.is_dir() and not (p / "manifest.json").is_file():
        clips = []
        for child in sorted(p.iterdir()):
            if child.is_dir() and child.name != "annotations":
                clips.append(HQClip(child.name, child, 25.0, _annotation_for(p, child)))
            elif child.suffix.lower() in VIDEO_EXTS:
                clips.append(HQClip(child.stem, child, video_fps(child)))
        return clips, f"folder {p.name}"
    text = str(src)
    if not p.exists() and ("/" in text or "\\" in text or text.startswith(".")):
        raise SourceError(f"--src {src}: no such folder; give a folder of clips (frame folders or "
                          f"video files) or a built split name (see: vfr-bench splits)")
    try:
        split = load_split(text)
    except UnknownNameError:
        raise UnknownNameError(f"--src {src}: no such folder, and no built split of that name "
                               f"(built: {', '.join(built_splits())})") from None
    return ([HQClip(c.id, c.gt, c.fps, aligned=True) for c in split.clips],
            f"split {split.name} ({split.manifest_sha256[:12]})")
