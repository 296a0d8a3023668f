"""Split recipes: ``configs/splits/NAME.yaml`` loaded into :class:`Recipe`, sampled, rendered.

A recipe is an ordered list of ``{op, params}``. A parameter is a fixed value or a range
written in the YAML: ``{uniform: [lo, hi]}`` (float), ``{randint: [lo, hi]}`` (int, both
ends included) or ``{choice: [a, b], p: [pa, pb]}``. :func:`sample_params` draws every
parameter of a clip from the generator seeded by (seed, clip id) without touching any
frame, so ranges can be checked for many clip ids cheaply; :func:`render` then applies the
ops, drawing the noise from the same generator.

Sources of the operators: KEEP (Feng et al., ECCV 2024; github.com/jnjaby/KEEP,
``basicsr/data/vfhq_real_degradation2_dataset.py``), DicFace (github.com/
fudan-generative-vision/DicFace, ``basicsr/data/{vfhq,inpainting,color}_dataset.py``) and
FLAIR (Zou et al. 2024; github.com/wustl-cig/FLAIR, ``scripts/video_sample.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from vfr_bench.config import ConfigError, read_yaml, to_dataclass
from vfr_bench.datasets import degradations as D
from vfr_bench.registry import unknown


@dataclass(frozen=True)
class Step:
    """One operator of a recipe: ``op`` names an entry of :data:`OPS`."""
    op: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """A split recipe as written in ``configs/splits/NAME.yaml``.

    Attributes:
        name: split name users type (``vfhq-mild``).
        version: bumped whenever the recipe changes.
        seed: default seed (``--seed`` overrides).
        source: the paper (and table) the recipe reproduces.
        degradation: operator the split declares: ``blind`` or a FLAIR operator name.
        data: the official HQ data the split is meant to be built from.
        description: one line for ``vfr-bench splits``.
        degradations: ordered operators.
    """
    name: str
    version: int
    seed: int
    source: str
    degradation: str
    data: str
    description: str
    degradations: tuple[Step, ...]

    def as_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "seed": self.seed, "source": self.source,
                "degradation": self.degradation, "data": self.data, "description": self.description,
                "degradations": [{"op": s.op, "params": s.params} for s in self.degradations]}


def recipes_dir() -> Path:
    return Path(str(files("vfr_bench.configs").joinpath("splits")))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def load_recipe(name_or_path: str) -> Recipe:
    """A recipe by name (``configs/splits/NAME.yaml``) or by YAML path.

    Raises:
        UnknownNameError: no such recipe; the message lists the valid ones.
        ConfigError: unknown key or operator, naming the file.
    """
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml") or not p.is_file():
        p = recipes_dir() / f"{name_or_path}.yaml"
        if not p.is_file():
            raise unknown("recipe", name_or_path, recipe_names())
    data = read_yaml(p)
    steps = []
    for i, s in enumerate(data.get("degradations") or []):
        step = to_dataclass(Step, s, f"{p}: degradations[{i}]")
        if step.op not in OPS:
            raise ConfigError(f"{p}: degradations[{i}]: unknown op {step.op!r}; valid: {', '.join(OPS)}")
        steps.append(step)
    data["degradations"] = tuple(steps)
    return to_dataclass(Recipe, data, str(p))


# --- parameter specs ---------------------------------------------------------------------

def draw(spec: Any, gen: torch.Generator) -> Any:
    """One value from a parameter spec (fixed value, uniform, randint or choice)."""
    if not isinstance(spec, dict):
        return spec
    if "uniform" in spec:
        lo, hi = spec["uniform"]
        return D.uniform(gen, float(lo), float(hi))
    if "randint" in spec:
        lo, hi = spec["randint"]
        return int(torch.randint(int(lo), int(hi) + 1, (), generator=gen))
    if "choice" in spec:
        options = list(spec["choice"])
        p = torch.tensor(spec.get("p", [1.0] * len(options)), dtype=torch.float64)
        return options[int(torch.multinomial(p / p.sum(), 1, generator=gen))]
    raise ConfigError(f"bad parameter spec {spec!r}: use a value, uniform, randint or choice")


def in_spec(value: Any, spec: Any) -> bool:
    """Whether a sampled value lies inside its spec (lists: every element)."""
    if isinstance(value, list):
        return all(in_spec(v, spec) for v in value)
    if not isinstance(spec, dict):
        return value == spec
    if "uniform" in spec:
        return spec["uniform"][0] <= value <= spec["uniform"][1]
    if "randint" in spec:
        return isinstance(value, int) and spec["randint"][0] <= value <= spec["randint"][1]
    return value in spec["choice"]


# --- operators: (sample(params, gen, n_frames) -> dict, apply(state, sampled, gen)) --------

class ClipState:
    """Frames being degraded ([T,3,H,W] float32 in [0,1]) and the inpainting mask if any."""

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.mask: Optional[np.ndarray] = None  # [H,W] bool

    def uint8(self) -> np.ndarray:
        return D.to_uint8(self.x)


def _sample_blur(p, gen, t):
    kind = draw(p.get("kernel", "iso"), gen)
    sx = draw(p["sigma_x"], gen)
    sy = draw(p.get("sigma_y", p["sigma_x"]), gen)
    theta = draw(p.get("rotation", 0.0), gen)
    if kind == "iso":
        sy, theta = sx, 0.0
    return {"kernel": kind, "kernel_size": int(p["kernel_size"]), "sigma_x": sx, "sigma_y": sy,
            "rotation": theta}


def _apply_blur(s, q, gen):
    k = D.gaussian_kernel2d(q["kernel_size"], q["sigma_x"], q["sigma_y"], q["rotation"])
    s.x = D.filter2d(s.x, k)


def _sample_motion(p, gen, t):
    return {"kernel_size": int(p["kernel_size"]), "length": draw(p["length"], gen),
            "angle": draw(p["angle"], gen)}


def _apply_motion(s, q, gen):
    s.x = D.filter2d(s.x, D.motion_kernel(q["kernel_size"], q["length"], math.radians(q["angle"])))


def _sample_noise(p, gen, t):
    """Per frame (KEEP/DicFace call the noise function frame by frame) or once per clip."""
    n = t if p.get("per_frame", False) else 1
    sig, gray = [], []
    for _ in range(n):
        sig.append(draw(p["sigma"], gen))
        gray.append(D.uniform(gen, 0.0, 1.0) < float(p.get("gray_prob", 0.0)))
    if not p.get("per_frame", False):
        return {"sigma": sig[0], "gray": gray[0]}
    return {"sigma": sig, "gray": gray}


def _apply_noise(s, q, gen):
    sig, gray = q["sigma"], q["gray"]
    if not isinstance(sig, list):
        sig, gray = [sig] * len(s.x), [gray] * len(s.x)
    s.x = torch.stack([D.channel_noise(f, a, g, gen) for f, a, g in zip(s.x, sig, gray)])
    if q.get("clip", True):
        s.x = s.x.clamp(0, 1)


def _sample_resize(p, gen, t):
    return {"scale": int(p["scale"]), "mode": draw(p.get("mode", "bicubic-aa"), gen),
            "even": bool(p.get("even", False))}


def _apply_resize(s, q, gen):
    h, w = s.x.shape[-2] // q["scale"], s.x.shape[-1] // q["scale"]
    if q["even"]:
        h, w = h // 2 * 2, w // 2 * 2
    s.x = D.resize(s.x, (h, w), q["mode"])


def _sample_kernel_down(p, gen, t):
    return {"scale": int(p["scale"]), "sigma": draw(p["sigma"], gen), "kernel_size": int(p["kernel_size"])}


def _apply_kernel_down(s, q, gen):
    s.x = D.kernel_downsample(s.x, D.gaussian_kernel2d(q["kernel_size"], q["sigma"]), q["scale"])


def _sample_flair_x4(p, gen, t):
    return {}


def _apply_flair_x4(s, q, gen):
    """FLAIR's own x4 operator D (its kernel file's Gaussian, ``methods/flair/operators``), so the
    ``flair`` x4 tasks see exactly the degradation their DC step assumes."""
    from vfr_bench.methods.flair.operators import GaussianX4
    s.x = (GaussianX4().downscale(s.x * 2 - 1) + 1) / 2  # [0,1] <-> [-1,1]


def _sample_flair_jpeg(p, gen, t):
    return {"quality": draw(p["quality"], gen)}


def _apply_flair_jpeg(s, q, gen):
    """FLAIR's differentiable JPEG emulation (its operator J), clamped to [0,1]."""
    from vfr_bench.methods.flair.operators import jpeg_roundtrip
    s.x = ((jpeg_roundtrip(s.x * 2 - 1, q["quality"]) + 1) / 2).clamp(0, 1)


def _sample_jpeg(p, gen, t):
    return {"quality": draw(p["quality"], gen)}


def _apply_jpeg(s, q, gen):
    s.x = D.from_uint8(D.jpeg(s.uint8(), q["quality"]))


def _sample_codec(p, gen, t):
    return {"crf": draw(p["crf"], gen), "codec": draw(p.get("codec", "libx264"), gen),
            "fps": int(p.get("fps", 25)), "preset": p.get("preset", "medium"),
            "quantize": p.get("quantize", "round")}


def _apply_codec(s, q, gen):
    if s.x.shape[-1] % 2 or s.x.shape[-2] % 2:
        raise ValueError(f"the codec needs even frame sizes, got {tuple(s.x.shape[-2:])}")
    if q["quantize"] == "truncate":  # KEEP/DicFace: np.clip(x * 255, 0, 255).astype(np.uint8)
        frames = (s.x.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    else:
        frames = s.uint8()
    s.x = D.from_uint8(D.video_codec(frames, q["crf"], q["codec"], q["fps"], q["preset"]))


def _sample_gray(p, gen, t):
    return {}


def _apply_gray(s, q, gen):
    s.x = D.grayscale(s.x)


def _sample_brush(p, gen, t):
    """DicFace ``brush_stroke_mask_video``: 1..3 polylines of random-walk vertices, one mask
    for the whole clip; vertices in [0,1] frame units, widths in px at 512."""
    mean_angle, angle_range = float(p["mean_angle"]), float(p["angle_range"])
    radius = math.sqrt(2.0) / 8  # DicFace: sqrt(H^2 + W^2) / 8, here in frame units
    n = draw(p["strokes"], gen)
    polylines, n_vertex, widths = [], [], []
    for _ in range(n):
        nv = draw(p["vertices"], gen)
        lo, hi = mean_angle - D.uniform(gen, 0, angle_range), mean_angle + D.uniform(gen, 0, angle_range)
        angles = [(2 * math.pi - D.uniform(gen, lo, hi)) if i % 2 == 0 else D.uniform(gen, lo, hi)
                  for i in range(nv)]
        pts = [[D.uniform(gen, 0, 1), D.uniform(gen, 0, 1)]]
        for a in angles:
            r = float(torch.randn((), generator=gen, dtype=torch.float64)) * radius / 2 + radius
            r = min(max(r, 0.0), 2 * radius)
            pts.append([min(max(pts[-1][0] + r * math.cos(a), 0.0), 1.0),
                        min(max(pts[-1][1] + r * math.sin(a), 0.0), 1.0)])
        polylines.append(pts)
        n_vertex.append(nv)
        widths.append(draw(p["width"], gen))
    return {"strokes": n, "vertices": n_vertex, "width": widths, "polylines": polylines}


def _apply_brush(s, q, gen):
    strokes = [{"vertices": v, "width": w} for v, w in zip(q["polylines"], q["width"])]
    m = D.brush_stroke_mask(strokes, s.x.shape[-2], s.x.shape[-1])
    s.x = s.x.clone()
    s.x[..., torch.from_numpy(m)] = 1.0  # DicFace fills the strokes with white
    s.mask = m


OPS = {
    "blur": (_sample_blur, _apply_blur),
    "motion_blur": (_sample_motion, _apply_motion),
    "noise": (_sample_noise, _apply_noise),
    "resize": (_sample_resize, _apply_resize),
    "kernel_downsample": (_sample_kernel_down, _apply_kernel_down),
    "jpeg": (_sample_jpeg, _apply_jpeg),
    "flair_x4": (_sample_flair_x4, _apply_flair_x4),
    "flair_jpeg": (_sample_flair_jpeg, _apply_flair_jpeg),
    "codec": (_sample_codec, _apply_codec),
    "grayscale": (_sample_gray, _apply_gray),
    "brush_mask": (_sample_brush, _apply_brush),
}


def sample_params(recipe: Recipe, clip_id: str, n_frames: int, seed: Optional[int] = None,
                  gen: Optional[torch.Generator] = None) -> list[dict]:
    """Every sampled parameter of one clip, in recipe order: ``[{"op": ..., **values}]``.

    Draws only from ``gen`` (default: :func:`degradations.clip_generator` of (seed, clip id)).
    """
    gen = gen if gen is not None else D.clip_generator(recipe.seed if seed is None else seed, clip_id)
    return [{"op": s.op, **OPS[s.op][0](s.params, gen, n_frames)} for s in recipe.degradations]


def render(recipe: Recipe, params: list[dict], hq: np.ndarray,
           gen: torch.Generator) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Apply sampled ``params`` to [T,H,W,3] uint8 HQ frames.

    Returns:
        LQ [T,h,w,3] uint8 and the [H,W] bool inpainting mask (or None).
    """
    state = ClipState(D.from_uint8(hq))
    for q in params:
        OPS[q["op"]][1](state, {k: v for k, v in q.items() if k != "op"}, gen)
    return state.uint8(), state.mask
