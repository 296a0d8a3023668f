"""``vfr-bench restore``: run one method on a user's video (or folder of frames).

Pipeline: (unless the input is aligned already) a first pass over the frames detects the
face's 5 landmarks per frame, and the track is interpolated over missing frames, smoothed
over time and mapped to the FFHQ-512 template with the functions of :mod:`vfr_bench.align`
(what ``align_clip`` does) -> a second pass reads the frames again a chunk at a time, crops
the faces, restores them with the method's ``restore(lq, meta)``, pastes them back with a
soft mask and appends them to an H.264 mp4 (and optionally PNG frames) at the input's rate
and size (an odd size gains one repeated row/column in the mp4, see
:class:`vfr_bench.video_io.Mp4Writer`). Memory holds one chunk of frames, never the whole video.

Paste-back mask: a square covering the crop, zero on a ``2*feather``-px border and
Gaussian-blurred with a ``2*feather+1`` kernel, built in crop coordinates and warped into the
frame with the inverse transform. It follows the soft square mask of facexlib's
``paste_faces_to_input_image`` used by KEEP (Feng et al., ECCV 2024, github.com/jnjaby/KEEP),
whose feather width is ``int(sqrt(mask area)) // 20`` (25 px for a 512 crop), without its
face-parsing mask (that needs a parsing network). Because the mask is built inside the crop
it is exactly 0 outside the warped square: pixels outside the face region are the input's,
bit for bit. Every frame is restored: where the detector missed, the track is interpolated
between detections (and held from the nearest detection before the first and after the
last one), so no unrestored frame flickers between restored ones; the counts are reported. A video where no frame has a face is refused before anything is written.

Users' files are never destroyed: the mp4 and the PNG folder are written to hidden
temporary names beside the outputs and moved into place only once complete, so a kill
leaves an earlier output as it was (SIGKILL may leave a hidden ``.NAME.*.part``; an
exception or Ctrl-C removes it). An output that is the input is refused.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np
import torch

from vfr_bench import align as A
from vfr_bench.video_io import Mp4Writer

CHUNK = 20  # frames per restore() call (KEEP's default --max_length)


@dataclass
class RestoreReport:
    """What :func:`restore_video` did.

    Attributes:
        frames: number of frames read and written.
        size: (H, W) of the input frames (and of the PNG frames).
        fps: frame rate of the input (and output).
        aligned: the input was taken as aligned crops (no detection, no paste-back).
        backend: landmark source (``dlib-hog``, ``retinaface-resnet50``, ...) or ``aligned``.
        detected: frames where the detector found the face.
        interpolated: frames without a detection between two detections (track interpolated).
        held: frames before the first or after the last detection (track held).
        video: the mp4 written.
        video_size: (H, W) of the mp4: ``size``, or one more row/column where ``size`` is odd
            (:class:`vfr_bench.video_io.Mp4Writer`).
        frames_dir: folder of PNG frames, when asked for.
    """
    frames: int
    size: tuple[int, int]
    fps: float
    aligned: bool
    backend: str = "aligned"
    detected: int = 0
    interpolated: int = 0
    held: int = 0
    video: Optional[Path] = None
    video_size: Optional[tuple[int, int]] = None
    frames_dir: Optional[Path] = None


# --- reading ------------------------------------------------------------------------
def input_fps(path: Path, fps: Optional[float] = None) -> float:
    """Frame rate: ``fps`` if given, else the video's (a frame folder has none: 25)."""
    from vfr_bench.datasets.sources import video_fps
    path = Path(path)
    if fps:
        return float(fps)
    return 25.0 if path.is_dir() else video_fps(path)


def iter_frames(path: Path, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """Stream a video file (decord, PyAV when decord cannot open it) or a folder of PNG/JPG
    frames (sorted by name) in chunks, so a long video never sits in memory whole.

    Yields:
        [t,H,W,3] uint8 RGB, t <= chunk, in order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no frames, an unreadable frame, or frames of mixed sizes.
    """
    path = Path(path)
    if path.is_dir():
        yield from _iter_folder(path, chunk)
    elif path.is_file():
        yield from _iter_video(path, chunk)
    else:
        raise FileNotFoundError(f"no video or frame folder at {path}")


def _iter_folder(path: Path, chunk: int) -> Iterator[np.ndarray]:
    from vfr_bench.datasets.splits import frame_files
    files = frame_files(path)
    if not files:
        raise ValueError(f"no frames in {path}")
    size = None
    for start in range(0, len(files), chunk):
        part = []
        for f in files[start: start + chunk]:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"cannot decode {f}")
            if size is not None and img.shape != size:
                raise ValueError(f"frames of mixed sizes in {path}: {f.name} is {img.shape[1]}x{img.shape[0]}")
            size = img.shape
            part.append(img[..., ::-1])  # BGR -> RGB
        yield np.ascontiguousarray(np.stack(part))


def _iter_video(path: Path, chunk: int) -> Iterator[np.ndarray]:
    try:
        import decord
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception:  # no decord, or it cannot open this file: PyAV below
        vr = None
    if vr is not None:
        if len(vr) == 0:
            raise ValueError(f"no frames in {path}")
        for start in range(0, len(vr), chunk):
            yield vr.get_batch(list(range(start, min(start + chunk, len(vr))))).asnumpy()
        return
    import av
    part, count = [], 0
    try:
        with av.open(str(path)) as c:
            c.streams.video[0].thread_count = 1
            for f in c.decode(video=0):
                part.append(f.to_ndarray(format="rgb24"))
                if len(part) == chunk:
                    count += len(part)
                    yield np.stack(part)
                    part = []
    except av.FFmpegError as e:
        raise ValueError(f"cannot decode video {path}: {e}") from None
    if part:
        yield np.stack(part)
    elif count == 0:
        raise ValueError(f"no frames in {path}")


# --- alignment and paste-back ---------------------------------------------------------
def detect_track(path: Path, detector="auto", chunk: int = CHUNK,
                 progress: bool = True) -> tuple[np.ndarray, str]:
    """Per-frame 5-point landmarks of a video, streamed (first pass).

    Args:
        detector: a :func:`vfr_bench.align.build_detector` name or a callable frame -> [5,2].

    Returns:
        [T,5,2] float64 landmarks in FFHQ order (NaN where no face) and the backend name.
    """
    from tqdm import tqdm
    det = A.build_detector(detector) if isinstance(detector, str) else detector
    found = []
    with tqdm(desc="detect", unit="frame", disable=not progress) as bar:
        for part in iter_frames(path, chunk):
            found.append(A.detect_landmarks(part, det))
            bar.update(len(part))
    return np.concatenate(found), getattr(det, "backend", "custom")


def track_matrices(landmarks: np.ndarray) -> tuple[Optional[np.ndarray], np.ndarray]:
    """Frame -> 512 crop transforms of a landmark track, as :func:`vfr_bench.align.align_clip`
    makes them: NaN frames interpolated (held at the ends), Gaussian smoothing over time
    (sigma 5), similarity to the FFHQ-512 template.

    Args:
        landmarks: [T,5,2] from :func:`detect_track`.

    Returns:
        [T,2,3] matrices for every frame (None when no frame has a face) and ``found`` [T]
        bool: frames where the detector saw a face (eyes and nose: the points every backend gives).
    """
    found = np.isfinite(landmarks[:, :3]).all((1, 2))
    if not found.any():
        return None, found
    smoothed = A.smooth_tracks(A.interpolate_missing(landmarks), A.SMOOTH_SIGMA)
    return A.template_matrices(smoothed, A.FFHQ_512), found


def track_coverage(found: np.ndarray) -> tuple[int, int, int]:
    """(detected, interpolated, held) frame counts of a track with at least one detection:
    misses between the first and last detection are interpolated, those outside held."""
    idx = np.flatnonzero(found)
    held = int(idx[0] + (len(found) - 1 - idx[-1]))
    return int(found.sum()), int(len(found) - found.sum()) - held, held


# --- restoring ------------------------------------------------------------------------------
def restore_chunk(method, crops: np.ndarray, meta, device: torch.device | str = "cpu") -> np.ndarray:
    """One ``method.restore`` call on a chunk of frames.

    Args:
        method: a prepared :class:`vfr_bench.interface.VideoRestorer`.
        crops: [t,h,w,3] uint8 RGB.
        meta: the clip's :class:`vfr_bench.interface.ClipMeta` (``gt_size`` = output size).
        device: where the method's input goes (the device it was prepared on).

    Returns:
        [t,H,W,3] uint8 RGB restored frames.
    """
    from vfr_bench.datasets.clips import to_tensor
    lq = to_tensor(crops).to(device)
    with torch.no_grad():
        hq = method.restore(lq, meta)
    if tuple(hq.shape[-2:]) != tuple(meta.gt_size) or len(hq) != len(lq):
        raise ValueError(f"{method.method_name} returned {tuple(hq.shape)} for {len(lq)} frames "
                         f"of size {tuple(meta.gt_size)}")
    return hq.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


# --- writing ---------------------------------------------------------------------------------
def write_pngs(folder: Path, frames: np.ndarray, start: int = 0) -> None:
    """[t,H,W,3] uint8 RGB frames as ``folder/%08d.png`` numbered from ``start``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{start + i:08d}.png"), np.ascontiguousarray(f[..., ::-1]))


_FRAME_NAME = re.compile(r"\d{8}\.png")  # what write_pngs writes


def frames_dir_for(video: Path) -> Path:
    """Where ``--frames`` puts PNGs: ``<output without suffix>_frames/`` next to the mp4."""
    return video.with_name(video.stem + "_frames")


def _same_path(a: Path, b: Path) -> bool:
    """Same file or folder: after resolving links, or the same inode (hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_paths(src: Path, out: Path, save_frames: bool = False) -> None:
    """Refuse a job that would write over its own input, before any work.

    Raises:
        FileNotFoundError: there is no input at ``src``.
        ValueError: ``out`` is the input (links resolved) or a folder; the ``--frames``
            folder is the input or holds it, is a file, or holds files other than frames
            (replacing it would delete them).
    """
    src, out = Path(src), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"no video or frame folder at {src}")
    if _same_path(src, out):
        raise ValueError(f"--output {out} is the input {src}; choose another file name "
                         f"(the input is read while the output is written)")
    if out.is_dir():
        raise ValueError(f"--output {out} is a folder; give the name of the mp4 to write")
    if save_frames:
        folder = frames_dir_for(out)
        if _same_path(src, folder) or folder.resolve() in src.resolve().parents:
            raise ValueError(f"--frames would replace {folder}, which holds the input {src}; "
                             f"choose another --output name")
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"--frames needs the folder {folder}, but a file has that name; "
                             f"move it or choose another --output name")
        if folder.is_dir():
            foreign = sorted(p.name for p in folder.iterdir() if not _FRAME_NAME.fullmatch(p.name))
            if foreign:
                raise ValueError(f"--frames would replace {folder}, which holds files restore does not "
                                 f"write ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                                 f"move them or choose another --output name")


class StagedOutputs:
    """The mp4 (and PNG folder) written under hidden temporary names beside their final
    paths (same file system, so the final move is a rename), moved into place by
    :meth:`commit` once complete; :meth:`discard` removes them.

    An existing PNG folder is swapped out only in :meth:`commit`: renamed aside, the new one
    renamed in, the old one deleted.
    """

    def __init__(self, video: Path, frames_dir: Optional[Path] = None):
        self.video, self.frames_dir = Path(video), frames_dir
        self.video.parent.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.video_tmp = self.video.with_name(f".{self.video.name}.{tag}.part")
        self.frames_tmp = None
        if frames_dir is not None:
            self.frames_tmp = frames_dir.with_name(f".{frames_dir.name}.{tag}.part")
            self.frames_tmp.mkdir()
        self._tag = tag

    def commit(self) -> None:
        if self.frames_tmp is not None:
            old = None
            if self.frames_dir.exists():
                old = self.frames_dir.with_name(f".{self.frames_dir.name}.{self._tag}.old")
                os.rename(self.frames_dir, old)
            os.rename(self.frames_tmp, self.frames_dir)
            if old is not None:
                shutil.rmtree(old)
        os.replace(self.video_tmp, self.video)

    def discard(self) -> None:
        self.video_tmp.unlink(missing_ok=True)
        if self.frames_tmp is not None:
            shutil.rmtree(self.frames_tmp, ignore_errors=True)


def no_face_message(src: Path, frames: int, backend: str) -> str:
    return (f"no face found in any of the {frames} frames of {src} (detector {backend}); nothing "
            f"written. Try another --detector (mmod finds smaller and darker faces; retinaface "
            f"needs its weights), or --aligned if the frames are aligned face crops")


# --- the whole job ---------------------------------------------------------------------------
def restore_video(method, src: Path, out: Path, aligned: bool = False, save_frames: bool = False,
                  chunk: int = CHUNK, device: torch.device | str = "cpu", detector="auto",
                  fps: Optional[float] = None, feather: int = A.FEATHER,
                  progress: bool = True) -> RestoreReport:
    """Restore the face in a video or frame folder and write the result.

    Unaligned input is read twice, a chunk at a time: once to detect the landmarks (the
    temporal smoothing needs the whole track), once to crop, restore, paste and write. Memory
    holds one chunk of frames and crops, plus the [T,5,2] track. Every frame is restored
    (the track is interpolated where the detector missed). Outputs appear only when complete
    (:class:`StagedOutputs`); an earlier file at ``out`` stays as it was until then.

    Args:
        method: a prepared :class:`vfr_bench.interface.VideoRestorer` (``.prepare(device)``).
        src: video file or folder of frames.
        out: the mp4 to write.
        aligned: the frames are FFHQ-aligned face crops: restored whole, no detection or paste-back.
        save_frames: also write PNG frames to :func:`frames_dir_for` ``(out)``.
        chunk: frames per ``restore`` call; temporal methods see no context across chunks.
        device: the device the method was prepared on.
        detector: face detector name or callable (unaligned input only).
        fps: frame rate override (default: the video's; 25 for a folder).
        feather: paste-back mask feather in crop pixels (:func:`soft_square_mask`).

    Raises:
        FileNotFoundError: no input.
        ValueError: bad paths (:func:`check_paths`), unreadable input, a method that cannot
            run blind; :class:`vfr_bench.align.NoFaceError` when no frame has a face.
    """
    from tqdm import tqdm
    from vfr_bench.interface import ClipMeta
    reason = method.applicable("blind")
    if reason:
        raise ValueError(f"{method.method_name} cannot restore a user's video: {reason}")
    src, out = Path(src), Path(out)
    check_paths(src, out, save_frames)
    rate = input_fps(src, fps)
    matrices, found, backend = None, None, "aligned"
    if not aligned:
        landmarks, backend = detect_track(src, detector, chunk, progress)
        matrices, found = track_matrices(landmarks)
        if matrices is None:
            raise A.NoFaceError(no_face_message(src, len(found), backend))
    mask = A.soft_square_mask(A.FACE_SIZE, feather)
    staged = StagedOutputs(out, frames_dir_for(out) if save_frames else None)
    report, writer, start, done = None, None, 0, False
    try:
        with tqdm(total=None if found is None else len(found), desc=f"restore {method.method_name}",
                  unit="frame", disable=not progress) as bar:
            for part in iter_frames(src, chunk):
                n, sel = len(part), slice(start, start + len(part))
                if report is None:
                    h, w = part.shape[1:3]
                    report = RestoreReport(frames=0, size=(h, w), fps=rate, aligned=aligned, backend=backend,
                                           video=out, frames_dir=staged.frames_dir)
                    writer = Mp4Writer(staged.video_tmp, rate, (h, w))
                    report.video_size = writer.video_size
                    meta = ClipMeta(clip_id=src.stem, fps=rate,
                                    gt_size=(h, w) if aligned else (A.FACE_SIZE, A.FACE_SIZE))
                if aligned:
                    part = restore_chunk(method, part, meta, device)
                else:
                    faces = restore_chunk(method, A.warp_faces(part, matrices[sel]), meta, device)
                    part = A.paste_back(part, faces, matrices[sel], mask)
                writer.write(part)
                if save_frames:
                    write_pngs(staged.frames_tmp, part, start)
                start += n
                bar.update(n)
        writer.close()
        writer = None
        staged.commit()
        done = True
    finally:
        if not done:  # an error or Ctrl-C: leave the earlier outputs, remove ours
            if writer is not None:
                writer.discard()
            staged.discard()
    report.frames = start
    if found is not None:
        report.detected, report.interpolated, report.held = track_coverage(found)
    return report
