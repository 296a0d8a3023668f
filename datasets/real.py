"""Real-footage splits (``--recipe real``): the aligned face crops of unaligned videos, no GT.

A real split holds, per clip, the FFHQ-aligned 512x512 crops that the official scripts hand
their networks when run on real video (KEEP ``inference_keep.py`` and DicFace
``scripts/inference.py`` without ``--has_aligned``): RetinaFace landmarks per frame, missed
frames linearly interpolated, the tracks smoothed with a Gaussian of sigma 5 frames, each frame
first upscaled so its short side is at least 512 (bilinear, as their ``FaceRestoreHelper.read_image``),
then warped onto the FFHQ-512 template with the grey border. Detection, interpolation and
smoothing are :mod:`vfr_bench.align`'s (dlib HOG offline, RetinaFace when its weights are
present). Nothing is degraded and there is no ground truth: the manifest says ``gt: none``,
``degradation: real`` and records the per-frame alignment (raw landmarks, which frames had a
face, smoothed track, frame -> crop matrices). A clip with a face in fewer than half of its
frames is skipped with the reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

REAL = "real"
# A clip is usable when a face is found in at least this fraction of its frames.
MIN_FACE_FRACTION = 0.5
# KEEP/DicFace/CodeFormer's FaceRestoreHelper.read_image: short side < 512 -> upscaled to 512.
PRESCALE_MIN_SIDE = 512


class TooFewFacesError(ValueError):
    """A face was found in too few frames of a clip to track it."""


def is_real(recipe) -> bool:
    """Whether a recipe builds a real-footage split (no degradation, no GT)."""
    return recipe.degradation == REAL


def manifest_fields(recipe) -> dict:
    """Top-level manifest fields of a real split (none for synthetic ones, so their hashes stay)."""
    return {"gt": "none", "track": REAL} if is_real(recipe) else {}


def prescale_factor(h: int, w: int, min_side: int = PRESCALE_MIN_SIDE) -> float:
    """Upscale factor of the official helpers' ``read_image`` (1 when the short side is >= 512)."""
    return min_side / min(h, w) if min(h, w) < min_side else 1.0


def _scale_matrix(f: float) -> np.ndarray:
    """[2,3] affine of ``cv2.resize(fx=f, fy=f)``: pixel centres x -> (x + 0.5) f - 0.5."""
    return np.array([[f, 0.0, 0.5 * f - 0.5], [0.0, f, 0.5 * f - 0.5]])


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """[...,2,3] affine ``outer`` after [2,3] ``inner``."""
    return np.concatenate([outer[..., :2] @ inner[:, :2], (outer[..., :2] @ inner[:, 2:]) + outer[..., 2:]], -1)


def _json_points(a: np.ndarray, digits: int = 3) -> list:
    """[T,P,2] floats -> nested lists with None where NaN (JSON has no NaN)."""
    return [[[None if not np.isfinite(v) else round(float(v), digits) for v in p] for p in f] for f in a]


def align_real(frames: np.ndarray, detector="auto", landmarks: Optional[np.ndarray] = None,
               min_fraction: float = MIN_FACE_FRACTION) -> tuple[np.ndarray, dict]:
    """Detect, track and align a real clip.

    Args:
        frames: [T,H,W,3] uint8 RGB unaligned frames.
        detector: a name for :func:`vfr_bench.align.build_detector` or a callable frame -> [5,2].
        landmarks: [T,5,2] given landmarks (an annotation); no detector runs.
        min_fraction: skip threshold on the fraction of frames with a face.

    Returns:
        [T,512,512,3] uint8 crops and the per-frame alignment record for the manifest.

    Raises:
        NoFaceError: no face in any frame.
        TooFewFacesError: a face in fewer than ``min_fraction`` of the frames.
    """
    from vfr_bench import align as A
    if landmarks is not None:
        raw, backend = np.asarray(landmarks, np.float64), "annotation"
    else:
        det = A.build_detector(detector) if isinstance(detector, str) else detector
        raw, backend = A.detect_landmarks(frames, det), getattr(det, "backend", "custom")
    found = np.isfinite(raw[:, :3]).all((1, 2))  # eyes and nose: every backend gives those
    if not found.any():
        raise A.NoFaceError("no face found in any frame")
    if found.mean() < min_fraction:
        raise TooFewFacesError(f"face found in only {int(found.sum())} of {len(found)} frames "
                               f"(a real clip needs one in at least {min_fraction:.0%})")
    smoothed = A.smooth_tracks(A.interpolate_missing(raw), A.SMOOTH_SIGMA)
    f = prescale_factor(*frames.shape[1:3])
    scale = _scale_matrix(f)
    up_matrices = A.template_matrices(A.apply_affine(scale, smoothed))  # upscaled frame -> crop
    faces = np.empty((len(frames), A.FACE_SIZE, A.FACE_SIZE, 3), np.uint8)
    for t, frame in enumerate(frames):  # one upscaled frame at a time: long videos stay in memory
        up = frame if f == 1.0 else cv2.resize(frame, (0, 0), fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
        faces[t] = A.warp_faces(up[None], up_matrices[t:t + 1])[0]
    matrices = _compose(up_matrices, scale)  # original frame -> crop
    return faces, {"backend": backend, "smoothing_sigma": A.SMOOTH_SIGMA, "prescale": round(f, 6),
                   "min_face_fraction": min_fraction, "n_found": int(found.sum()),
                   "found": found.astype(int).tolist(), "landmarks": _json_points(raw),
                   "smoothed": _json_points(smoothed), "matrices": np.round(matrices, 6).tolist()}


def process_real_clip(recipe, seed: int, clip, root: Path, detector: str = "auto") -> dict:
    """Align one real clip into ``root/clips/<id>/lq``; returns its manifest entry or
    ``{"id", "skipped": reason}`` (the recipe has no operators, so ``seed`` draws nothing)."""
    from vfr_bench.align import NoFaceError
    from vfr_bench.datasets.build import _one_thread, _write_frames
    from vfr_bench.datasets.sources import read_annotation
    try:
        frames = clip.read()
    except Exception as e:
        return {"id": clip.id, "skipped": f"unreadable: {e}"}
    try:
        with _one_thread():
            if clip.aligned:  # a built split's clips are aligned crops already
                faces, alignment = frames, {"backend": "none", "note": "frames taken as FFHQ-aligned 512 crops"}
            else:
                given = read_annotation(clip.annotation)[0] if clip.annotation is not None else None
                if given is not None and len(given) != len(frames):
                    raise ValueError(f"annotation {clip.annotation.name} has {len(given)} frames, "
                                     f"the clip {len(frames)}")
                faces, alignment = align_real(frames, detector, given)
    except (NoFaceError, TooFewFacesError) as e:
        return {"id": clip.id, "skipped": str(e)}
    except Exception as e:
        return {"id": clip.id, "skipped": f"{type(e).__name__}: {e}"}
    base = f"clips/{clip.id}"
    _write_frames(root / base / "lq", faces)
    return {"id": clip.id, "n_frames": len(faces), "fps": clip.fps, "gt": None, "lq": f"{base}/lq",
            "params": [], "alignment": alignment}
