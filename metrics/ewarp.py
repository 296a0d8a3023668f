"""E_warp, the flow warping error (Lai et al., ECCV 2018), as FLAIR's Table 3 reports it.

Lai et al., "Learning Blind Video Temporal Consistency" (official repo
phoenix104104/fast_blind_video_consistency, ``evaluate_WarpError.py``): for each pair
of consecutive frames (x_t, x_{t+1}), the flow F from t to t+1 warps x_{t+1} back to
t, a non-occlusion mask M drops pixels where the flow is unreliable, and

    E_t = sum_{p in M} || x_t(p) - warp(x_{t+1}, F)(p) ||_2^2 / |M|
    E_warp = 1/(T-1) sum_t E_t

with frames RGB float in [0,1]; the squared difference is summed over the three
channels and averaged over the non-occluded pixels, as Lai's script does. FLAIR
(Table 3) averages it over frame pairs and reports it x1e-3: the column value here is
``1000 * E_warp`` (so 1.5 means 1.5e-3). Range [0, inf), lower is better.

Flow and mask come from the GT clip by default (``flow_source="gt"``: the restored
clip is judged against the true motion, as KEEP's Eq. A.2 does for its temporal loss)
or from the restored clip (``flow_source="pred"``, Lai's own protocol); the choice is
in the column's ``extra``. The mask follows the forward-backward consistency test
Lai et al. use (Sundaram et al. 2010, Ruder et al. 2016): pixel p is occluded when

    |F(p) + B(p + F(p))|^2 > 0.01 (|F(p)|^2 + |B(p + F(p))|^2) + 0.5

or on a motion boundary, |grad F_x|^2 + |grad F_y|^2 > 0.01 |F|^2 + 0.002, and we also
drop pixels whose flow leaves the frame. Warping is bilinear (``grid_sample``).

Backends: ``dis`` (OpenCV DIS optical flow, medium preset, on 8-bit luma; offline,
CPU) and ``raft`` (torchvision RAFT-large, ``raft_large_C_T_SKHT_V2-ff5fadd5.pth``,
12 refinement iterations, on the metric device, batched over pairs).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint
from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, SharedNetworks, frames_chunks

BACKENDS = ("dis", "raft")
BACKEND_WEIGHTS = {"dis": (), "raft": ("raft-large",)}
FLOW_SOURCES = ("gt", "pred")
REPORT_SCALE = 1e3  # the column holds E_warp x1e-3, as FLAIR's Table 3


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: out(p) = x(p + flow(p)), bilinear, border values outside.

    Args:
        x: [N,C,H,W] float.
        flow: [N,2,H,W] float (dx, dy) in pixels, from the output frame to ``x``.
    """
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=flow.dtype),
                            torch.arange(w, device=x.device, dtype=flow.dtype), indexing="ij")
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), -1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def non_occlusion_mask(fw: torch.Tensor, bw: torch.Tensor) -> torch.Tensor:
    """Pixels of frame t whose forward flow is trustworthy (Lai et al.'s consistency test).

    Args:
        fw: [N,2,H,W] flow t -> t+1 (pixels).
        bw: [N,2,H,W] flow t+1 -> t.

    Returns:
        [N,1,H,W] float {0,1}, 1 = not occluded, inside the frame, not a motion boundary.
    """
    n, _, h, w = fw.shape
    bw_at = warp(bw, fw)  # B(p + F(p))
    sq = lambda v: (v * v).sum(1, keepdim=True)  # noqa: E731
    inconsistent = sq(fw + bw_at) > 0.01 * (sq(fw) + sq(bw_at)) + 0.5
    dx = F.pad(fw[..., :, 1:] - fw[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(fw[..., 1:, :] - fw[..., :-1, :], (0, 0, 0, 1))
    boundary = sq(dx) + sq(dy) > 0.01 * sq(fw) + 0.002
    ys, xs = torch.meshgrid(torch.arange(h, device=fw.device, dtype=fw.dtype),
                            torch.arange(w, device=fw.device, dtype=fw.dtype), indexing="ij")
    tx, ty = xs + fw[:, 0:1], ys + fw[:, 1:2]
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    return (~(inconsistent | boundary | outside)).to(fw.dtype)


def warp_errors(frames: torch.Tensor, fw: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-pair warping error (unscaled).

    Args:
        frames: [T,3,H,W] float RGB in [0,1].
        fw: [T-1,2,H,W] flow from frame t to t+1 (pixels).
        mask: [T-1,1,H,W] non-occlusion mask of frame t.

    Returns:
        [T-1] float64: sum over masked pixels and channels of the squared difference
        between x_t and warp(x_{t+1}), divided by the masked pixel count (all pixels
        if the mask is empty, as Lai's script).
    """
    # float32 warp (float64 elementwise CPU kernels are ~30x slower here), float64 sums
    x = frames.float()
    diff = (x[:-1] - warp(x[1:], fw.float())) * mask.float()
    n = mask.double().flatten(1).sum(1)
    n = torch.where(n > 0, n, torch.full_like(n, float(mask[0].numel() * x.shape[1])))
    return (diff * diff).flatten(1).double().sum(1) / n


# --- flow backends --------------------------------------------------------------
def dis_flow(frames: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """OpenCV DIS flow (medium preset) on 8-bit BT.601 luma for (source, target) index pairs.

    Returns:
        [P,2,H,W] float32 on ``frames.device``.
    """
    import cv2
    u8 = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in u8]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flows = [dis.calc(gray[a], gray[b], None) for a, b in pairs]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(frames.device)


def build_raft() -> torch.nn.Module:
    """torchvision RAFT-large with the registry file (never torchvision's download), strict, eval, CPU."""
    from torchvision.models.optical_flow import raft_large
    net = raft_large(weights=None, progress=False)
    sd = load_checkpoint(weight_registry.locate("raft-large"))
    net.load_state_dict(sd, strict=True)
    return net.eval()


@torch.no_grad()
def raft_flow(frames: torch.Tensor, pairs: list[tuple[int, int]], net: torch.nn.Module, chunk: int = 4,
              iters: int = 12) -> torch.Tensor:
    """RAFT-large flow for (source, target) pairs, batched; inputs scaled to [-1,1], sizes padded to /8."""
    h, w = frames.shape[-2:]
    ph, pw = (8 - h % 8) % 8, (8 - w % 8) % 8
    x = F.pad(frames.float() * 2 - 1, (0, pw, 0, ph), mode="replicate")  # [0,1] -> [-1,1]
    src = torch.tensor([a for a, _ in pairs], device=frames.device)
    dst = torch.tensor([b for _, b in pairs], device=frames.device)
    out = []
    for s in frames_chunks(len(pairs), chunk):
        out.append(net(x[src[s]], x[dst[s]], num_flow_updates=iters)[-1][..., :h, :w])
    return torch.cat(out)


def flow_pairs(frames: torch.Tensor, backend: str,
               net: Optional[torch.nn.Module] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(forward [T-1,2,H,W], backward [T-1,2,H,W]) flows between consecutive frames.

    Args:
        net: the RAFT network (``raft`` backend, from :func:`build_raft`).
    """
    t = frames.shape[0]
    pairs = [(i, i + 1) for i in range(t - 1)] + [(i + 1, i) for i in range(t - 1)]
    flow = dis_flow(frames, pairs) if backend == "dis" else raft_flow(frames, pairs, net)
    return flow[:t - 1], flow[t - 1:]


def e_warp(frames: torch.Tensor, flow_frames: Optional[torch.Tensor] = None, backend: str = "dis",
           net: Optional[torch.nn.Module] = None) -> torch.Tensor:
    """Per-pair warping error of ``frames`` with flow estimated on ``flow_frames`` (default: itself).

    Args:
        frames: [T,3,H,W] float RGB in [0,1], the clip scored.
        flow_frames: [T,3,H,W] the clip the flow and mask come from.
        backend: ``dis`` or ``raft``.
        net: the RAFT network (``raft`` backend).

    Returns:
        [T-1] float64, unscaled (multiply by 1e3 for the reported column).
    """
    src = frames if flow_frames is None else flow_frames
    fw, bw = flow_pairs(src, backend, net)
    return warp_errors(frames, fw, non_occlusion_mask(fw.float(), bw.float()))


class EWarp(ClipMetric):
    """Flow warping error of the restored clip, reported x1e-3.

    Args:
        backend: ``dis`` or ``raft``.
        flow_source: ``gt`` (default) or ``pred``: whose flow and occlusion mask are used.
    """
    higher_is_better = False

    def __init__(self, backend: str = "dis", flow_source: str = "gt"):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"E_warp backend must be one of {BACKENDS}, got {backend!r}")
        if flow_source not in FLOW_SOURCES:
            raise ValueError(f"flow_source must be one of {FLOW_SOURCES}, got {flow_source!r}")
        self.backend, self.flow_source = backend, flow_source
        self.weights = BACKEND_WEIGHTS[backend]
        self.raft = None

    def setup(self, device: torch.device, nets: Optional[SharedNetworks] = None) -> "EWarp":
        if self.backend == "raft":
            self.raft = (nets or SharedNetworks()).get("raft-large", build_raft, device)
        return self

    def score(self, ctx: MetricContext) -> ClipScore:
        extra = {"flow_source": self.flow_source, "scale": REPORT_SCALE}
        if ctx.pred.shape[0] < 2:
            return ClipScore(float("nan"), [], extra)
        src = ctx.gt if self.flow_source == "gt" else ctx.pred
        fw, bw = ctx.cached(f"flow[{self.backend}]:{self.flow_source}",
                            lambda: flow_pairs(src, self.backend, self.raft))
        e = warp_errors(ctx.pred, fw, non_occlusion_mask(fw.float(), bw.float())) * REPORT_SCALE
        return ClipScore(float(e.mean()), e.tolist(), extra)
