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
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench import weights as weight_registry
from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, SharedNetworks

WINDOW, SIZE = 16, 224


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets, in float64.

    tr((S_a S_b)^{1/2}) is computed as sum sqrt(eig(A^{1/2} S_b A^{1/2})) with A = S_a:
    that matrix is symmetric PSD with the same eigenvalues as S_a S_b, so no complex
    sqrtm and no eps regularisation are needed.

    Args:
        feats_a: [N,D] features.
        feats_b: [M,D] features (N, M >= 2).
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    tr_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2.0 * tr_sqrt)


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
        fp, fg = i3d_features(ctx.pred, self.i3d), i3d_features(ctx.gt, self.i3d)
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
