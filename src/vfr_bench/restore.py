"""``vfr-bench restore``: run one method on a user's video (or folder of frames).

Pipeline: (unless the input is aligned already) a first pass over the frames detects the
face's 5 landmarks per frame, and the track is interpolated over missing frames, smoothed
over time and mapped to the FFHQ-512 template with the functions of :mod:`vfr_bench.align`
(what ``align_clip`` does) -> a second pass reads the frames again a chunk at a time, crops
the faces, restores them with the method's ``restore(lq, meta)``, pastes them back with a
soft mask and appends them to an H.264 mp4 (and optionally PNG frames) at the input's rate
and size. Memory holds one chunk of frames, never the whole video.

Paste-back mask: a square covering the crop, zero on a ``2*feather``-px border and
Gaussian-blurred with a ``2*feather+1`` kernel, built in crop coordinates and warped into the
frame with the inverse transform. It follows the soft square mask of facexlib's
``paste_faces_to_input_image`` used by KEEP (Feng et al., ECCV 2024, github.com/jnjaby/KEEP),
whose feather width is ``int(sqrt(mask area)) // 20`` (25 px for a 512 crop), without its
face-parsing mask (that needs a parsing network). Because the mask is built inside the crop
it is exactly 0 outside the warped square: pixels outside the face region are the input's,
bit for bit. Frames where the detector found no face are passed through unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np
import torch

from vfr_bench import align as A

FEATHER = 25  # px at 512: KEEP/facexlib's w_edge = int(sqrt(512 * 512)) // 20
CHUNK = 20  # frames per restore() call (KEEP's default --max_length)
CRF = 18  # libx264 quality of the written mp4 (visually near-lossless)


@dataclass
class RestoreReport:
    """What :func:`restore_video` did.

    Attributes:
        frames: number of frames read and written.
        size: (H, W) of the input (and output) frames.
        fps: frame rate of the input (and output).
        aligned: the input was taken as aligned crops (no detection, no paste-back).
        no_face: indices of frames where no face was found (passed through unchanged).
        backend: landmark source (``dlib-hog``, ``retinaface-resnet50``, ...) or ``aligned``.
        video: the mp4 written.
        frames_dir: folder of PNG frames, when asked for.
    """
    frames: int
    size: tuple[int, int]
    fps: float
    aligned: bool
    no_face: list[int] = field(default_factory=list)
    backend: str = "aligned"
    video: Optional[Path] = None
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
    makes them: NaN frames interpolated, Gaussian smoothing over time (sigma 5), similarity to
    the FFHQ-512 template.

    Args:
        landmarks: [T,5,2] from :func:`detect_track`.

    Returns:
        [T,2,3] matrices (None when no frame has a face) and ``found`` [T] bool: frames where
        the detector saw a face (eyes and nose: the points every backend gives).
    """
    found = np.isfinite(landmarks[:, :3]).all((1, 2))
    if not found.any():
        return None, found
    smoothed = A.smooth_tracks(A.interpolate_missing(landmarks), A.SMOOTH_SIGMA)
    return A.template_matrices(smoothed, A.FFHQ_512), found


def soft_square_mask(size: int = A.FACE_SIZE, feather: int = FEATHER) -> np.ndarray:
    """[size,size] float32 paste-back weight in [0,1]: 1 inside, 0 on a ``feather``-px rim.

    The square is zeroed on a ``2*feather`` border then blurred with a ``2*feather+1`` kernel,
    so the weight reaches 0 at least ``feather`` px inside the crop's edge.
    """
    mask = np.zeros((size, size), np.float32)
    mask[2 * feather: size - 2 * feather, 2 * feather: size - 2 * feather] = 1.0
    return cv2.GaussianBlur(mask, (2 * feather + 1, 2 * feather + 1), 0) if feather > 0 else mask


def paste_faces(frames: np.ndarray, faces: np.ndarray, matrices: np.ndarray,
                mask: np.ndarray) -> np.ndarray:
    """Blend restored crops into their frames through the inverse alignment.

    Args:
        frames: [T,H,W,3] uint8 RGB input frames.
        faces: [T,s,s,3] uint8 RGB restored crops.
        matrices: [T,2,3] frame -> crop affine transforms.
        mask: [s,s] float32 weight in [0,1] (:func:`soft_square_mask`).

    Returns:
        [T,H,W,3] uint8: ``round(w * face + (1 - w) * frame)`` with the warped weight ``w``;
        exactly the input where ``w`` is 0.
    """
    h, w = frames.shape[1:3]
    out = frames.copy()
    for t, m in enumerate(A.invert_affine(matrices)):  # one OpenCV warp per frame
        back = cv2.warpAffine(faces[t], m, (w, h), flags=cv2.INTER_LINEAR)
        weight = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
        inside = weight[..., 0] > 0
        blend = weight[inside] * back[inside] + (1 - weight[inside]) * frames[t][inside]
        out[t][inside] = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    return out


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
class Mp4Writer:
    """Streams RGB frames into an H.264 (libx264, yuv420p) mp4 with PyAV.

    yuv420p needs even sizes: an odd width or height is padded by repeating the last
    column/row (the PNG frames keep the exact size).
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], crf: int = CRF):
        import av
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
        import av
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


def write_pngs(folder: Path, frames: np.ndarray, start: int = 0) -> None:
    """[t,H,W,3] uint8 RGB frames as ``folder/%08d.png`` numbered from ``start``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{start + i:08d}.png"), np.ascontiguousarray(f[..., ::-1]))


def frames_dir_for(video: Path) -> Path:
    """Where ``--frames`` puts PNGs: ``<output without suffix>_frames/`` next to the mp4."""
    return video.with_name(video.stem + "_frames")


# --- the whole job ---------------------------------------------------------------------------
def restore_video(method, src: Path, out: Path, aligned: bool = False, save_frames: bool = False,
                  chunk: int = CHUNK, device: torch.device | str = "cpu", detector="auto",
                  fps: Optional[float] = None, feather: int = FEATHER,
                  progress: bool = True) -> RestoreReport:
    """Restore the face in a video or frame folder and write the result.

    Unaligned input is read twice, a chunk at a time: once to detect the landmarks (the
    temporal smoothing needs the whole track), once to crop, restore, paste and write. Memory
    holds one chunk of frames and crops, plus the [T,5,2] track.

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
    """
    from tqdm import tqdm
    from vfr_bench.interface import ClipMeta
    reason = method.applicable("blind")
    if reason:
        raise ValueError(f"{method.method_name} cannot restore a user's video: {reason}")
    src, out = Path(src), Path(out)
    rate = input_fps(src, fps)
    matrices, found, backend = None, None, "aligned"
    if not aligned:
        landmarks, backend = detect_track(src, detector, chunk, progress)
        matrices, found = track_matrices(landmarks)
    mask = soft_square_mask(A.FACE_SIZE, feather)
    report, writer, start = None, None, 0
    try:
        with tqdm(total=None if found is None else len(found), desc=f"restore {method.method_name}",
                  unit="frame", disable=not progress) as bar:
            for part in iter_frames(src, chunk):
                n, sel = len(part), slice(start, start + len(part))
                if report is None:
                    h, w = part.shape[1:3]
                    report = RestoreReport(frames=0, size=(h, w), fps=rate, aligned=aligned, backend=backend,
                                           video=out, frames_dir=frames_dir_for(out) if save_frames else None)
                    writer = Mp4Writer(out, rate, (h, w))
                    meta = ClipMeta(clip_id=src.stem, fps=rate,
                                    gt_size=(h, w) if aligned else (A.FACE_SIZE, A.FACE_SIZE))
                if aligned:
                    part = restore_chunk(method, part, meta, device)
                elif matrices is not None:
                    faces = restore_chunk(method, A.warp_faces(part, matrices[sel]), meta, device)
                    pasted = paste_faces(part, faces, matrices[sel], mask)
                    part = np.where(found[sel, None, None, None], pasted, part)
                writer.write(part)
                if save_frames:
                    write_pngs(report.frames_dir, part, start)
                start += n
                bar.update(n)
    finally:
        if writer is not None:
            writer.close()
    report.frames = start
    if found is not None:
        report.no_face = [int(i) for i in np.flatnonzero(~found)]
    return report
