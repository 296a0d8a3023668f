"""Shared metric-test fixtures: short clips of the sample split (``sample_split`` is the suite's
session fixture in tests/conftest.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

N_FRAMES = 6  # frames per test clip: enough for std/temporal metrics, cheap for dlib


@pytest.fixture(scope="session")
def sample_gt(sample_split) -> torch.Tensor:
    """[6,3,512,512] float32 in [0,1]: the first frames of the first sample clip's GT."""
    from vfr_bench.datasets.clips import read_frames, to_tensor
    return to_tensor(read_frames(sample_split.clips[0].gt)[:N_FRAMES])


@pytest.fixture(scope="session")
def sample_lq_up(sample_split, sample_gt) -> torch.Tensor:
    """The matching LQ frames bicubically upsampled to the GT size (the lq-upsample baseline)."""
    from vfr_bench.datasets.clips import read_frames, to_tensor
    lq = to_tensor(read_frames(sample_split.clips[0].lq)[:N_FRAMES])
    return torch.nn.functional.interpolate(lq, size=sample_gt.shape[-2:], mode="bicubic",
                                           align_corners=False).clamp(0, 1)
