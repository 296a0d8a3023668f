"""``vfr-bench restore``: run one method on a user's video (or folder of frames).

Pipeline: read the frames and their rate -> (unless the input is aligned already) detect and
align the face track with :func:`vfr_bench.align.align_clip` (per-frame landmarks, NaN
interpolation, Gaussian temporal smoothing, similarity transform to the FFHQ-512 template)
-> restore the 512 crops with the method's ``restore(lq, meta)`` in chunks of frames, so
memory stays bounded -> paste each restored crop back with a soft mask -> write an H.264 mp4
(and optionally PNG frames) at the input's rate and size.

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
def read_input(path: Path, fps: Optional[float] = None) -> tuple[np.ndarray, float]:
    """Frames and frame rate of a video file (decord, PyAV fallback) or a folder of PNG/JPG frames.

    Args:
        path: video file or frame folder.
        fps: frame rate to use instead of the file's (a folder has none: 25 by default).

    Returns:
        [T,H,W,3] uint8 RGB frames and the frame rate.
    """
    from vfr_bench.datasets.clips import read_frames
    from vfr_bench.datasets.sources import read_video, video_fps
    path = Path(path)
    if path.is_dir():
        return read_frames(path), float(fps or 25.0)
    if not path.is_file():
        raise FileNotFoundError(f"no video or frame folder at {path}")
    return read_video(path), float(fps or video_fps(path))


# --- alignment and paste-back ---------------------------------------------------------
class _CountingDetector:
    """Wraps a frame -> [5,2] detector so a progress bar advances once per frame."""

    def __init__(self, detector, bar):
        self.detector, self.bar = detector, bar
        self.backend = getattr(detector, "backend", "custom")

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        out = self.detector(frame)
        self.bar.update(1)
        return out


def align_track(frames: np.ndarray, detector="auto", progress: bool = True) -> tuple[A.Alignment, np.ndarray]:
    """Detect, smooth and align the face track of a clip (see :func:`vfr_bench.align.align_clip`).

    Args:
        frames: [T,H,W,3] uint8 RGB.
        detector: a :func:`vfr_bench.align.build_detector` name or a callable frame -> [5,2].

    Returns:
        The alignment (crops [T,512,512,3] uint8, matrices [T,2,3]) and ``found`` [T] bool:
        frames where the detector saw a face (the others have interpolated landmarks).

    Raises:
        vfr_bench.align.NoFaceError: no face in any frame.
    """
    from tqdm import tqdm
    det = A.build_detector(detector) if isinstance(detector, str) else detector
    with tqdm(total=len(frames), desc="detect", unit="frame", disable=not progress) as bar:
        res = A.align_clip(frames, detector=_CountingDetector(det, bar))
    # Eyes and nose: the points every backend gives (dlib's 5-point model has no mouth corners).
    found = np.isfinite(res.landmarks[:, :3]).all((1, 2))
    return res, found


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
def restore_chunks(method, crops: np.ndarray, meta, chunk: int = CHUNK,
                   device: torch.device | str = "cpu") -> Iterator[np.ndarray]:
    """Run ``method.restore`` on consecutive chunks of frames, yielding uint8 results.

    Args:
        method: a prepared :class:`vfr_bench.interface.VideoRestorer`.
        crops: [T,h,w,3] uint8 RGB.
        meta: the clip's :class:`vfr_bench.interface.ClipMeta` (``gt_size`` = output size).
        chunk: frames per call; bounds memory, and temporal methods see no context across chunks.
        device: where the method's input goes (the device it was prepared on).

    Yields:
        [t,H,W,3] uint8 RGB restored frames, t <= chunk, in order.
    """
    from vfr_bench.datasets.clips import to_tensor
    for start in range(0, len(crops), chunk):
        lq = to_tensor(crops[start: start + chunk]).to(device)
        with torch.no_grad():
            hq = method.restore(lq, meta)
        if tuple(hq.shape[-2:]) != tuple(meta.gt_size) or len(hq) != len(lq):
            raise ValueError(f"{method.method_name} returned {tuple(hq.shape)} for {len(lq)} frames "
                             f"of size {tuple(meta.gt_size)}")
        yield hq.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


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
                  fps: Optional[float] = None,
                  feather: int = FEATHER, progress: bool = True) -> RestoreReport:
    """Restore the face in a video or frame folder and write the result.

    Args:
        method: a prepared :class:`vfr_bench.interface.VideoRestorer` (``.prepare(device)``).
        src: video file or folder of frames.
        out: the mp4 to write.
        aligned: the frames are FFHQ-aligned face crops: restored whole, no detection or paste-back.
        save_frames: also write PNG frames to :func:`frames_dir_for` ``(out)``.
        chunk: frames per ``restore`` call.
        device: the device the method was prepared on.
        detector: face detector name or callable (unaligned input only).
        fps: frame rate override (default: the video's; 25 for a folder).
        feather: paste-back mask feather in crop pixels (:func:`soft_square_mask`).
    """
    from tqdm import tqdm
    from vfr_bench.interface import ClipMeta
    frames, rate = read_input(src, fps)
    t, h, w = frames.shape[:3]
    report = RestoreReport(frames=t, size=(h, w), fps=rate, aligned=aligned, video=Path(out),
                           frames_dir=frames_dir_for(Path(out)) if save_frames else None)
    reason = method.applicable("blind")
    if reason:
        raise ValueError(f"{method.method_name} cannot restore a user's video: {reason}")
    if aligned:
        crops, matrices, found = frames, None, np.ones(t, bool)
    else:
        try:
            alignment, found = align_track(frames, detector, progress)
            crops, matrices, report.backend = alignment.faces, alignment.matrices, alignment.backend
        except A.NoFaceError:
            crops, matrices, found = frames[:0], None, np.zeros(t, bool)
    report.no_face = [int(i) for i in np.flatnonzero(~found)]
    meta = ClipMeta(clip_id=Path(src).stem, fps=rate, gt_size=crops.shape[1:3] if len(crops) else (h, w))
    mask = soft_square_mask(crops.shape[1], feather) if matrices is not None else None
    writer = Mp4Writer(Path(out), rate, (h, w))
    try:
        with tqdm(total=t, desc=f"restore {method.method_name}", unit="frame", disable=not progress) as bar:
            start = 0
            restored = restore_chunks(method, crops, meta, chunk, device) if found.any() else iter([frames])
            for part in restored:
                n = len(part)
                if matrices is not None:
                    sel = slice(start, start + n)
                    pasted = paste_faces(frames[sel], part, matrices[sel], mask)
                    part = np.where(found[sel, None, None, None], pasted, frames[sel])
                writer.write(part)
                if save_frames:
                    write_pngs(report.frames_dir, part, start)
                start += n
                bar.update(n)
    finally:
        writer.close()
    return report
