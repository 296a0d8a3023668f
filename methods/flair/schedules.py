"""FLAIR's noise schedules, 100-step respacing and per-step sampling coefficients.

FLAIR (Zou et al., WACV 2025; https://github.com/wustl-cig/FLAIR) samples with guided
diffusion's ``SpacedDiffusion`` (``guided_diffusion/respace.py``, ``gaussian_diffusion.py``):
the base linear beta schedule is respaced to 100 steps (``space_timesteps(T0, "100")``), the
sampler visits spaced t = 99..0, and every coefficient is read as float32
(``_extract_into_tensor``). The two UNet families get different time inputs (sr3: float32
sqrt(alphabar_spaced[t]); unet_new: the original integer timestep). The DC weight gamma_t and
the enhancement weight w_t are built as in ``p_sample_loop_progressive``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NUM_STEPS = 100


def base_betas(family: str) -> np.ndarray:
    """Base beta schedule: ``sr3`` (x8/x16, 'face_bicubic') or ``unet_new`` (x4, 'face_blur')."""
    if family == "sr3":
        return np.linspace(1e-6, 1e-2, 2000, dtype=np.float64)
    if family == "unet_new":
        return np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    raise ValueError(f"unknown UNet family {family!r}; known: sr3, unet_new")


def space_timesteps(num_timesteps: int, count: int) -> list[int]:
    """guided-diffusion 'uniform' spacing with one section: round(i * (T-1)/(count-1))."""
    stride = (num_timesteps - 1) / (count - 1) if count > 1 else 1
    steps, cur = [], 0.0
    for _ in range(count):
        steps.append(round(cur))
        cur += stride
    return sorted(set(steps))


@dataclass(frozen=True)
class Schedule:
    """Respaced schedule of one FLAIR task; arrays are float64, indexed by spaced t (0..99).

    Attributes:
        timestep_map: [100] original timestep of each spaced t.
        alphas_cumprod: [100] alphabar of the spaced schedule.
        model_time: [100] what the UNet receives (float32 sqrt(alphabar) for sr3, int64
            original timestep for unet_new).
        gammas: [100] DC weight gamma_t.
        ws: [100] enhancement blend weight w_t (1 = no enhancement).
        tau: enhancement runs for tau <= t <= 99.
        rho: share of fresh noise in x_{t-1}.
    """

    family: str
    timestep_map: np.ndarray
    betas: np.ndarray
    alphas_cumprod: np.ndarray
    model_time: np.ndarray
    gammas: np.ndarray
    ws: np.ndarray
    tau: int
    rho: float

    @property
    def sqrt_recip_alphas_cumprod(self) -> np.ndarray:
        return np.sqrt(1.0 / self.alphas_cumprod)

    @property
    def sqrt_recipm1_alphas_cumprod(self) -> np.ndarray:
        return np.sqrt(1.0 / self.alphas_cumprod - 1)

    @property
    def sqrt_alphas_cumprod_prev(self) -> np.ndarray:
        """sqrt(alphabar_{t-1}) with alphabar_{-1} = 1 (coefficient of x0 in x_{t-1})."""
        return np.sqrt(np.append(1.0, self.alphas_cumprod[:-1]))

    @property
    def sqrt_one_minus_alphas_cumprod_prev(self) -> np.ndarray:
        """sqrt(1 - alphabar_{t-1}), 0 at t=0 (noise coefficient of x_{t-1})."""
        return np.append(0.0, np.sqrt(1.0 - self.alphas_cumprod[:-1]))

    @property
    def aux_applied(self) -> np.ndarray:
        """[100] bool: the enhancement module runs at this spaced t."""
        return np.arange(len(self.alphas_cumprod)) >= self.tau

    def visit_order(self) -> list[int]:
        """Spaced timesteps in sampling order, 99..0."""
        return list(range(len(self.alphas_cumprod) - 1, -1, -1))

    def coefficients(self, t: int, device=None) -> dict[str, torch.Tensor]:
        """Float32 scalars used at spaced step t (as ``_extract_into_tensor`` reads them)."""
        vals = {
            "sqrt_recip_ab": self.sqrt_recip_alphas_cumprod[t],
            "sqrt_recipm1_ab": self.sqrt_recipm1_alphas_cumprod[t],
            "coef_x0": self.sqrt_alphas_cumprod_prev[t],
            "coef_noise": self.sqrt_one_minus_alphas_cumprod_prev[t],
            "gamma": self.gammas[t],
            "w": self.ws[t],
        }
        return {k: torch.tensor(v, dtype=torch.float32, device=device) for k, v in vals.items()}

    def model_time_input(self, t: int, n: int, device=None) -> torch.Tensor:
        """[n] time input for the UNet at spaced step t (float32 for sr3, int64 for unet_new)."""
        return torch.full((n,), self.model_time[t].item(), dtype=torch.from_numpy(
            self.model_time[:1]).dtype, device=device)


def enhancement_weights(w: float, tau: int, num_steps: int = NUM_STEPS) -> np.ndarray:
    """w_t: 1 for t < tau; for t = tau..num_steps-1 a normalised exp(-s), s in linspace(0,1),
    rescaled to run from w (t=tau) to 1 (t=num_steps-1)."""
    start = num_steps - 1
    if start - tau <= 0:
        return np.full(num_steps, float(w))
    e = np.exp(-np.linspace(0, 1, start - tau + 1))
    ws = 1 - (e - e.min()) / (e.max() - e.min()) * (1 - w)
    return np.concatenate([np.ones(tau), ws])


def dc_gammas(alphas_cumprod: np.ndarray, noise_level: float, zeta: float) -> np.ndarray:
    """gamma_t: 1 when zeta == -1; else g = zeta*noise_level^2*ab/(1-ab) (noise_level as given,
    not /255), g>=1 -> 0.991, then g<=0.1 -> 1e-6, gamma = 1-g."""
    if zeta == -1:
        return np.ones_like(alphas_cumprod)
    g = zeta * noise_level**2 / (np.sqrt(1.0 - alphas_cumprod) / np.sqrt(alphas_cumprod)) ** 2
    g[g >= 1] = 0.991
    g[g <= 1e-1] = 1e-6
    return 1 - g


def make_schedule(family: str, w: float, rho: float, noise_level: float, zeta: float,
                  tau: int = 5, num_steps: int = NUM_STEPS) -> Schedule:
    """The respaced schedule of a FLAIR task (see ``configs/methods/flair.yaml`` for values)."""
    betas = base_betas(family)
    ab_base = np.cumprod(1.0 - betas)
    keep = set(space_timesteps(len(betas), num_steps))
    tmap, new_betas, last = [], [], 1.0
    for i, ab in enumerate(ab_base):
        if i in keep:
            new_betas.append(1 - ab / last)
            last = ab
            tmap.append(i)
    betas_s = np.asarray(new_betas, dtype=np.float64)
    ab = np.cumprod(1.0 - betas_s)
    tmap = np.asarray(tmap, dtype=np.int64)
    if family == "sr3":
        model_time = np.sqrt(ab).astype(np.float32)
    else:
        model_time = tmap.copy()
    return Schedule(family=family, timestep_map=tmap, betas=betas_s, alphas_cumprod=ab,
                    model_time=model_time, gammas=dc_gammas(ab, noise_level, zeta),
                    ws=enhancement_weights(w, tau, num_steps), tau=tau, rho=rho)
