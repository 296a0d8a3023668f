"""HQ sources: a VFHQ-layout folder (frames + annotation) is read and aligned with its given
landmarks, no detector; annotation formats of VFHQ, KEEP and DicFace; video files."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from vfr_bench import align as A
from vfr_bench.datasets.build import DegradeError, degrade
from vfr_bench.datasets.clips import read_frames
from vfr_bench.datasets.sources import list_clips, read_annotation, read_video


def _sim(scale, deg, tx, ty):
    a = np.deg2rad(deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


@pytest.fixture()
def vfhq_folder(short_src, tmp_path):
    """One clip in VFHQ-Test's layout: unaligned 480x640 frames made by moving an aligned
    face with known transforms, and ``<clip>.txt`` with per-frame boxes and 5 landmarks."""
    aligned = read_frames(sorted(short_src.iterdir())[0])
    root = tmp_path / "vfhq"
    clip = root / "Clip+abc+P0+F0"
    clip.mkdir(parents=True)
    lines = ["Video: abc", "H: 480", "W: 640", "FPS: 25", "FRAME INDEX X0 Y0 W H [Landmarks (5 Points)]"]
    jitter = np.random.default_rng(0).uniform(-1, 1, (len(aligned), 2))  # a slightly shaky camera
    transforms = [_sim(0.6, -10.0, 150 + dx, 60 + dy) for dx, dy in jitter]
    for k, (face, s) in enumerate(zip(aligned, transforms)):
        frame = cv2.warpAffine(face, s, (640, 480), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        cv2.imwrite(str(clip / f"{k:08d}.png"), frame[..., ::-1])
        lm = A.apply_affine(s, A.FFHQ_512)
        box = [lm[:, 0].min() - 40, lm[:, 1].min() - 60, 200, 220]
        lines.append(f"{k:05d} " + " ".join(f"{v:.3f}" for v in [*box, *lm.ravel()]))
    (root / "Clip+abc+P0+F0.txt").write_text("\n".join(lines) + "\n")
    return root, aligned, transforms


def test_vfhq_layout_is_aligned_with_its_annotation_no_detector(vfhq_folder, tmp_path, monkeypatch):
    root, aligned, transforms = vfhq_folder
    monkeypatch.setattr(A, "build_detector", lambda *a, **k: pytest.fail("detector used"))
    clips, _ = list_clips(root)
    assert [c.id for c in clips] == ["Clip+abc+P0+F0"] and clips[0].annotation.name == "Clip+abc+P0+F0.txt"
    lms, boxes = read_annotation(clips[0].annotation)
    assert lms.shape == (6, 5, 2) and boxes.shape == (6, 4)
    res = degrade("vfhq-color", root, tmp_path / "out", progress=False)
    entry = res.manifest["clips"][0]
    assert entry["alignment"]["backend"] == "annotation" and res.manifest["alignment"] == ["annotation"]
    gt = read_frames(res.root / entry["gt"])
    assert gt.shape == (6, 512, 512, 3)
    # Given landmarks are the template moved by the known transforms (smoothed over time):
    # the crops come back close to the aligned source faces (0.6x down and up again).
    inner = (slice(96, 416), slice(96, 416))
    for g, a in zip(gt, aligned):
        mse = np.mean((g[inner].astype(float) - a[inner].astype(float)) ** 2)
        assert 10 * np.log10(255 ** 2 / mse) > 22
    m = np.asarray(entry["alignment"]["matrices"])
    assert m.shape == (6, 2, 3)


def test_annotation_formats(tmp_path):
    lm = np.arange(10, dtype=float).reshape(5, 2) + 100
    (tmp_path / "keep.txt").write_text("".join(f"{k:08d}.png " + " ".join(map(str, lm.ravel() + k)) + "\n"
                                               for k in range(3)))
    (tmp_path / "dicface.txt").write_text("".join(" ".join(map(str, lm.ravel())) + "\n" for _ in range(2)))
    keep, keep_boxes = read_annotation(tmp_path / "keep.txt")
    assert keep.shape == (3, 5, 2) and np.allclose(keep[2], lm + 2) and keep_boxes is None
    assert np.allclose(read_annotation(tmp_path / "dicface.txt")[0], lm)
    (tmp_path / "empty.txt").write_text("Video: x\n")
    with pytest.raises(ValueError, match="no landmark"):
        read_annotation(tmp_path / "empty.txt")


def test_annotation_length_mismatch_is_skipped(vfhq_folder, tmp_path):
    root, _, _ = vfhq_folder
    ann = root / "Clip+abc+P0+F0.txt"
    ann.write_text("\n".join(ann.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DegradeError, match="no usable clip.*annotation Clip.abc.P0.F0.txt has 5 frames"):
        degrade("vfhq-color", root, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing written when no clip is usable


def test_video_files_are_a_source(short_src, tmp_path):
    frames = read_frames(sorted(short_src.iterdir())[0])
    root = tmp_path / "videos"
    root.mkdir()
    with av.open(str(root / "talk.mp4"), "w") as out:
        st = out.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 512, 512, "yuv444p"
        st.options = {"crf": "0", "threads": "1"}
        for f in frames:
            out.mux(st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(st.encode())
    decoded = read_video(root / "talk.mp4")
    assert decoded.shape == frames.shape and np.abs(decoded.astype(int) - frames).mean() < 2
    res = degrade("celebv-x8", root, tmp_path / "out", progress=False)
    assert [(c["id"], c["n_frames"], c["fps"]) for c in res.manifest["clips"]] == [("talk", 6, 30.0)]
