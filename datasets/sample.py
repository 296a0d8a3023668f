"""The embedded ``sample`` split: built on demand, deterministically, from a photo
that ships inside scikit-image (``skimage.data.astronaut``, NASA, public domain).

Each clip is the face aligned to the FFHQ 512 template and moved smoothly over
time (translation, small rotation, zoom, slow brightness drift; different per
clip). LQ frames follow a KEEP-style blind VFHQ degradation: Gaussian blur, x4
bicubic down, Gaussian noise, then H.264 (libx264, fixed CRF, yuv420p) through
PyAV. All draws come from generators seeded by (seed, clip id), so building the
split twice gives byte-identical files.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import torch

from vfr_bench.datasets import degradations as D
from vfr_bench.datasets.splits import make_split_dir, write_manifest
from vfr_bench.face_geometry import FFHQ_512, estimate_similarity

NAME = "sample"
VERSION = 1
DEFAULT_SEED = 0
N_CLIPS, N_FRAMES, FPS, SIZE, SCALE = 3, 24, 25, 512, 4

# Eye centres and nose tip of the astronaut photo (dlib 5-point model, measured once).
ASTRONAUT_EYES_NOSE = np.array([[203.5, 102.0], [246.5, 104.5], [224.0, 135.0]])

RECIPE = {
    "order": ["gaussian_blur", "bicubic_down", "gaussian_noise", "video_codec"],
    "blur_sigma": [2.0, 5.0],       # pixels at 512, KEEP VFHQ-mild range
    "scale": SCALE,
    "noise_sigma": [0.0, 5.0],      # 0..255 scale
    "codec": "libx264", "crf": 23, "pix_fmt": "yuv420p",
    "motion": {"shift_px": [4.0, 10.0], "rotation_deg": [1.0, 3.0], "zoom": [0.01, 0.04],
               "brightness": [0.02, 0.06], "freq_cycles_per_frame": [0.015, 0.05]},
}


def _motion_params(gen: torch.Generator) -> dict:
    m = RECIPE["motion"]
    f = lambda: D.uniform(gen, *m["freq_cycles_per_frame"])  # noqa: E731
    phase = lambda: D.uniform(gen, 0.0, 2 * math.pi)  # noqa: E731
    return {k: [D.uniform(gen, *rng), f(), phase()] for k, rng in
            (("shift_x", m["shift_px"]), ("shift_y", m["shift_px"]), ("rotation_deg", m["rotation_deg"]),
             ("zoom", m["zoom"]), ("brightness", m["brightness"]))}


def _frame_transform(base: np.ndarray, motion: dict, t: int) -> tuple[np.ndarray, float]:
    """Affine matrix (source photo -> frame t) and brightness gain of frame t."""
    wave = {k: a * math.sin(2 * math.pi * fr * t + ph) for k, (a, fr, ph) in motion.items()}
    c = SIZE / 2
    rot = cv2.getRotationMatrix2D((c, c), wave["rotation_deg"], 1.0 + wave["zoom"])
    rot[:, 2] += (wave["shift_x"], wave["shift_y"])
    full = np.vstack([rot, [0, 0, 1]]) @ np.vstack([base, [0, 0, 1]])
    return full[:2], 1.0 + wave["brightness"]


def render_hq(photo: np.ndarray, motion: dict) -> np.ndarray:
    """[T,512,512,3] uint8 RGB frames of the moving aligned face."""
    base = estimate_similarity(ASTRONAUT_EYES_NOSE, FFHQ_512[:3])
    frames = []
    for t in range(N_FRAMES):
        m, gain = _frame_transform(base, motion, t)
        f = cv2.warpAffine(photo, m, (SIZE, SIZE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        frames.append(np.clip(np.rint(f.astype(np.float64) * gain), 0, 255).astype(np.uint8))
    return np.stack(frames)


def degrade(hq: np.ndarray, gen: torch.Generator) -> tuple[np.ndarray, dict]:
    """Blind degradation of [T,H,W,3] uint8 -> ([T,H/4,W/4,3] uint8, sampled parameters)."""
    sigma = D.uniform(gen, *RECIPE["blur_sigma"])
    noise = D.uniform(gen, *RECIPE["noise_sigma"])
    x = D.gaussian_blur(D.from_uint8(hq), sigma)
    x = D.bicubic_resize(x, (SIZE // SCALE, SIZE // SCALE))
    x = D.gaussian_noise(x, noise, gen)
    lq = D.video_codec(D.to_uint8(x), RECIPE["crf"], RECIPE["codec"], FPS)
    return lq, {"blur_sigma": sigma, "noise_sigma": noise, "crf": RECIPE["crf"]}


def write_frames(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))


def build_sample(root: Path, seed: int = DEFAULT_SEED) -> Path:
    """Build the sample split into ``root`` (replaced atomically) and return it."""
    from skimage.data import astronaut
    photo = astronaut()
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_split_dir(root.parent, ".sample-")
    clips = []
    for k in range(N_CLIPS):
        cid = f"astronaut-{k:02d}"
        gen = D.clip_generator(seed, cid)
        motion = _motion_params(gen)
        hq = render_hq(photo, motion)
        lq, params = degrade(hq, gen)
        write_frames(tmp / "clips" / cid / "gt", hq)
        write_frames(tmp / "clips" / cid / "lq", lq)
        clips.append({"id": cid, "n_frames": N_FRAMES, "fps": FPS, "gt": f"clips/{cid}/gt",
                      "lq": f"clips/{cid}/lq", "params": {**params, "motion": motion}})
    write_manifest(tmp, {
        "name": NAME, "version": VERSION, "seed": seed, "degradation": "blind",
        "source": "skimage.data.astronaut (NASA, public domain), FFHQ-512 aligned, synthetic motion",
        "recipe": RECIPE, "clips": clips})
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root
