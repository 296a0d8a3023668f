"""Which source frames each DicFace output frame sees (pure index functions)."""
from __future__ import annotations

import pytest

from vfr_bench.methods.dicface.windows import official_full_window, window_for, windows

# Hand-written tables: output frame s -> the 5 frames of its window (kept frame is s).
OFFICIAL_10 = {  # forward-looking [s .. s+4], last frame repeated, keep position 0
    1: [(0, 0, 0, 0, 0)],
    2: [(0, 1, 1, 1, 1), (1, 1, 1, 1, 1)],
    3: [(0, 1, 2, 2, 2), (1, 2, 2, 2, 2), (2, 2, 2, 2, 2)],
    6: [(0, 1, 2, 3, 4), (1, 2, 3, 4, 5), (2, 3, 4, 5, 5), (3, 4, 5, 5, 5), (4, 5, 5, 5, 5),
        (5, 5, 5, 5, 5)],
}
CENTER = {  # centred [s-2 .. s+2], replicated at both ends, keep position 2
    1: [(0, 0, 0, 0, 0)],
    2: [(0, 0, 0, 1, 1), (0, 0, 1, 1, 1)],
    3: [(0, 0, 0, 1, 2), (0, 0, 1, 2, 2), (0, 1, 2, 2, 2)],
    6: [(0, 0, 0, 1, 2), (0, 0, 1, 2, 3), (0, 1, 2, 3, 4), (1, 2, 3, 4, 5), (2, 3, 4, 5, 5),
        (3, 4, 5, 5, 5)],
}


@pytest.mark.parametrize("n", sorted(OFFICIAL_10))
@pytest.mark.parametrize("max_length", [10, 20])
def test_official_even_multiples_look_forward(n, max_length):
    got = windows("official", n, max_length)
    assert [w.frames for w in got] == OFFICIAL_10[n]
    assert all(w.keep == 0 and w.output == s for s, w in enumerate(got))


@pytest.mark.parametrize("n", sorted(CENTER))
@pytest.mark.parametrize("mode,max_length", [("center", 10), ("official", 5), ("official", 15)])
def test_centred_windows(n, mode, max_length):
    got = windows(mode, n, max_length)
    assert [w.frames for w in got] == CENTER[n]
    assert all(w.keep == 2 and w.output == s for s, w in enumerate(got))


def _script_window(n: int, s: int, max_length: int):
    """The official script's window (one-sided padding only); None where it would crash."""
    pre = max_length // 2
    post = max_length - pre - 1
    begin, end = s - pre, s + post
    if begin < 0:
        frames = [0] * (-begin) + list(range(0, min(end, n - 1) + 1))
    elif end >= n:
        frames = list(range(begin, n)) + [n - 1] * (end - n + 1)
    else:
        frames = list(range(begin, end + 1))
    return frames if len(frames) == max_length else None


@pytest.mark.parametrize("max_length", [5, 10, 15, 20])
def test_matches_official_script_where_it_runs(max_length):
    checked = 0
    for n in range(1, 30):
        for s in range(n):
            full = _script_window(n, s, max_length)
            if full is None:  # the official script crashes here; we pad both sides instead
                assert n <= max_length - 2
                continue
            assert list(official_full_window(n, s, max_length)) == full
            pre = max_length // 2
            sub = full[5 * (pre // 5): 5 * (pre // 5) + 5]
            win = window_for("official", n, s, max_length)
            assert list(win.frames) == sub and win.keep == pre % 5
            checked += 1
    assert checked > 100


def test_long_clip_official_and_center():
    n = 12
    for s, w in enumerate(windows("official", n, 10)):
        assert w.frames == tuple(min(s + j, n - 1) for j in range(5))
    for s, w in enumerate(windows("center", n)):
        assert w.frames == tuple(min(max(s + j - 2, 0), n - 1) for j in range(5))


@pytest.mark.parametrize("bad", [0, 7, 12, -5])
def test_max_length_must_be_multiple_of_5(bad):
    with pytest.raises(ValueError, match="multiple of 5"):
        window_for("official", 10, 0, bad)


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least one frame"):
        windows("official", 0)
    with pytest.raises(ValueError, match="unknown DicFace window"):
        window_for("centre", 5, 0)
    with pytest.raises(IndexError):
        window_for("center", 5, 5)
