"""LPIPS (Zhang et al., CVPR 2018) with the ``lpips`` package, as KEEP, DicFace and FLAIR report it.

``lpips.LPIPS(net='alex')`` (v0.1 linear heads, shipped inside the package) on frames
scaled to [-1,1], per frame, batched on the metric device; ``LPIPS[vgg]`` uses the VGG16
trunk. The trunk's ImageNet weights are torchvision's (``alexnet-owt-7be5be79.pth``,
``vgg16-397923af.pth``) taken from our weights registry: the trunk is built with
``pnet_rand=True`` (so torchvision never downloads) and its ``features.*`` tensors are
copied into lpips' slices, every trunk parameter accounted for (strict). The trunk runs
channels-last (NHWC) on chunks of 4 frame pairs: the same numbers (~1e-8, float32 summation
order). On CPU AlexNet is compute-bound, so this buys ~1.1x over per-frame calls on
NHWC-strided frames (decoded video) and ~1.2x on NCHW ones (most restorer outputs); see
README, Performance.
Range [0, ~1], lower is better; split value: mean over clips of the per-frame mean.
Official repo: richzhang/PerceptualSimilarity.
"""
from __future__ import annotations

import warnings

import torch

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint
from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, frames_chunks

NETS = {"alex": "alexnet", "vgg": "vgg16"}


def load_trunk(model: torch.nn.Module, torchvision_sd: dict) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into lpips' ``net.slice<k>.<i>.*`` (strict both ways)."""
    trunk = {k: v for k, v in model.net.state_dict().items()}
    by_index = {}
    for k in trunk:  # slice3.6.weight -> (features.6.weight)
        _, idx, param = k.split(".")
        by_index[f"features.{idx}.{param}"] = k
    feats = {k: v for k, v in torchvision_sd.items() if k.startswith("features.")}
    missing = sorted(set(by_index) - set(feats))
    if missing:
        raise KeyError(f"backbone file lacks {missing[:4]}... for the lpips trunk")
    new = {by_index[k]: feats[k] for k in by_index}
    model.net.load_state_dict(new, strict=True)


def build_lpips(net: str = "alex") -> torch.nn.Module:
    """lpips.LPIPS with the trunk from the weights registry (no torchvision download), eval."""
    import lpips
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    sd = load_checkpoint(weight_registry.locate(NETS[net]))
    load_trunk(model, sd)
    return model.eval()


@torch.no_grad()
def lpips_frames(model: torch.nn.Module, pred: torch.Tensor, gt: torch.Tensor, chunk: int = 4) -> torch.Tensor:
    """Per-frame LPIPS.

    Args:
        pred: [T,3,H,W] float RGB in [0,1].
        gt: [T,3,H,W] float RGB in [0,1].
        chunk: frame pairs per trunk call (4 was the fastest at 512x512 on 2 cores, 8 and 2
            ~5% slower; it also bounds the activations' memory).

    Returns:
        [T] float (the model's dtype).
    """
    dtype = next(model.parameters()).dtype

    def scaled(x: torch.Tensor) -> torch.Tensor:  # [0,1] -> [-1,1], NHWC like the trunk
        return (x.to(dtype) * 2 - 1).contiguous(memory_format=torch.channels_last)

    out = [model(scaled(pred[s]), scaled(gt[s])).flatten() for s in frames_chunks(pred.shape[0], chunk)]
    return torch.cat(out)


def build_lpips_filled(net: str = "alex") -> torch.nn.Module:
    """lpips.LPIPS whose trunk holds the deterministic fill of ``vfr_bench.fill`` instead of
    ImageNet weights (the package's linear heads as shipped), eval. Timing only: LPIPS's cost
    does not depend on the trunk's values, its numbers do."""
    import lpips

    from vfr_bench.fill import fill_state_dict
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    model.net.load_state_dict(fill_state_dict(model.net.state_dict(), torch.float32), strict=True)
    return model.eval()


TRUNKS = ("official", "filled")


class LPIPS(ClipMetric):
    """Mean over frames of LPIPS.

    Args:
        net: ``alex`` (column ``LPIPS``) or ``vgg`` (column ``LPIPS[vgg]``).
        trunk: ``official`` (torchvision's ImageNet weights from the weights registry) or
            ``filled`` (deterministic fill, no file needed; ``vfr-bench perf`` times with it
            when the file is absent and labels the row; never in the registry, so never in
            results).
    """
    higher_is_better = False

    def __init__(self, net: str = "alex", trunk: str = "official"):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"LPIPS net must be one of {list(NETS)}, got {net!r}")
        if trunk not in TRUNKS:
            raise ValueError(f"LPIPS trunk must be one of {list(TRUNKS)}, got {trunk!r}")
        self.net = net
        self.trunk = trunk
        self.weights = (NETS[net],) if trunk == "official" else ()
        self.model = None

    def setup(self, device: torch.device, nets=None) -> "LPIPS":
        if self.model is None:
            self.model = build_lpips(self.net) if self.trunk == "official" else build_lpips_filled(self.net)
        self.model.to(device, memory_format=torch.channels_last)
        return self

    def score(self, ctx: MetricContext) -> ClipScore:
        v = lpips_frames(self.model, ctx.pred, ctx.gt)
        return ClipScore(float(v.double().mean()), v.double().tolist())
