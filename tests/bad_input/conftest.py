"""Helpers for the bad-input tests: run the CLI as a user does, check the one-line error,
and make a folder that even root cannot write to."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, make_split

VFR = [sys.executable, "-m", "vfr_bench.cli"]
# The fast bench of the brief: weight-free method, two cheap metrics, 4 frames.
FAST = ["--method", "lq-upsample", "--metrics", "PSNR,SSIM", "--max-frames", "4", "--no-wandb", "--no-progress"]


def run_cli(*args, home: Path | None = None, umask: int | None = None) -> subprocess.CompletedProcess:
    """``vfr-bench ARGS`` in a subprocess (``$VFR_BENCH_HOME`` of the test unless ``home``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    if home is not None:
        env["VFR_BENCH_HOME"] = str(home)
    pre = None if umask is None else (lambda: os.umask(umask))
    return subprocess.run(VFR + [str(a) for a in args], capture_output=True, text=True, env=env,
                          preexec_fn=pre, timeout=600)


def assert_user_error(p: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2, no traceback, one ``vfr-bench: error:`` line (the last) holding every word; returns it."""
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("vfr-bench: error: "), p.stderr
    assert p.stderr.count("vfr-bench: error:") == 1, p.stderr
    for w in words:
        assert w in lines[-1], (w, lines[-1])
    return lines[-1]


def tiny_clips(n: int = 3, seed: int = 0) -> dict:
    g = np.random.default_rng(seed)
    return {f"c{i}": (g.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8),
                      g.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)) for i in range(n)}


@pytest.fixture
def tiny_split(tmp_path) -> Path:
    """A 3-clip split of random 8 -> 32 px frames (enough for lq-upsample with PSNR, SSIM)."""
    return make_split(tmp_path / "tiny", tiny_clips())


def _blocks_writes(d: Path) -> bool:
    try:
        (d / ".probe").touch()
    except OSError:
        return True
    (d / ".probe").unlink()
    return False


@pytest.fixture
def read_only_dir(tmp_path):
    """An existing folder nobody can create files in: mode 0555, and for root (who ignores the
    mode) the immutable attribute; skipped where neither works."""
    d = tmp_path / "read-only"
    d.mkdir()
    d.chmod(0o555)
    immutable = False
    if not _blocks_writes(d):
        immutable = bool(shutil.which("chattr")) and \
            subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0
        if not immutable or not _blocks_writes(d):
            if immutable:
                subprocess.run(["chattr", "-i", str(d)])
            d.chmod(0o755)
            pytest.skip("cannot make a read-only folder here (root without chattr)")
    yield d
    if immutable:
        subprocess.run(["chattr", "-i", str(d)], check=True)
    d.chmod(0o755)
