"""FLAIR's sampling loop for one window of frames (DDIM-like with DC, enhancement and overlap).

FLAIR (Zou et al., WACV 2025; https://github.com/wustl-cig/FLAIR,
``guided_diffusion/gaussian_diffusion.py`` ``p_sample_loop_progressive`` / ``p_sample``).
For spaced t = T-1..0:

1. eps = model(x_t, time input of t); x0 = sqrt(1/ab) x_t - sqrt(1/ab - 1) eps, clamp [-1,1];
2. DC: x0 <- clamp(x0 - gamma_t R(x0), -1, 1) (``operators.project``);
3. enhancement for t >= tau: x0 <- w_t x0 + (1 - w_t) enhance(x0, x_t) (optional callable);
4. windows after the first: x0[:3] <- previous window's last 3 final frames;
5. eps' = (sqrt(1/ab) x_t - x0) / sqrt(1/ab - 1);
   x_{t-1} = sqrt(ab_{t-1}) x0 + sqrt(1-ab_{t-1}) (sqrt(1-rho) eps' + sqrt(rho) z), at t=0 x0.

x_T = q_sample(condition, T-1) (not pure noise). Coefficients are float32 values as the
official ``_extract_into_tensor`` gives them. Noise comes from a CPU ``torch.Generator`` so a
seed gives the same draws on every device.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .operators import Operator, project
from .schedules import Schedule
from .windows import overwrite_overlap

#: (x_t [T,3,H,W], spaced t) -> eps [T,3,H,W] (extra output channels already dropped)
EpsFn = Callable[[torch.Tensor, int], torch.Tensor]
#: (x0 [T,3,H,W], x_t [T,3,H,W], spaced t) -> frames with the enhanced face blended in, [-1,1]
EnhanceFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def _randn(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator, dtype=torch.float32).to(like)


def q_sample(cond: torch.Tensor, schedule: Schedule, t: int, generator: torch.Generator) -> torch.Tensor:
    """sqrt(ab_t) cond + sqrt(1 - ab_t) n, n ~ N(0, I) (float32 coefficients)."""
    a = torch.tensor(schedule.alphas_cumprod[t] ** 0.5, dtype=torch.float32).to(cond.device)
    b = torch.tensor((1 - schedule.alphas_cumprod[t]) ** 0.5, dtype=torch.float32).to(cond.device)
    return a * cond + b * _randn(cond, generator)


@torch.no_grad()
def sample_window(eps_fn: EpsFn, schedule: Schedule, operator: Operator, cond: torch.Tensor,
                  y: torch.Tensor, generator: torch.Generator, *,
                  prev_tail: Optional[torch.Tensor] = None,
                  enhance: Optional[EnhanceFn] = None,
                  on_step: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
    """Sample one window.

    Args:
        eps_fn: the UNet wrapped for this window (see ``EpsFn``).
        schedule: respaced schedule of the task (``schedules.make_schedule``).
        operator: the task's forward operator (``operators.make_operator``).
        cond: [T,3,H,W] condition (upsampled LQ) in [-1,1]; x_T is noised from it.
        y: [T,3,h,w] measurement (LQ frames) in [-1,1].
        generator: CPU generator, consumed for x_T and one draw per step.
        prev_tail: [k,3,H,W] previous window's last final frames, imposed on x0 at every step.
        enhance: optional face enhancement (see ``EnhanceFn``), applied for t >= tau.
        on_step: optional callback(t, x0) after step 4 (tests, progress).
    Returns:
        [T,3,H,W] final frames (x0 of t=0), in [-1,1].
    """
    steps = schedule.visit_order()
    x = q_sample(cond, schedule, steps[0], generator)
    for t in steps:
        c = {k: v.to(x.device) for k, v in schedule.coefficients(t).items()}
        eps = eps_fn(x, t)
        x0 = (c["sqrt_recip_ab"] * x - c["sqrt_recipm1_ab"] * eps).clamp(-1, 1)
        x0 = project(x0, y, operator, c["gamma"])
        if enhance is not None and t >= schedule.tau:
            x_face = enhance(x0, x, t).clamp(-1, 1)
            x0 = c["w"] * x0 + (1 - c["w"]) * x_face
        x0 = overwrite_overlap(x0, prev_tail)
        if on_step is not None:
            on_step(t, x0)
        z = _randn(x, generator)
        if t == 0:
            x = c["coef_x0"] * x0
            continue
        eps = (c["sqrt_recip_ab"] * x - x0) / c["sqrt_recipm1_ab"]
        rho = schedule.rho
        x = c["coef_x0"] * x0 + ((1 - rho) ** 0.5 * c["coef_noise"] * eps
                                 + rho ** 0.5 * c["coef_noise"] * z)
    return x
