"""FLAIR as a video restorer: non-blind diffusion restoration with data consistency.

FLAIR (Zou et al., "Flair: A Conditional Diffusion Framework with Applications to Face Video
Restoration", WACV 2025; official code https://github.com/wustl-cig/FLAIR,
``scripts/video_sample.py``). The method runs only on splits whose declared degradation is
one of its four operators (``x8-bicubic``, ``x16-bicubic``, ``x4-gaussian``,
``x4-gaussian-jpeg``); the task and its demo parameters (w, rho, noise_level, zeta, tau)
follow from the split. Pipeline per clip: LQ -> [-1,1]; condition = bicubic (x8/x16) or area
(x4) upsampling to the frame size, clamped; windows of 10 frames step 7; per window the
sampler of ``sampler.py`` with the enhancement module of ``enhance.py`` (RetinaFace
alignment on the condition frames once per window, CodeFormer + ParseNet blend at every step
t >= tau, mixed with w_t); for x8/x16 the RFE ``vsrpp_weights`` are 0.93/0.98 on ParseNet's
background of the condition frames, 1 elsewhere. Output clamped, mapped to [0,1] and
truncated to 8-bit levels like the official ``.byte()``.

Frames without a detected face are not enhanced (the official code desynchronises there);
their number is logged per clip and kept in ``last_stats``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import logging

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as VF

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint
from vfr_bench.interface import ClipMeta, VideoRestorer

from . import operators, schedules
from .enhance import rfe_weights
from .sampler import sample_window
from .windows import run_windows

log = logging.getLogger(__name__)
ENHANCE_WEIGHTS = ["codeformer", "retinaface-resnet50", "parsenet"]


@dataclass(frozen=True)
class FlairTask:
    """Demo configuration of one FLAIR operator (``scripts/video_sample.py`` demo commands)."""
    family: str  # "sr3" (x8/x16) or "unet_new" (x4)
    weights: str  # weights-registry name of the UNet checkpoint
    factor: int
    w: float
    rho: float
    noise_level: float
    zeta: float
    tau: int = 5
    rfe_background: float = 1.0  # vsrpp weight on ParseNet's background (x8 0.93, x16 0.98)


TASKS = {
    "x8-bicubic": FlairTask("sr3", "flair-x8-bicubic", 8, w=0.85, rho=0.85, noise_level=0.0, zeta=-1,
                            rfe_background=0.93),
    "x16-bicubic": FlairTask("sr3", "flair-x16-bicubic", 16, w=0.7, rho=0.85, noise_level=0.0, zeta=-1,
                             rfe_background=0.98),
    "x4-gaussian": FlairTask("unet_new", "flair-gaussian", 4, w=0.75, rho=0.25, noise_level=2.55, zeta=1.0),
    "x4-gaussian-jpeg": FlairTask("unet_new", "flair-jpeg", 4, w=0.5, rho=0.5, noise_level=12.75, zeta=1.0),
}


@dataclass
class FlairConfig:
    """Parameters of ``configs/methods/flair.yaml``.

    Attributes:
        task: ``auto`` (from the split's degradation) or one of ``TASKS``.
        seed: seed of the sampling noise (x_T and every step), recorded with the results.
        samples: K > 1 averages K samples (the paper's FLAIR-SA), seeds seed..seed+K-1.
        steps: respaced sampling steps (official 100).
        size: frame size the networks run at (official 512; the LQ is size/factor).
        enhance: the face enhancement module (RetinaFace + CodeFormer + ParseNet), on in all
            four official demos; off gives the plain DC sampler.
    """
    task: Literal["auto", "x8-bicubic", "x16-bicubic", "x4-gaussian", "x4-gaussian-jpeg"] = "auto"
    seed: int = 0
    samples: int = 1
    steps: int = schedules.NUM_STEPS
    size: int = 512
    enhance: bool = True


class FlairRestorer(VideoRestorer):
    """FLAIR on splits with a matching degradation operator."""
    Config = FlairConfig

    def __init__(self, method_name: str, config: Optional[FlairConfig] = None, degradation: str = "blind"):
        super().__init__(method_name, config, degradation)
        if self.config.task != "auto" and self.config.task not in TASKS:
            raise ValueError(f"flair: unknown task {self.config.task!r}; known: auto, {', '.join(TASKS)}")
        # the task is fixed here: configured, or the split's operator when it is one of FLAIR's
        auto = degradation if degradation in TASKS else None
        self.task: Optional[str] = auto if self.config.task == "auto" else self.config.task
        self.net = None
        self.parsenet = None  # x8/x16 RFE weights and the enhancement mask
        self.enhancer = None  # enhance.FaceEnhancer when config.enhance
        self.last_stats: dict = {}

    # --- task and weights -------------------------------------------------------------
    def applicable(self, degradation: str) -> Optional[str]:
        """Runs only where the split's operator is a FLAIR task (and the configured one)."""
        if degradation not in TASKS:
            return (f"FLAIR is non-blind and has no operator for degradation {degradation!r} "
                    f"(it needs one of {', '.join(TASKS)})")
        if self.task is not None and degradation != self.task:
            return f"configured task {self.task!r} does not match the split's operator {degradation!r}"
        return None

    def required_weights(self) -> list[str]:
        """The task's UNet; ParseNet for the x8/x16 RFE weights; CodeFormer, RetinaFace and
        ParseNet for the enhancement module."""
        if not self.task:
            return []
        names = [TASKS[self.task].weights]
        if self.config.enhance:
            names += ENHANCE_WEIGHTS
        elif TASKS[self.task].family == "sr3":
            names.append("parsenet")
        return names

    def build_networks(self) -> dict[str, torch.nn.Module]:
        """The task's UNet (official constructor arguments), ParseNet where the task or the
        enhancement needs it, CodeFormer and RetinaFace for the enhancement."""
        if self.task is None:
            raise ValueError("flair: no task: build it for a split with a FLAIR operator "
                             f"({', '.join(TASKS)}) or --set task=...")
        from . import face_nets
        task = TASKS[self.task]
        if task.family == "sr3":
            from .unet_sr3_arch import SR3_CONFIG, UNetSR3
            nets = {"net": UNetSR3(**SR3_CONFIG)}
        else:
            from .unet_new_arch import UNET_NEW_CONFIG, UNetNew
            nets = {"net": UNetNew(**UNET_NEW_CONFIG)}
        if "parsenet" in self.required_weights():
            nets["parsenet"] = face_nets.build_parsenet()
        if self.config.enhance:
            from vfr_bench.methods.codeformer.arch import CodeFormer
            from vfr_bench.methods.codeformer.restorer import NET_ARGS
            nets["codeformer"] = CodeFormer(**NET_ARGS)
            nets["retinaface"] = face_nets.build_retinaface()
        return nets

    def load_checkpoints(self, nets: dict[str, torch.nn.Module]) -> None:
        """Each file strictly: the UNet (bare state dict), ParseNet, RetinaFace, CodeFormer's params_ema."""
        from . import face_nets
        from .checkpoint import load_unet_state_dict
        path = weight_registry.locate(TASKS[self.task].weights)
        load_unet_state_dict(nets["net"], load_checkpoint(path))
        if "parsenet" in nets:
            face_nets.load_parsenet_into(nets["parsenet"])
        if "retinaface" in nets:
            face_nets.load_retinaface_into(nets["retinaface"])
        if "codeformer" in nets:
            nets["codeformer"].load_state_dict(weight_registry.load_entry("codeformer", "params_ema"), strict=True)

    def attach(self, nets: dict[str, torch.nn.Module]) -> None:
        """The UNet and ParseNet as attributes; CodeFormer and RetinaFace wired into the enhancer."""
        from . import face_nets
        from .enhance import FaceEnhancer
        nets = dict(nets)
        cf, rf = nets.pop("codeformer", None), nets.pop("retinaface", None)
        super().attach(nets)
        if cf is not None:
            self.enhancer = FaceEnhancer(cf.eval(), self.parsenet, face_nets.RetinaFaceLandmarks(rf.eval()))

    # --- the method -------------------------------------------------------------------
    def _resolve(self, degradation: str) -> FlairTask:
        """The task this restorer was built for; a clip of another operator is an error."""
        why = self.applicable(degradation) or (None if self.task else "no task")
        if why:
            raise ValueError(f"flair: {why}")
        return TASKS[self.task]

    def condition(self, lq: torch.Tensor, task: FlairTask) -> tuple[torch.Tensor, torch.Tensor]:
        """(condition, rnn_input) [T,3,S,S] in [-1,1] from the LQ [T,3,h,w] in [0,1]."""
        s = self.config.size
        if task.family == "sr3":  # torchvision bicubic resize, clamp
            cond = VF.resize(lq, [s, s], VF.InterpolationMode.BICUBIC).clamp(0, 1)
            cond = cond * 2 - 1  # [0,1] -> [-1,1]
            return cond, cond
        cond = F.interpolate(lq, size=(s, s), mode="area").clamp(0, 1) * 2 - 1  # [0,1] -> [-1,1]
        rnn = VF.resize(lq * 2 - 1, [s, s], VF.InterpolationMode.BICUBIC).clamp(-1, 1)
        return cond, rnn

    def clip_stats(self) -> dict:
        """The frames of the last clip without a detected face (not enhanced), when enhancing."""
        faces = self.last_stats.get("no_face_frames")
        return {} if faces is None else {"no_face_frames": len(faces), "no_face_frame_ids": faces}

    @torch.no_grad()
    def restore(self, lq: torch.Tensor, meta: ClipMeta) -> torch.Tensor:
        """Restore one clip.

        Args:
            lq: [T,3,size/f,size/f] float32 RGB in [0,1], degraded by the split's operator.
            meta: clip information; ``meta.degradation`` selects the task.
        Returns:
            [T,3,H,W] float32 RGB in [0,1], H, W = ``meta.gt_size``.
        """
        task = self._resolve(meta.degradation)
        expect = self.config.size // task.factor
        if tuple(lq.shape[-2:]) != (expect, expect):
            raise ValueError(f"flair {self.task}: LQ frames must be {expect}x{expect} "
                             f"(size {self.config.size} / {task.factor}), got {tuple(lq.shape[-2:])}")
        dtype = next(self.net.parameters()).dtype
        lq = lq.to(dtype)
        cond, rnn = self.condition(lq, task)
        y = lq * 2 - 1  # [0,1] -> [-1,1]
        op = operators.make_operator(self.task) if task.factor == 4 else \
            operators.BicubicSR(task.factor, self.config.size)
        sched = schedules.make_schedule(task.family, w=task.w, rho=task.rho,
                                        noise_level=task.noise_level, zeta=task.zeta,
                                        tau=task.tau, num_steps=self.config.steps)
        idx = torch.arange(lq.shape[0])
        per_window: dict = {}  # window start -> (RFE weights, faces): once per window, not per step
        no_face: set[int] = set()

        def window_inputs(frames: torch.Tensor):
            key = int(frames[0])
            if key not in per_window:
                c = cond[frames]
                vw = 1.0
                if task.family == "sr3" and self.parsenet is not None:
                    vw = rfe_weights(self.parsenet, c, task.rfe_background)
                faces = self.enhancer.locate(c) if self.enhancer is not None else None
                if faces is not None:
                    no_face.update(int(frames[i]) for i in faces.missing)
                per_window[key] = (vw, faces)
            return per_window[key]

        total = 0
        for k in range(self.config.samples):
            gen = torch.Generator().manual_seed(self.config.seed + k)

            def one_window(frames: torch.Tensor, prev_tail):
                c, r, yy = cond[frames], rnn[frames], y[frames]
                n = len(frames)
                vw, faces = window_inputs(frames)

                def eps_fn(x, t):
                    ts = sched.model_time_input(t, n, device=x.device)
                    out = self.net(x, ts, low_res_input=c[None], num_frames=n,
                                   rnn_input=r[None], enable_cross_frames=True, vsrpp_weights=vw)
                    return out[:, :3]

                enhance = None if faces is None else (lambda x0, x_t, t: self.enhancer(x0, faces))
                return sample_window(eps_fn, sched, op, c, yy, gen, prev_tail=prev_tail,
                                     enhance=enhance)

            total = total + run_windows(idx, one_window)
        self.last_stats = {"clip_id": meta.clip_id, "frames": int(lq.shape[0]),
                           "no_face_frames": sorted(no_face) if self.enhancer is not None else None}
        if no_face:
            log.warning("flair %s: no face detected in %d of %d frames (%s); those frames are "
                        "not enhanced", meta.clip_id, len(no_face), lq.shape[0],
                        ", ".join(map(str, sorted(no_face))))
        out = total / self.config.samples
        out = (out.clamp(-1, 1) + 1) / 2  # [-1,1] -> [0,1]
        out = torch.floor(out * 255) / 255  # the official .byte() truncation
        if tuple(out.shape[-2:]) != tuple(meta.gt_size):
            out = F.interpolate(out, size=meta.gt_size, mode="bilinear", align_corners=False)
        return out.float().clamp(0, 1)
