"""Face checks that need no GT: is there still a face, and is it still the input's person.

* ``face_found[dlib|retinaface]``: the share of restored frames in which a face detector
  finds a face (per-frame 1/0). A restorer that smears, blanks or breaks the face on some
  frames loses them here. ``dlib``: dlib's HOG frontal detector (offline, CPU, one
  upsampling, the detector of :func:`~vfr_bench.metrics.landmarks.face_boxes`).
  ``retinaface``: RetinaFace-ResNet50 (``detection_Resnet50_Final.pth``) batched on the
  metric device, through FLAIR's detector (:mod:`vfr_bench.methods.flair.face_nets`:
  score > 0.5, NMS 0.4, eye distance >= 0.1 px), fed BGR 0..255 frames so its BGR mean is
  subtracted from BGR data as facexlib's ``detect_faces`` does.
* ``LQ_IDS[dlib|arcface]``: cosine similarity of the identity embeddings of each restored
  frame and the method's input frame, mean over frames: does the restorer keep the
  person it was given? The input is first upsampled to the restored size (bicubic, as
  the ``lq-upsample`` baseline), so both go through the same landmark box and
  embedding at one scale; ``lq-upsample`` itself therefore scores exactly 1 (the
  ceiling, reached by changing nothing), and ``LQ_IDS`` equals ``IDS`` computed with the
  upsampled input as GT. On heavy degradations the input's own embedding is unreliable,
  so read it beside the quality columns, never alone.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, SharedNetworks, frames_chunks
from vfr_bench.metrics.identity import IDS, clip_embeddings, cosine_similarity
from vfr_bench.metrics.landmarks import face_boxes, uint8_frames

DETECTORS = ("dlib", "retinaface")
DETECTOR_WEIGHTS = {"dlib": (), "retinaface": ("retinaface-resnet50",)}


def build_retinaface_detector() -> torch.nn.Module:
    """RetinaFace-ResNet50 with the registry file (strict), wrapped for batched detection."""
    from vfr_bench.methods.flair.face_nets import RetinaFaceLandmarks, build_retinaface, load_retinaface_into
    net = build_retinaface()
    load_retinaface_into(net)
    return RetinaFaceLandmarks(net).eval()


@torch.no_grad()
def retinaface_found(frames: torch.Tensor, detector: torch.nn.Module, chunk: int = 8) -> np.ndarray:
    """[T] bool: RetinaFace finds a face in each frame.

    Args:
        frames: [T,3,H,W] float RGB in [0,1].
        detector: from :func:`build_retinaface_detector`.
    """
    found = []
    for s in frames_chunks(frames.shape[0], chunk):
        bgr = frames[s].flip(1) * 255.0  # RGB [0,1] -> BGR 0..255, facexlib's detector input
        found += [lm is not None for lm in detector(bgr)]
    return np.array(found, dtype=bool)


class FaceFound(ClipMetric):
    """Share of restored frames where the detector finds a face (no GT).

    Args:
        detector: ``dlib`` (HOG, offline) or ``retinaface``.
    """
    higher_is_better = True
    needs_gt = False

    def __init__(self, detector: str = "dlib"):
        super().__init__()
        if detector not in DETECTORS:
            raise ValueError(f"face_found detector must be one of {DETECTORS}, got {detector!r}")
        self.detector = detector
        self.weights = DETECTOR_WEIGHTS[detector]
        self.retinaface = None

    def unavailable_reason(self) -> Optional[str]:
        if self.detector == "dlib":
            try:
                import dlib  # noqa: F401
            except ImportError:
                return "dlib is not installed; run: pip install dlib-bin"
        return super().unavailable_reason()

    def setup(self, device: torch.device, nets: Optional[SharedNetworks] = None) -> "FaceFound":
        if self.detector == "retinaface":
            self.retinaface = (nets or SharedNetworks()).get("retinaface-resnet50", build_retinaface_detector,
                                                             device)
        return self

    def found(self, ctx: MetricContext) -> np.ndarray:
        """[T] bool per restored frame, computed once per clip."""
        if self.detector == "dlib":
            return ctx.cached("face_found[dlib]:pred",
                              lambda: np.array([b is not None for b in face_boxes(uint8_frames(ctx, "pred"),
                                                                                  "detect")]))
        return ctx.cached("face_found[retinaface]:pred", lambda: retinaface_found(ctx.pred, self.retinaface))

    def score(self, ctx: MetricContext) -> ClipScore:
        f = self.found(ctx)
        return ClipScore(float(f.mean()), f.astype(float).tolist(), {"frames_no_face": int((~f).sum())})


def upsampled_input(ctx: MetricContext) -> MetricContext:
    """A context whose ``pred`` is the method input at the restored size (bicubic, clamped, as
    ``lq-upsample``), cached in ``ctx`` so every LQ-referenced column shares its features."""
    def make() -> MetricContext:
        if ctx.lq is None:
            raise ValueError("LQ-referenced metrics need the method input (MetricContext.lq)")
        lq = ctx.lq.to(ctx.pred.device, ctx.pred.dtype)
        if tuple(lq.shape[-2:]) != tuple(ctx.pred.shape[-2:]):
            lq = F.interpolate(lq, size=ctx.pred.shape[-2:], mode="bicubic", align_corners=False)
        return MetricContext(lq.clamp(0, 1), meta=ctx.meta)
    return ctx.cached("context:lq@pred_size", make)


class LQIDS(IDS):
    """Mean over frames of the identity cosine similarity of restored vs input frame (no GT).

    Args:
        backend: ``arcface`` or ``dlib``.
    """
    needs_gt = False

    def score(self, ctx: MetricContext) -> ClipScore:
        ep, vp = clip_embeddings(ctx, "pred", self.backend, self.arcface)
        el, vl = clip_embeddings(upsampled_input(ctx), "pred", self.backend, self.arcface)
        ok = vp & vl
        s = np.full(len(ok), np.nan)
        s[ok] = cosine_similarity(ep[ok], el[ok])
        value = float(s[ok].mean()) if ok.any() else float("nan")
        return ClipScore(value, s.tolist(), {"frames_no_face": int((~ok).sum())})
