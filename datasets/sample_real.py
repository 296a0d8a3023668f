"""The embedded ``sample-real`` split: a small real-footage-track split built offline on first use.

Source clips look like real video: the public-domain astronaut photo of scikit-image
(``skimage.data.astronaut``, NASA) placed unaligned in a wider 320x240 frame over a smooth
seeded background, drifting, rotating and zooming over time, then degraded (Gaussian blur,
x2 bicubic downscale, Gaussian noise, H.264 through PyAV, reproducible: one thread, no SIMD) and stored
as mp4 files only. The split is then built from those videos by the real recipe
(:mod:`vfr_bench.datasets.real`: detect, track, align, crop; dlib HOG so the result does not
depend on which weights are present), so ``bench --split sample-real`` exercises detection,
alignment and the GT-free metrics offline. All draws come from generators seeded by
(seed, clip id): building twice gives byte-identical files.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from vfr_bench.datasets import degradations as D
from vfr_bench.align import estimate_similarity
from vfr_bench.datasets.sample import ASTRONAUT_EYES_NOSE

NAME = "sample-real"
DEFAULT_SEED = 0
N_CLIPS, N_FRAMES, FPS = 2, 24, 25
WIDTH, HEIGHT = 320, 240
RENDER = 2  # frames are rendered at 2x and downscaled by the degradation
DETECTOR = "hog"
WAVES = ("drift_x", "drift_y", "rotation_deg", "zoom")  # each [amplitude, cycles per frame, phase]

RECIPE = {
    "eye_distance_px": [30.0, 36.0],   # in the 320x240 frame (FFHQ-512 crops: 126 px, so ~x4 up)
    "centre_offset_px": [-30.0, 30.0],
    "motion": {"drift_px": [4.0, 10.0], "rotation_deg": [2.0, 5.0], "zoom": [0.01, 0.03],
               "freq_cycles_per_frame": [0.005, 0.015]},  # slow, as a talking head: <= 1 px/frame
    "blur_sigma": [0.8, 1.6],          # at the 2x render size
    "noise_sigma": [1.0, 4.0],         # 0..255 scale, after the downscale
    "crf": [26, 32],
}


def _draw_params(gen: torch.Generator) -> dict:
    r, m = RECIPE, RECIPE["motion"]
    u = lambda rng: D.uniform(gen, *rng)  # noqa: E731
    wave = lambda rng: [u(rng), u(m["freq_cycles_per_frame"]), u([0.0, 2 * math.pi])]  # noqa: E731
    return {"eye_distance": u(r["eye_distance_px"]), "centre": [u(r["centre_offset_px"]), u(r["centre_offset_px"])],
            "drift_x": wave(m["drift_px"]), "drift_y": wave(m["drift_px"]), "rotation_deg": wave(m["rotation_deg"]),
            "zoom": wave(m["zoom"]), "blur_sigma": u(r["blur_sigma"]), "noise_sigma": u(r["noise_sigma"]),
            "crf": int(round(u(r["crf"])))}


def _background(gen: torch.Generator) -> np.ndarray:
    """[2H,2W,3] uint8: smooth colour blobs (seeded noise on a coarse grid, upsampled)."""
    coarse = torch.rand((1, 3, 4, 5), generator=gen, dtype=torch.float32) * 0.6 + 0.2
    x = torch.nn.functional.interpolate(coarse, size=(HEIGHT * RENDER, WIDTH * RENDER), mode="bicubic",
                                        align_corners=False)
    return D.to_uint8(x)[0]


def render_matrices(params: dict) -> np.ndarray:
    """[T,2,3] affine photo -> 2x render frame of each frame."""
    eyes = ASTRONAUT_EYES_NOSE[:2]
    scale = params["eye_distance"] * RENDER / np.linalg.norm(eyes[1] - eyes[0])
    centre = (np.array([WIDTH / 2, HEIGHT / 2.4]) + params["centre"]) * RENDER
    base = estimate_similarity(eyes, centre + (eyes - eyes.mean(0)) * scale)
    mats = []
    for t in range(N_FRAMES):
        w = {k: params[k][0] * math.sin(2 * math.pi * params[k][1] * t + params[k][2]) for k in WAVES}
        c = centre + (w["drift_x"] * RENDER, w["drift_y"] * RENDER)
        move = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), w["rotation_deg"], 1.0 + w["zoom"])
        move[:, 2] += c - centre
        mats.append((np.vstack([move, [0, 0, 1]]) @ np.vstack([base, [0, 0, 1]]))[:2])
    return np.stack(mats)


def true_landmarks(params: dict) -> np.ndarray:
    """[T,3,2] eye centres (image left, image right) and nose tip in the 320x240 frames, from the
    render transform and the x2 downscale (pixel centres: x -> (x + 0.5) / 2 - 0.5)."""
    from vfr_bench.align import apply_affine
    hi = apply_affine(render_matrices(params), ASTRONAUT_EYES_NOSE[None])
    return (hi + 0.5) / RENDER - 0.5


def render_clip(photo: np.ndarray, params: dict, gen: torch.Generator, face: bool = True) -> np.ndarray:
    """[T,240,320,3] uint8 RGB degraded frames (before the codec); ``face=False``: background only."""
    bg = _background(gen)
    frames = []
    for m in render_matrices(params):
        f = bg.copy()
        if face:
            cv2.warpAffine(photo, m, (WIDTH * RENDER, HEIGHT * RENDER), dst=f, flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_TRANSPARENT)
        frames.append(f)
    x = D.gaussian_blur(D.from_uint8(np.stack(frames)), params["blur_sigma"])
    x = D.bicubic_resize(x, (HEIGHT, WIDTH))
    return D.to_uint8(D.gaussian_noise(x, params["noise_sigma"], gen))


def write_source_clip(path: Path, seed: int, clip_id: str, face: bool = True) -> dict:
    """Render one source video to ``path`` (mp4, libx264, reproducible bytes); returns its parameters."""
    from skimage.data import astronaut

    from vfr_bench.video_io import write_mp4
    gen = D.clip_generator(seed, clip_id)
    params = _draw_params(gen)
    write_mp4(path, render_clip(astronaut(), params, gen, face), FPS, crf=params["crf"], reproducible=True)
    return params


def source_params(seed: int, clip_id: str) -> dict:
    """The parameters :func:`write_source_clip` draws for a clip (for checks against the truth)."""
    return _draw_params(D.clip_generator(seed, clip_id))


def clip_ids() -> list[str]:
    return [f"astronaut-real-{k:02d}" for k in range(N_CLIPS)]


def build_sample_real(root: Path, seed: int = DEFAULT_SEED) -> Path:
    """Render the source videos, build the split from them with the real recipe into ``root``
    (replaced atomically; the videos are kept in ``root/source/``) and return ``root``."""
    from vfr_bench.datasets.build import degrade
    from vfr_bench.datasets.recipes import load_recipe
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sample-real-", dir=root.parent))
    try:
        for cid in clip_ids():
            write_source_clip(tmp / "source" / f"{cid}.mp4", seed, cid)
        recipe = dataclasses.replace(
            load_recipe("real"), name=NAME, seed=seed,
            source="skimage.data.astronaut (NASA, public domain), unaligned in 320x240 frames with drift, "
                   "rotation and zoom; blur, x2 down, noise, H.264; aligned by the real recipe",
            description="embedded real-track sample: 2 synthetic 'real' videos, aligned, no GT")
        split = degrade(recipe, tmp / "source", tmp / "split", progress=False, detector=DETECTOR).root
        shutil.move(str(tmp / "source"), str(split / "source"))
        if root.exists():
            shutil.rmtree(root)
        split.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
