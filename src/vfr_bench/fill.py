"""Deterministic weight fill: values depend only on a state-dict key and its shape.

This re-implements the fill rule of the conformance goldens
(``../shared/conformance/fill.py``) so that a network whose ``state_dict`` has the
official keys and shapes receives exactly the weights the goldens were computed
with. The perf harness uses it too, because speed does not depend on the values.
Filled weights are never used for reported results.
"""
from __future__ import annotations

import math
import zlib
from typing import Mapping

import torch

__all__ = ["fill_tensor", "fill_state_dict"]


def fill_tensor(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """float64 values for one floating state-dict entry.

    Standard normal draws from a generator seeded with the CRC32 of ``key``, then
    scaled by the entry's role: running statistics near their identity values,
    matrices and kernels by 1/sqrt(fan_in), 1-D scales near 1, other vectors small.
    """
    gen = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    z = torch.randn(tuple(shape), generator=gen, dtype=torch.float64)
    leaf = key.rpartition(".")[2]
    if leaf == "running_var":
        return 1.0 + 0.1 * z.abs()
    if leaf == "running_mean":
        return 0.1 * z
    if len(shape) >= 2:
        return z / math.sqrt(math.prod(shape[1:]))
    if len(shape) == 1 and leaf in {"weight", "gamma", "scale"}:
        return 1.0 + 0.1 * z
    return 0.1 * z


def fill_state_dict(state_dict: Mapping[str, torch.Tensor],
                    dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """A new state dict with every floating entry filled by key; integer entries copied."""
    return {key: (fill_tensor(key, tuple(v.shape)).to(dtype) if torch.is_floating_point(v)
                  else v.clone())
            for key, v in state_dict.items()}
