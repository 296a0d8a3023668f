"""FID and KID of the restored frames against the GT frames of the split, as FLAIR reports them.

FLAIR (Sec. 5.1, "frame-wise perceptual metrics") prints FID (Heusel et al. 2017) and KID
(Bińkowski et al. 2018) over the frames of a test set; VQFR prints FID against FFHQ
statistics. Both are split-level, like FVD: :meth:`score` keeps each clip's features
(stored beside the clip record, reloaded by the summary: every DDP rank and resumed run
counts) and :meth:`reduce` pools the frames of every clip.

Features: the 2048-d pool3 output of TensorFlow's Inception-v3 (2015-12-05 graph) as
torch-fidelity ports it (``FeatureExtractorInceptionV3``, the network torchmetrics' FID/KID
use), with its weights file ``weights-inception-2015-12-05-6726825d.pth`` loaded from our
weights folder (never downloaded). Input: each frame as uint8 RGB (round(255 x)), resized
inside the network to 299x299 with TensorFlow-1 bilinear resampling, then (x - 128) / 128.

* ``FID``: Fréchet distance between Gaussians fitted to the restored and the GT frame
  features of the split (:func:`vfr_bench.metrics.fvd.frechet_distance`), float64. Range
  [0, inf), lower is better. Noisy below a few thousand frames (2048-d covariances).
* ``FID[ref]``: the restored frames against precomputed reference statistics
  (``bench --fid-ref PATH``), VQFR's FFHQ protocol; needs no GT. Accepted files: ``.npz``
  with ``mu``/``sigma`` (pytorch-fid ``--save-stats``, torch-fidelity's cache) or a torch
  file with ``mean``/``cov`` (basicsr/VQFR ``inception_FFHQ_512.pth``). VQFR computed its
  statistics with basicsr's pytorch-fid Inception (same TF weights; float input in [-1,1],
  PyTorch bilinear resize), so our features differ slightly from theirs: close to, not
  exactly, VQFR's protocol. A separate column, so a number against FFHQ never shares a
  column with one against the split's GT.
* ``KID``: unbiased MMD^2 with the polynomial kernel k(x, y) = (x.y / d + 1)^3, the mean
  over 100 subsets of 1000 frames drawn without replacement from each set, as
  torch-fidelity (``kid_subsets``, ``kid_subset_size``, ``rng_seed=2020``: the same draws,
  so the same value on the same features). With fewer than 1000 frames every subset is the
  whole set (torch-fidelity and torchmetrics refuse; the value is then the unbiased MMD^2
  of all frames). Stored raw: FLAIR prints KID x1e3 (``configs/papers`` carries the scale).
  Range about [0, inf) (slightly negative when the sets are alike), lower is better.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint
from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, SharedNetworks, frames_chunks
from vfr_bench.metrics.fvd import frechet_distance, frechet_distance_to_stats

DIM = 2048
KID_SUBSETS, KID_SUBSET_SIZE, KID_SEED = 100, 1000, 2020  # torch-fidelity's defaults


def build_inception() -> torch.nn.Module:
    """torch-fidelity's Inception-v3 with our weights file, strict, eval, CPU.

    torch-fidelity's constructor unpickles its file unrestricted (or downloads
    without a path), so we read the file with :func:`load_checkpoint` first and hand it the
    checked state dict.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    sd = load_checkpoint(weight_registry.locate("inception-fid"))
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return FeatureExtractorInceptionV3("inception-v3-compat", [str(DIM)], feature_extractor_weights_path=buf).eval()


@torch.no_grad()
def inception_features(frames: torch.Tensor, net: torch.nn.Module, chunk: int = 16) -> np.ndarray:
    """[T,3,H,W] float RGB in [0,1] -> [T,2048] float32 pool3 features."""
    device = next(net.parameters()).device
    out = []
    for s in frames_chunks(frames.shape[0], chunk):
        u8 = (frames[s].float().clamp(0, 1) * 255).round().to(torch.uint8)  # torch-fidelity's input
        out.append(net(u8.to(device))[0].float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, DIM), np.float32)


def clip_inception(ctx: MetricContext, which: str, net: torch.nn.Module) -> np.ndarray:
    """[T,2048] features of ``ctx.pred`` or ``ctx.gt``, computed once per clip (FID, FID[ref], KID)."""
    return ctx.cached(f"inception:{which}", lambda: inception_features(getattr(ctx, which), net))


def mmd2_polynomial(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size sets with k(a, b) = (a.b / d + 1)^3, float64.

    Args:
        x, y: [m,D] features, m >= 2.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, d = x.shape
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def kernel_inception_distance(x: np.ndarray, y: np.ndarray, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int = KID_SEED) -> float:
    """KID: mean over ``subsets`` random subsets of :func:`mmd2_polynomial` (torch-fidelity's draws).

    Args:
        x, y: [N,D] and [M,D] features; subsets of min(subset_size, N, M) rows (NaN below 2).
    """
    n = min(subset_size, len(x), len(y))
    if n < 2:
        return float("nan")
    rng = np.random.RandomState(seed)
    vals = []
    for _ in range(subsets):
        ix = rng.choice(len(x), n, replace=False)
        iy = rng.choice(len(y), n, replace=False)
        vals.append(mmd2_polynomial(x[ix], y[iy]))
    return float(np.mean(vals))


def _numpy_safe_globals() -> list:
    """What the restricted (weights-only) unpickler must allow for numpy arrays in a torch file
    (basicsr saves its FID statistics that way, under numpy 1's module names)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    dtypes = [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int64)]
    return [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype, *dtypes]


def load_reference_stats(path: Union[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """(mu [2048], sigma [2048,2048]) float64 from a reference statistics file.

    Raises:
        ValueError: unreadable file, missing keys or wrong shapes (message names the file, what
            was found and the accepted formats).
    """
    path = Path(path)
    formats = ".npz with mu/sigma (pytorch-fid, torch-fidelity) or a torch file with mean/cov (basicsr, VQFR)"
    if not path.is_file():
        raise ValueError(f"FID reference statistics {path} not found; expected {formats}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
        else:
            d = load_checkpoint(path, allowed=_numpy_safe_globals())
    except Exception as e:  # noqa: BLE001 (any unreadable file is the same user error)
        raise ValueError(f"cannot read FID reference statistics {path} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:160]}); expected {formats}") from None
    keys = ("mu", "sigma") if isinstance(d, dict) and "mu" in d else ("mean", "cov")
    if not isinstance(d, dict) or any(k not in d for k in keys):
        found = sorted(d)[:8] if isinstance(d, dict) else type(d).__name__
        raise ValueError(f"{path}: no mu/sigma or mean/cov (found {found}); expected {formats}")
    mu, sigma = (np.asarray(d[k].numpy() if torch.is_tensor(d[k]) else d[k], np.float64) for k in keys)
    if mu.shape != (DIM,) or sigma.shape != (DIM, DIM):
        raise ValueError(f"{path}: {keys[0]} {mu.shape}, {keys[1]} {sigma.shape}; expected ({DIM},) and "
                         f"({DIM}, {DIM}): statistics of Inception pool3 features")
    return mu, sigma


class InceptionMetric(ClipMetric):
    """Base of FID and KID: the shared Inception network, features stored per clip."""
    higher_is_better = False
    weights = ("inception-fid",)

    def __init__(self) -> None:
        super().__init__()
        self.inception = None

    def unavailable_reason(self) -> Optional[str]:
        try:
            import torch_fidelity  # noqa: F401
        except ImportError:
            return "torch-fidelity is not installed; run: pip install torch-fidelity"
        return super().unavailable_reason()

    def setup(self, device: torch.device, nets: Optional[SharedNetworks] = None) -> "InceptionMetric":
        self.inception = (nets or SharedNetworks()).get("inception-fid", build_inception, device)
        return self

    def pair_features(self, ctx: MetricContext) -> np.ndarray:
        """[T,2,2048] float32: per frame (restored, GT) features."""
        return np.stack([clip_inception(ctx, "pred", self.inception), clip_inception(ctx, "gt", self.inception)], 1)

    @staticmethod
    def pooled(scores: Sequence[ClipScore]) -> Optional[np.ndarray]:
        feats = [s.features for s in scores if s.features is not None and len(s.features)]
        return np.concatenate(feats) if feats else None


class FID(InceptionMetric):
    """Split-level Fréchet distance of Inception features: restored vs GT frames, or vs reference statistics.

    Args:
        reference: ``gt`` (the split's GT frames, ``FID``) or ``stats`` (``FID[ref]``).
        ref_stats: the reference statistics file (``reference="stats"``; from ``bench --fid-ref``).
    """

    def __init__(self, reference: str = "gt", ref_stats: Optional[Union[str, Path]] = None) -> None:
        super().__init__()
        if reference not in ("gt", "stats"):
            raise ValueError(f"FID reference must be 'gt' or 'stats', got {reference!r}")
        self.reference = reference
        self.ref_stats = None if ref_stats is None else Path(ref_stats)
        self.needs_gt = reference == "gt"
        self._ref: Optional[tuple[np.ndarray, np.ndarray]] = None

    def reference_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) of the reference file, read once."""
        if self._ref is None:
            if self.ref_stats is None:
                raise ValueError("FID[ref] needs reference statistics: bench --fid-ref PATH "
                                 "(.npz with mu/sigma, or VQFR's inception_FFHQ_512.pth)")
            self._ref = load_reference_stats(self.ref_stats)
        return self._ref

    def unavailable_reason(self) -> Optional[str]:
        if self.reference == "stats":
            try:
                self.reference_stats()
            except ValueError as e:
                return str(e)
        return super().unavailable_reason()

    def score(self, ctx: MetricContext) -> ClipScore:
        if self.reference == "stats":
            f = clip_inception(ctx, "pred", self.inception)
        else:
            f = self.pair_features(ctx)
        return ClipScore(float("nan"), None, {"frames": int(f.shape[0])}, f)

    def reduce(self, scores: Sequence[ClipScore]) -> float:
        """Fréchet distance over the frames of every clip (NaN with fewer than 2 frames)."""
        f = self.pooled(scores)
        if f is None or f.shape[0] < 2:
            return float("nan")
        if self.reference == "stats":
            return frechet_distance_to_stats(f, *self.reference_stats())
        return frechet_distance(f[:, 0], f[:, 1])


class KID(InceptionMetric):
    """Split-level kernel inception distance of restored vs GT frames (raw, not x1e3)."""

    def score(self, ctx: MetricContext) -> ClipScore:
        f = self.pair_features(ctx)
        return ClipScore(float("nan"), None, {"frames": int(f.shape[0])}, f)

    def reduce(self, scores: Sequence[ClipScore]) -> float:
        f = self.pooled(scores)
        if f is None:
            return float("nan")
        return kernel_inception_distance(f[:, 0], f[:, 1])

