"""FVD, the Fréchet video distance (Unterthiner et al. 2018) as DicFace and FLAIR report it.

Features: the Kinetics-400 I3D network in the StyleGAN-V TorchScript export
(``i3d_torchscript.pt``, Skorokhodov et al. 2022, universome/stylegan-v
``src/metrics/frechet_video_distance.py``), called with ``rescale=False,
resize=False, return_features=True`` on [B,3,16,224,224] clips in [-1,1]. Each clip
is cut into non-overlapping 16-frame windows (a shorter tail is dropped; a clip shorter
than 16 frames gives none), frames resized to 224x224 (bilinear, align_corners=False,
no antialiasing, as the StyleGAN-V-derived FVD scripts preprocess). One
feature row per window for the restored and for the GT clip.

FVD is split-level: :meth:`FVD.score` returns NaN as the clip value and the clip's
features ([W,2,D]: window, (pred, gt), feature); :meth:`FVD.reduce` stacks the
features of every clip (the summary reloads them from each clip's .npz, so clips of all
DDP ranks and of resumed runs count) and returns

    FVD = |mu_p - mu_g|^2 + tr(S_p + S_g - 2 (S_p S_g)^{1/2})

Range [0, inf), lower is better. With few windows the covariances are rank-deficient;
the value is still defined but noisy: compare FVD only on splits of many clips.

``FVD[per-clip]`` (:class:`FVDPerClip`) answers "which FVD did you use?": the same distance
between ONE clip's restored and GT windows, then the mean over clips. None of the papers we
cover states a per-video FVD (DicFace and FLAIR print one FVD per test set; StyleGAN-V's is
dataset-level), so this column is our definition, offered beside ``FVD`` because papers
outside this suite differ. It needs >= 2 windows (32 frames) per clip: a shorter clip is
NaN and left out of the mean. With W windows the covariances have rank <= W-1 (a 100-frame
clip gives 6 windows), so the value is dominated by the mean term and far noisier than FVD;
both columns share one I3D pass per clip (``MetricContext`` key ``i3d:pred`` / ``i3d:gt``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench import weights as weight_registry
from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, SharedNetworks

WINDOW, SIZE = 16, 224


def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], covariance [D,D] with ddof=1) of [N,D] features, in float64."""
    f = np.asarray(feats, np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_from_stats(mu_a: np.ndarray, s_a: np.ndarray, mu_b: np.ndarray, s_b: np.ndarray) -> float:
    """Fréchet distance between N(mu_a, s_a) and N(mu_b, s_b), in float64.

    tr((S_a S_b)^{1/2}) is computed as sum sqrt(eig(A^{1/2} S_b A^{1/2})) with A = S_a:
    that matrix is symmetric PSD with the same eigenvalues as S_a S_b, so no complex
    sqrtm and no eps regularisation are needed.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    s_a, s_b = np.asarray(s_a, np.float64), np.asarray(s_b, np.float64)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    tr_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2.0 * tr_sqrt)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets, in float64.

    With fewer samples than dimensions (a small split: 2048-d Inception features, 400-d I3D)
    the exact low-rank form is used instead of DxD eigendecompositions: with centred
    A = (a - mu_a) / sqrt(N-1) and B likewise, S_a = A^T A and S_b = B^T B, so the non-zero
    eigenvalues of S_a S_b are the squared singular values of A B^T and
    tr((S_a S_b)^{1/2}) = ||A B^T||_* (the sum of its singular values).

    Args:
        feats_a: [N,D] features.
        feats_b: [M,D] features (N, M >= 2).
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if min(len(a), len(b)) >= a.shape[1]:
        return frechet_from_stats(*gaussian_stats(a), *gaussian_stats(b))
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = (a - mu_a) / np.sqrt(len(a) - 1), (b - mu_b) / np.sqrt(len(b) - 1)
    tr_sqrt = np.linalg.svd(ca @ cb.T, compute_uv=False).sum()
    return float(((mu_a - mu_b) ** 2).sum() + (ca ** 2).sum() + (cb ** 2).sum() - 2.0 * tr_sqrt)


def frechet_distance_to_stats(feats_a: np.ndarray, mu_b: np.ndarray, s_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to [N,D] features and given reference stats.

    With N < D the trace term is taken from the N x N matrix A S_b A^T (A the centred
    features over sqrt(N-1)), which has the non-zero eigenvalues of S_a S_b.
    """
    a = np.asarray(feats_a, np.float64)
    if len(a) >= a.shape[1]:
        return frechet_from_stats(*gaussian_stats(a), mu_b, s_b)
    mu_a, mu_b, s_b = a.mean(0), np.asarray(mu_b, np.float64), np.asarray(s_b, np.float64)
    ca = (a - mu_a) / np.sqrt(len(a) - 1)
    cross = np.linalg.eigvalsh(ca @ s_b @ ca.T)
    tr_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + (ca ** 2).sum() + np.trace(s_b) - 2.0 * tr_sqrt)


def build_i3d() -> torch.jit.ScriptModule:
    """The StyleGAN-V I3D TorchScript from the weights folder, eval, CPU."""
    return torch.jit.load(str(weight_registry.locate("i3d")), map_location="cpu").eval()


def clip_windows(x: torch.Tensor) -> torch.Tensor:
    """[T,3,H,W] in [0,1] -> [W,3,16,224,224] in [-1,1] (non-overlapping windows)."""
    n = x.shape[0] // WINDOW
    x = x[:n * WINDOW].float()
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    x = x * 2 - 1  # [0,1] -> [-1,1]
    return x.reshape(n, WINDOW, 3, SIZE, SIZE).permute(0, 2, 1, 3, 4).contiguous()


@torch.no_grad()
def i3d_features(x: torch.Tensor, net) -> np.ndarray:
    """[T,3,H,W] in [0,1] -> [W,D] float64 I3D features (one row per 16-frame window)."""
    w = clip_windows(x)
    if w.shape[0] == 0:
        return np.zeros((0, 400))
    f = net(w, rescale=False, resize=False, return_features=True)
    return f.double().cpu().numpy()


def clip_i3d_features(ctx: MetricContext, which: str, net) -> np.ndarray:
    """[W,D] I3D features of ``ctx.pred`` or ``ctx.gt``, computed once per clip (FVD and FVD[per-clip])."""
    return ctx.cached(f"i3d:{which}", lambda: i3d_features(getattr(ctx, which), net))


class FVD(ClipMetric):
    """Split-level Fréchet distance of I3D features of restored vs GT windows."""
    higher_is_better = False
    weights = ("i3d",)

    def __init__(self) -> None:
        super().__init__()
        self.i3d = None

    def setup(self, device: torch.device, nets: Optional[SharedNetworks] = None) -> "FVD":
        self.i3d = (nets or SharedNetworks()).get("i3d", build_i3d, device)
        return self

    def score(self, ctx: MetricContext) -> ClipScore:
        fp, fg = clip_i3d_features(ctx, "pred", self.i3d), clip_i3d_features(ctx, "gt", self.i3d)
        return ClipScore(float("nan"), None, {"windows": int(fp.shape[0])}, np.stack([fp, fg], 1))

    def reduce(self, scores: Sequence[ClipScore]) -> float:
        """Fréchet distance over the windows of every clip (NaN with fewer than 2 windows)."""
        feats = [s.features for s in scores if s.features is not None and len(s.features)]
        if not feats:
            return float("nan")
        f = np.concatenate(feats)
        if f.shape[0] < 2:
            return float("nan")
        return frechet_distance(f[:, 0], f[:, 1])


class FVDPerClip(FVD):
    """Per clip: Fréchet distance of its restored vs GT windows (NaN below 2 windows); split: mean over clips."""

    def score(self, ctx: MetricContext) -> ClipScore:
        fp, fg = clip_i3d_features(ctx, "pred", self.i3d), clip_i3d_features(ctx, "gt", self.i3d)
        value = frechet_distance(fp, fg) if fp.shape[0] >= 2 else float("nan")
        return ClipScore(value, None, {"windows": int(fp.shape[0])})

    reduce = ClipMetric.reduce
