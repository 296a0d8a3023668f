"""``vfr-bench restore`` on a user's video: frame count, size and rate kept, the face region
restored and pasted at the right place, everything outside the pasted square untouched,
frames the detector missed restored on the interpolated (or held) track, a faceless video
refused, aligned folders restored whole."""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from vfr_bench import align as A
from vfr_bench import cli
from vfr_bench.datasets.clips import read_frames
from vfr_bench.interface import ClipMeta, VideoRestorer

FPS = 24
FACELESS = (0, 9)  # frames showing only the background


class NegateRestorer(VideoRestorer):
    """Stand-in method with an unmistakable output: the photographic negative."""

    def restore(self, lq: torch.Tensor, meta: ClipMeta) -> torch.Tensor:
        return 1 - lq


def encode_mp4(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt, s.options = "yuv420p", {"crf": "18"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def decode_mp4(path: Path) -> tuple[np.ndarray, float]:
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate)
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]), rate


@pytest.fixture(scope="module")
def user_video(tmp_path_factory):
    """A 640x480 mp4: the astronaut photo (downscaled) drifting over a textured background,
    absent in the first and last frames. Returns its path and its decoded frames."""
    from skimage.data import astronaut
    photo = cv2.resize(astronaut(), (300, 300), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
    frames = np.repeat(bg[None], 10, 0)
    for k in range(10):
        if k not in FACELESS:
            x, y = 170 + 3 * k, 90 + 2 * k
            frames[k, y:y + 300, x:x + 300] = photo
    path = tmp_path_factory.mktemp("user_video") / "clip.mp4"
    encode_mp4(path, frames)
    return path, decode_mp4(path)[0]


@pytest.fixture(scope="module")
def face_regions(user_video):
    """Independent of the pipeline's mask: per frame, the crop square warped into the frame
    (dilated by 2 px), and its core (the square shrunk by 80 crop px)."""
    _, frames = user_video
    res = A.align_clip(frames, detector="hog")
    square, core = np.zeros(frames.shape[:3], bool), np.zeros(frames.shape[:3], bool)
    inner = np.zeros((512, 512), np.uint8)
    inner[80:-80, 80:-80] = 1
    for t, m in enumerate(A.invert_affine(res.matrices)):
        corners = A.apply_affine(m, np.array([[0, 0], [512, 0], [512, 512], [0, 512]], float))
        poly = np.zeros(frames.shape[1:3], np.uint8)
        cv2.fillConvexPoly(poly, np.round(corners).astype(np.int32), 1)
        square[t] = cv2.dilate(poly, np.ones((5, 5), np.uint8)) > 0
        core[t] = cv2.warpAffine(inner, m, frames.shape[2:0:-1], flags=cv2.INTER_NEAREST) > 0
    return square, core


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b) ** 2))


def run_cli(capsys, *args) -> str:
    assert cli.main(["restore", "--device", "cpu", "--no-progress", *map(str, args)]) == 0
    return capsys.readouterr().out


def test_lq_upsample_on_an_unaligned_video(user_video, face_regions, tmp_path, capsys):
    src, frames_in = user_video
    square, core = face_regions
    out = tmp_path / "restored.mp4"
    text = run_cli(capsys, "--method", "lq-upsample", "--input", src, "--output", out, "--frames",
                   "--detector", "hog")
    assert ("all 10 frames restored: face detected in 8, track interpolated in 0 (between detections), "
            "held in 2") in text

    video, rate = decode_mp4(out)
    assert video.shape == frames_in.shape and rate == FPS
    pngs = read_frames(tmp_path / "restored_frames")
    assert pngs.shape == frames_in.shape

    assert square.mean() < 0.2  # the untouched region is most of the frame
    np.testing.assert_array_equal(pngs[~square], frames_in[~square])
    # The face went through crop -> restore -> paste (bilinear both ways): changed, not replaced.
    # (The faceless end frames, restored on the held track, are checked with a visible method below.)
    diff = np.abs(pngs.astype(np.int16) - frames_in)
    assert 0.5 < diff[core].mean() < 8
    # The mp4 matches the PNGs up to codec error.
    assert psnr(video, pngs) > 35


def test_restored_face_is_pasted_where_the_face_is(user_video, face_regions, tmp_path, capsys,
                                                   monkeypatch):
    methods = tmp_path / "methods"
    methods.mkdir()
    (methods / "negate.yaml").write_text("entry: tests.test_restore:NegateRestorer\n"
                                         "description: photographic negative (test stand-in)\n")
    monkeypatch.setenv("VFR_BENCH_METHODS", str(methods))
    src, frames_in = user_video
    square, core = face_regions
    out = tmp_path / "neg.mp4"
    run_cli(capsys, "--method", "negate", "--input", src, "--output", out, "--frames", "--detector", "hog",
            "--chunk", "3")
    pngs = read_frames(tmp_path / "neg_frames").astype(np.float64)
    np.testing.assert_array_equal(pngs[~square], frames_in[~square])
    # Inside the core the output is the negative of the input at the same place, in every frame.
    for t in range(len(frames_in)):
        got, want = pngs[t][core[t]].ravel(), 255.0 - frames_in[t][core[t]].ravel()
        assert np.corrcoef(got, want)[0, 1] > 0.97
        assert np.abs(got - want).mean() < 8


def test_frames_the_detector_missed_are_restored_on_the_interpolated_track(user_video, face_regions,
                                                                             tmp_path):
    """Misses inside the clip: the track is interpolated there and the frame restored (no flicker
    back to the input), and the report counts detected / interpolated / held frames."""
    from vfr_bench.restore import restore_video
    src, frames_in = user_video
    square, core = face_regions
    hog = A.build_detector("hog")
    calls = iter(range(10 ** 6))
    missed = {3, 4, 6}

    def flaky(frame):  # the first pass sees frames in order: drop three of them
        return np.full((5, 2), np.nan) if next(calls) in missed else hog(frame)

    r = restore_video(NegateRestorer("negate"), src, tmp_path / "neg.mp4", save_frames=True,
                      detector=flaky, progress=False)
    assert (r.detected, r.interpolated, r.held) == (5, 3, 2)
    pngs = read_frames(tmp_path / "neg_frames").astype(np.float64)
    for t in sorted(missed):
        got, want = pngs[t][core[t]].ravel(), 255.0 - frames_in[t][core[t]].ravel()
        assert np.corrcoef(got, want)[0, 1] > 0.97, t
        np.testing.assert_array_equal(pngs[t][~square[t]], frames_in[t][~square[t]])


def test_aligned_folder_is_restored_whole(tmp_path, capsys, monkeypatch):
    from skimage.data import astronaut
    src = tmp_path / "aligned"
    src.mkdir()
    frames = np.stack([np.roll(astronaut(), 4 * k, axis=1) for k in range(3)])
    for k, f in enumerate(frames):
        cv2.imwrite(str(src / f"{k:04d}.png"), f[..., ::-1])

    out = tmp_path / "up.mp4"
    text = run_cli(capsys, "--method", "lq-upsample", "--input", src, "--output", out, "--aligned", "--frames")
    assert "aligned input" in text and "without a face" not in text
    np.testing.assert_array_equal(read_frames(tmp_path / "up_frames"), frames)
    video, rate = decode_mp4(out)
    assert video.shape == frames.shape and rate == 25
    assert psnr(video, frames) > 30  # yuv420p chroma subsampling of a detailed photo

    methods = tmp_path / "methods"
    methods.mkdir()
    (methods / "negate.yaml").write_text("entry: tests.test_restore:NegateRestorer\n")
    monkeypatch.setenv("VFR_BENCH_METHODS", str(methods))
    run_cli(capsys, "--method", "negate", "--input", src, "--output", tmp_path / "neg.mp4", "--aligned",
            "--frames", "--fps", "30")
    np.testing.assert_array_equal(read_frames(tmp_path / "neg_frames"), 255 - frames)
    assert decode_mp4(tmp_path / "neg.mp4")[1] == 30


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_streamed_reading_matches_a_full_decode(user_video, decoder, monkeypatch):
    import sys
    from vfr_bench.restore import iter_frames
    if decoder == "pyav":
        monkeypatch.setitem(sys.modules, "decord", None)  # import fails -> PyAV
    src, frames_in = user_video
    parts = list(iter_frames(src, chunk=4))
    assert [len(p) for p in parts] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(parts), frames_in)


def test_video_without_any_face_is_refused_and_nothing_written(tmp_path):
    from vfr_bench.align import NoFaceError
    from vfr_bench.methods import build_method
    from vfr_bench.restore import restore_video
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (4, 64, 96, 3), dtype=np.uint8)
    src = tmp_path / "noise"
    src.mkdir()
    for k, f in enumerate(frames):
        cv2.imwrite(str(src / f"{k:04d}.png"), f)
    with pytest.raises(NoFaceError, match=r"no face found in any of the 4 frames of .*noise"):
        restore_video(build_method("lq-upsample").prepare("cpu"), src, tmp_path / "o.mp4",
                      save_frames=True, detector=lambda f: np.full((5, 2), np.nan), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise"]


def test_odd_sizes_are_padded_for_yuv420p(tmp_path):
    from vfr_bench.restore import Mp4Writer
    frames = np.random.default_rng(2).integers(0, 256, (3, 33, 47, 3), dtype=np.uint8)
    w = Mp4Writer(tmp_path / "odd.mp4", 12.5, (33, 47))
    w.write(frames)
    w.close()
    video, rate = decode_mp4(tmp_path / "odd.mp4")
    assert video.shape == (3, 34, 48, 3) and rate == 12.5 and w.video_size == (34, 48)
    # the added row and column repeat the last ones (up to codec error)
    assert np.abs(video[:, 33].astype(int) - video[:, 32]).mean() < 6
    assert np.abs(video[:, :, 47].astype(int) - video[:, :, 46]).mean() < 6
