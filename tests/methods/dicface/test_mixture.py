"""Dirichlet mixture weights: official sampling op, seeded per frame, or the mean."""
from __future__ import annotations

import pytest
import torch

from vfr_bench.methods.dicface.mixture import dirichlet_sample, frame_seed, mixture_weights


def _alpha(n=3, hw=4, k=16):
    g = torch.Generator().manual_seed(5)
    return torch.nn.functional.softplus(torch.randn(n, hw, k, generator=g, dtype=torch.float64)) + 1e-2


def test_unseeded_sample_is_the_official_rsample():
    alpha = _alpha()
    torch.manual_seed(0)
    ref = torch.distributions.Dirichlet(alpha).rsample()
    torch.manual_seed(0)
    assert torch.equal(dirichlet_sample(alpha), ref)


def test_mean():
    alpha = _alpha()
    w = mixture_weights(alpha, "mean")
    assert torch.allclose(w.sum(-1), torch.ones(3, 4, dtype=torch.float64))
    assert torch.allclose(w[1, 2, 3], alpha[1, 2, 3] / alpha[1, 2].sum())


def test_seeded_draw_depends_only_on_seed_clip_and_frame():
    alpha = _alpha()
    w = mixture_weights(alpha, "sample", seed=3, clip_id="a", frames=[7, 8, 9])
    assert torch.allclose(w.sum(-1), torch.ones(3, 4, dtype=torch.float64)) and (w >= 0).all()
    alone = mixture_weights(alpha[1:2], "sample", seed=3, clip_id="a", frames=[8])
    assert torch.equal(alone[0], w[1])  # batch composition does not matter
    torch.manual_seed(123)  # nor does the global generator
    again = mixture_weights(alpha, "sample", seed=3, clip_id="a", frames=[7, 8, 9])
    assert torch.equal(again, w)
    for other in (dict(seed=4, clip_id="a", frames=[7, 8, 9]), dict(seed=3, clip_id="b", frames=[7, 8, 9]),
                  dict(seed=3, clip_id="a", frames=[6, 8, 9])):
        assert not torch.allclose(mixture_weights(alpha, "sample", **other)[0], w[0])
    assert frame_seed(3, "a", 7) != frame_seed(3, "a7", 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown DicFace mixture"):
        mixture_weights(_alpha(), "argmax")
    with pytest.raises(ValueError, match="one output frame index"):
        mixture_weights(_alpha(), "sample", frames=[0])
