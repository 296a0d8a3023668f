"""The official fp16 layout of the FLAIR UNets (``convert_to_fp16`` in ``guided_diffusion``).

FLAIR (Zou et al., WACV 2025, https://github.com/wustl-cig/FLAIR) runs on GPU with the
torso in float16: every Conv1d/2d/3d and deformable-conv weight and bias inside the torso
containers (sr3: ``downs``/``mid``/``ups``; unet_new: ``input_blocks``/``middle_block``/
``output_blocks``) and the q/k/v Linear layers of every TemporalAttention become float16;
norms, embedding MLPs, gates and the output head stay float32. In sr3 the shared SPyNet
lives inside the torso and is converted too; in unet_new it is top level and is not.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from .propagation_arch import SecondOrderDeformableAlignment
from .temporal_arch import TemporalAttention

__all__ = ["convert_torso_to_fp16"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, SecondOrderDeformableAlignment)


def _half(module: nn.Module) -> None:
    for p in (module.weight, module.bias):
        if p is not None:
            p.data = p.data.to(torch.float16)


def convert_torso_to_fp16(model: nn.Module, torso: Iterable[nn.Module]) -> None:
    """Cast, in place, exactly the layers the official ``convert_to_fp16`` casts."""
    for part in torso:
        for m in part.modules():
            if isinstance(m, _CONVS):
                _half(m)
    for m in model.modules():
        if isinstance(m, TemporalAttention):
            for lin in (m.q_linear, m.k_linear, m.v_linear):
                _half(lin)
