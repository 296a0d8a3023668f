"""FLAIR windowing: bounds as more_itertools.windowed, per-step overwrite, concatenation."""
from __future__ import annotations

from collections import deque
from itertools import chain, islice

import pytest
import torch

from vfr_bench.methods.flair import windows as win


def _windowed_reference(seq, n, step):
    """more_itertools.windowed(seq, n, step=step) (v10 algorithm), None-padded windows."""
    it = iter(seq)
    window = deque(islice(it, n), maxlen=n)
    if not window:
        return
    if len(window) < n:
        yield tuple(window) + (None,) * (n - len(window))
        return
    yield tuple(window)
    padding = (None,) * (n - 1 if step >= n else step - 1)
    filler = map(window.append, chain(it, padding))
    for _ in islice(filler, step - 1, None, step):
        yield tuple(window)


def test_25_frames():
    assert win.window_bounds(25) == [(0, 10), (7, 17), (14, 24), (21, 25)]


@pytest.mark.parametrize("n", range(1, 41))
def test_bounds_match_windowed(n):
    ref = [[f for f in w if f is not None] for w in _windowed_reference(range(n), 10, 7)]
    got = [list(range(s, e)) for s, e in win.window_bounds(n)]
    assert got == ref


def test_overlap_overwrite_and_concatenation_with_dummy_network():
    """Two-step dummy sampler: the first 3 x0-predictions of later windows are the previous
    window's last 3 final frames at every step; output keeps window 0 whole, drops 3 later."""
    T, steps = 25, 2
    frames = torch.arange(T, dtype=torch.float64).view(T, 1, 1, 1).expand(T, 3, 2, 2).clone()
    seen, window_id = [], [0]

    def dummy_net(x):  # "denoises" to frame index + 100 * (window number + 1)
        return x * 0 + frames_in_window[0] + 100.0 * (window_id[0] + 1)

    def sample_window(lq, prev_tail):
        seen.append([int(v) for v in lq[:, 0, 0, 0]])
        frames_in_window[0] = lq
        x = torch.zeros_like(lq)
        for _ in range(steps):
            x0 = win.overwrite_overlap(dummy_net(x), prev_tail)
            if prev_tail is not None:
                assert torch.equal(x0[:3], prev_tail)  # at every step
            x = x0
        window_id[0] += 1
        return x

    frames_in_window = [None]
    out = win.run_windows(frames, sample_window)
    assert seen == [list(range(0, 10)), list(range(7, 17)), list(range(14, 24)), list(range(21, 25))]
    assert out.shape == frames.shape
    tag = out[:, 0, 0, 0]
    idx = torch.arange(T, dtype=torch.float64)
    # frame f comes from the window that first produced it (its own sampling), not from a later one
    expected_window = torch.tensor([0] * 10 + [1] * 7 + [2] * 7 + [3] * 1, dtype=torch.float64)
    assert torch.equal(tag, idx + 100 * (expected_window + 1))


def test_overwrite_does_not_modify_input():
    x0 = torch.zeros(5, 3, 2, 2)
    tail = torch.ones(3, 3, 2, 2)
    out = win.overwrite_overlap(x0, tail)
    assert torch.equal(out[:3], tail) and torch.equal(out[3:], x0[3:]) and x0.abs().sum() == 0
    assert win.overwrite_overlap(x0, None) is x0
