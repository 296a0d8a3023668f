"""Learned no-reference image quality (MUSIQ, CLIP-IQA, MANIQA) through pyiqa, weights from our registry.

pyiqa (Chen et al., github.com/chaofengc/IQA-PyTorch; code under the PolyForm
Noncommercial License 1.0.0) re-implements each model and checks it against the official
one. We use its networks with its default settings for the metric names ``musiq``,
``clipiqa`` and ``maniqa`` (``pyiqa/default_model_configs.py``; a test compares), but
never its loaders, which download inside constructors: each network is built without
pretrained weights and our registry file is loaded into it, strict.

* ``MUSIQ``: Ke et al., ICCV 2021 (google-research/musiq), the KonIQ-10k checkpoint
  (``musiq_koniq_ckpt-e95806b9.pth``, pyiqa's conversion of ``koniq_ckpt.npz``):
  multi-scale patches (native, 224, 384 longer side). Range ~0-100, higher is better.
* ``CLIP-IQA``: Wang, Chan, Loy, AAAI 2023 (IceClear/CLIP-IQA), CLIP ResNet-50 without
  its positional embedding, softmax of antonym prompt pairs; pyiqa averages five pairs
  (good/bad, sharp/blurry image, sharp/blurry edges, high/low resolution, noise-free/noisy)
  instead of the paper's one. Weights: OpenAI's ``RN50.pt`` (TorchScript archive,
  sha256 in its URL). Range [0, 1], higher is better.
* ``MANIQA``: Yang et al., CVPRW 2022 (IIGROUP/MANIQA), the KonIQ-10k checkpoint
  (``ckpt_koniq10k.pt``): ViT-B/8 features, transposed attention and Swin blocks, mean
  over 20 uniformly placed 224 crops. Range ~0-1, higher is better. Its ViT trunk is
  built by timm; timm's own pretrained download is switched off (the checkpoint holds
  the trunk's weights). ~40 s per 512 frame on 2 CPU cores: a GPU metric.

Each scores every restored frame (RGB in [0,1], batched on the metric device); the clip
value is the mean over frames. What these numbers can and cannot tell: README, "GT-free
columns".
"""
from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace
from typing import Callable, Optional

import torch

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint
from vfr_bench.metrics.base import ClipMetric, ClipScore, MetricContext, SharedNetworks, frames_chunks

MODELS = ("musiq", "clipiqa", "maniqa")
MODEL_WEIGHTS = {"musiq": ("musiq-koniq",), "clipiqa": ("clip-rn50",), "maniqa": ("maniqa-koniq",)}
# pyiqa's default settings of each metric name (DEFAULT_CONFIGS[name]["metric_opts"]) without
# the pretrained-weight keys, which we replace by our file
MODEL_OPTS: dict[str, dict] = {"musiq": {}, "clipiqa": {"model_type": "clipiqa", "backbone": "RN50"},
                               "maniqa": {"scale": 0.8}}
CHUNK = {"musiq": 4, "clipiqa": 8, "maniqa": 1}  # frames per network call


def _load_state(name: str) -> dict:
    """A registry file's state dict (CPU, tensors only), a leading ``module.`` stripped as pyiqa does."""
    sd = load_checkpoint(weight_registry.locate(name))
    return {k.removeprefix("module."): v for k, v in sd.items()}


def build_musiq() -> torch.nn.Module:
    from pyiqa.archs.musiq_arch import MUSIQ
    net = MUSIQ(pretrained=False, **MODEL_OPTS["musiq"])  # num_class 1: the KonIQ head
    net.load_state_dict(_load_state("musiq-koniq"), strict=True)
    return net.eval()


def build_clipiqa() -> torch.nn.Module:
    """pyiqa's CLIPIQA with ``backbone`` = our RN50 file: its CLIP loader reads a path as is
    (TorchScript archive or state dict) and builds the model from it, strict."""
    from pyiqa.archs.clipiqa_arch import CLIPIQA
    opts = dict(MODEL_OPTS["clipiqa"], backbone=str(weight_registry.locate("clip-rn50")))
    return CLIPIQA(pretrained=False, **opts).eval()


@contextmanager
def timm_without_download(module):
    """Within the block, ``module.timm.create_model`` builds with ``pretrained=False`` (no download)."""
    real = module.timm
    module.timm = SimpleNamespace(
        create_model=lambda name, pretrained=False, **kw: real.create_model(name, pretrained=False, **kw))
    try:
        yield
    finally:
        module.timm = real


def build_maniqa() -> torch.nn.Module:
    import pyiqa.archs.maniqa_arch as arch
    with timm_without_download(arch):
        net = arch.MANIQA(pretrained=False, **MODEL_OPTS["maniqa"])
    net.load_state_dict(_load_state("maniqa-koniq"), strict=True)
    return net.eval()


BUILDERS: dict[str, Callable[[], torch.nn.Module]] = {
    "musiq": build_musiq, "clipiqa": build_clipiqa, "maniqa": build_maniqa}


@torch.no_grad()
def iqa_scores(frames: torch.Tensor, net: torch.nn.Module, chunk: int = 4) -> torch.Tensor:
    """[T,3,H,W] float RGB in [0,1] -> [T] float64 scores of a pyiqa network, ``chunk`` frames a call."""
    x = frames.float().clamp(0, 1)
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):  # as pyiqa's wrapper
        return torch.cat([net(x[s]).reshape(-1).double().cpu() for s in frames_chunks(x.shape[0], chunk)])


class PyIQA(ClipMetric):
    """Mean over restored frames of a pyiqa no-reference model (no GT).

    Args:
        model: ``musiq``, ``clipiqa`` or ``maniqa`` (pyiqa's metric names).
    """
    higher_is_better = True
    needs_gt = False

    def __init__(self, model: str = "musiq"):
        super().__init__()
        if model not in MODELS:
            raise ValueError(f"pyiqa model must be one of {MODELS}, got {model!r}")
        self.model = model
        self.weights = MODEL_WEIGHTS[model]
        self.net = None

    def unavailable_reason(self) -> Optional[str]:
        missing = super().unavailable_reason()  # the weights file first: it names what to fetch
        if missing:
            return missing
        try:
            import pyiqa  # noqa: F401
        except ImportError:
            return "pyiqa is not installed; run: pip install 'vfr-bench[iqa]' (or pip install pyiqa)"
        return None

    def setup(self, device: torch.device, nets: Optional[SharedNetworks] = None) -> "PyIQA":
        self.net = (nets or SharedNetworks()).get(f"pyiqa-{self.model}", BUILDERS[self.model], device)
        return self

    def score(self, ctx: MetricContext) -> ClipScore:
        s = iqa_scores(ctx.pred, self.net, CHUNK[self.model])
        return ClipScore(float(s.mean()), s.tolist())
