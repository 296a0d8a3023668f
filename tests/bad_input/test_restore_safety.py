"""``vfr-bench restore`` never destroys a user's file: killed mid-run (SIGKILL, SIGINT,
SIGTERM) over an existing output it leaves that output byte-identical; an output that is the
input is refused; a video without a face is refused with nothing written; an odd frame size
is reported as written. Every case runs the CLI as a user would, in a subprocess."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import REPO
from tests.test_restore import decode_mp4, encode_mp4

VFR = [sys.executable, "-m", "vfr_bench.cli", "restore", "--method", "lq-upsample", "--device", "cpu",
       "--no-progress"]
N_FRAMES = 300


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(VFR + [str(a) for a in args], env=env(), capture_output=True, text=True,
                          timeout=timeout)


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (hidden ones included)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line_error(proc: subprocess.CompletedProcess, text: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfr-bench: error: "), proc.stderr
    assert text in lines[0], lines[0]


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """300 frames of 256x256 noise sliding sideways: a few seconds of restore, so a kill lands mid-run."""
    base = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    encode_mp4(path, np.stack([np.roll(base, 3 * k, axis=1) for k in range(N_FRAMES)]))
    return path


def previous_output(folder: Path) -> dict[str, str]:
    """An earlier result in ``folder``: out.mp4 and out_frames/ (2 PNGs); returns its snapshot."""
    frames = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    encode_mp4(folder / "out.mp4", frames)
    (folder / "out_frames").mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / "out_frames" / f"{i:08d}.png"), f)
    return snapshot(folder)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_killed_restore_leaves_the_previous_output_intact(long_video, tmp_path, sig):
    before = previous_output(tmp_path)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(VFR + ["--input", str(long_video), "--output", str(out), "--aligned", "--frames"],
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob(".out_frames.*.part/*.png")):  # mid-run: frames being written
        assert proc.poll() is None, f"restore ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "restore never started writing"
        time.sleep(0.01)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)

    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(".")} == before
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        # a hard kill cannot clean up: at most hidden partial files, never a visible one
        assert all(Path(k).parts[0].startswith(".") and Path(k).parts[0].endswith(".part")
                   for k in after if k not in before)
    else:
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert stderr.strip() == (f"vfr-bench: interrupted; {out} not written "
                                  f"(the earlier file there is unchanged)")
        assert after == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "out_frames"]


def test_a_finished_restore_replaces_the_previous_output_and_leaves_nothing_else(tmp_path):
    src = tmp_path / "in.mp4"
    frames = np.random.default_rng(2).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    encode_mp4(src, frames)
    before = previous_output(tmp_path)
    proc = run("--input", src, "--output", tmp_path / "out.mp4", "--aligned", "--frames")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4", "out_frames"]
    assert decode_mp4(tmp_path / "out.mp4")[0].shape == (5, 64, 64, 3)
    assert sorted(p.name for p in (tmp_path / "out_frames").iterdir()) == [f"{i:08d}.png" for i in range(5)]
    assert snapshot(tmp_path)["out.mp4"] != before["out.mp4"]


@pytest.mark.parametrize("how", ["same-name", "symlink-output", "symlink-input", "hard-link"])
def test_output_that_is_the_input_is_refused(tmp_path, how):
    src = tmp_path / "in.mp4"
    encode_mp4(src, np.zeros((3, 32, 32, 3), np.uint8))
    inp, out = src, src
    if how == "symlink-output":
        out = tmp_path / "link.mp4"
        out.symlink_to(src)
    elif how == "symlink-input":
        inp = tmp_path / "link.mp4"
        inp.symlink_to(src)
    elif how == "hard-link":
        out = tmp_path / "hard.mp4"
        os.link(src, out)
    before = snapshot(tmp_path)
    proc = run("--input", inp, "--output", out)
    assert_one_line_error(proc, f"--output {out} is the input {inp}; choose another file name")
    assert snapshot(tmp_path) == before


def test_frames_folder_that_holds_the_input_is_refused(tmp_path):
    src = tmp_path / "clip_frames"  # `--output clip.mp4 --frames` would write into clip_frames/
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"{i:08d}.png"), np.zeros((32, 32, 3), np.uint8))
    before = snapshot(tmp_path)
    proc = run("--input", src, "--output", tmp_path / "clip.mp4", "--aligned", "--frames")
    assert_one_line_error(proc, f"--frames would replace {src}, which holds the input {src}")
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["clip_frames"]


def test_frames_folder_with_other_files_is_not_replaced(tmp_path):
    src = tmp_path / "in.mp4"
    encode_mp4(src, np.zeros((3, 32, 32, 3), np.uint8))
    (tmp_path / "out_frames").mkdir()
    (tmp_path / "out_frames" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    proc = run("--input", src, "--output", tmp_path / "out.mp4", "--aligned", "--frames")
    assert_one_line_error(proc, "which holds files restore does not write (notes.txt)")
    assert snapshot(tmp_path) == before and not (tmp_path / "out.mp4").exists()


def test_video_without_a_face_is_refused_and_nothing_is_written(tmp_path):
    src = tmp_path / "noise.mp4"
    rng = np.random.default_rng(3)
    bg = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (0, 0), 2)
    encode_mp4(src, np.stack([np.roll(bg, k, axis=1) for k in range(6)]))
    before = previous_output(tmp_path)
    proc = run("--input", src, "--output", tmp_path / "out.mp4", "--frames", "--detector", "hog")
    assert_one_line_error(proc, f"no face found in any of the 6 frames of {src} (detector dlib-hog); "
                                f"nothing written")
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.mp4", "out.mp4", "out_frames"]


def test_odd_size_is_reported_as_written(tmp_path):
    """333x517 input (the size of the report): the mp4 is 334x518 and says so; PNGs keep 333x517."""
    src = tmp_path / "odd"
    src.mkdir()
    frames = np.random.default_rng(4).integers(0, 256, (3, 517, 333, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        cv2.imwrite(str(src / f"{i:04d}.png"), f[..., ::-1])
    proc = run("--input", src, "--output", tmp_path / "odd.mp4", "--aligned", "--frames")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'odd.mp4'}: 3 frames 334x518 at 25 fps")
    assert lines[1] == ("the input is 333x517: H.264 yuv420p needs even sizes, so the mp4 repeats its "
                        "last odd row/column (the PNG frames keep 333x517)")
    assert decode_mp4(tmp_path / "odd.mp4")[0].shape == (3, 518, 334, 3)
    png = cv2.imread(str(tmp_path / "odd_frames" / "00000000.png"))
    np.testing.assert_array_equal(png[..., ::-1], frames[0])
