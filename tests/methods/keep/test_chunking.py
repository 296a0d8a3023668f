"""KEEP chunking (official inference_keep.py): independent forwards of max_length frames."""
from __future__ import annotations

import pytest
import torch

from vfr_bench.methods.keep.chunking import chunk_spans, restore_in_chunks


class RecurrentDummy:
    """Stands in for KEEP: output frame i = input frame i + sum of the chunk's earlier frames.

    Any state carried across calls or chunk boundaries would change the outputs; every call
    is recorded.
    """

    def __init__(self):
        self.calls: list[torch.Tensor] = []

    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        assert chunk.dim() == 5 and chunk.shape[0] == 1 and chunk.shape[1] >= 2
        self.calls.append(chunk.clone())
        return torch.cumsum(chunk, dim=1)


def frames(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float64).view(n, 1, 1, 1).expand(n, 3, 2, 2).contiguous()


def expected(x: torch.Tensor, spans) -> torch.Tensor:
    return torch.cat([torch.cumsum(x[a:b], dim=0) for a, b in spans])


def test_spans_45_frames():
    assert chunk_spans(45, 20) == [(0, 20), (20, 40), (40, 45)]
    assert chunk_spans(40, 20) == [(0, 20), (20, 40)]
    assert chunk_spans(3) == [(0, 3)]
    with pytest.raises(ValueError):
        chunk_spans(0, 20)


def test_45_frames_three_independent_forwards():
    x, net = frames(45), RecurrentDummy()
    out = restore_in_chunks(x, net, max_length=20)
    assert [c.shape[1] for c in net.calls] == [20, 20, 5]
    assert torch.equal(net.calls[1][0, 0], x[20])
    # state restarts at 20 and 40: output 20 is frame 20 alone, not the running sum over 0..20
    assert torch.equal(out, expected(x, [(0, 20), (20, 40), (40, 45)]))


def test_41_frames_last_single_frame_is_duplicated():
    x, net = frames(41), RecurrentDummy()
    out = restore_in_chunks(x, net, max_length=20)
    assert [c.shape[1] for c in net.calls] == [20, 20, 2]
    assert torch.equal(net.calls[2][0, 0], x[40]) and torch.equal(net.calls[2][0, 1], x[40])
    assert out.shape == x.shape
    assert torch.equal(out[40], x[40])  # output frame 0 of the duplicated pair (frame 1 would be 2 * x[40])


def test_one_frame_clip():
    x, net = frames(1) + 1, RecurrentDummy()
    out = restore_in_chunks(x, net)
    assert len(net.calls) == 1 and net.calls[0].shape[1] == 2
    assert torch.equal(out, x)
