"""One row per method: the split's first clip through ``restore``, timed per part (decode,
preprocess, restore, metrics, write), with the row's peak memory; AMP variants on CUDA.

A method runs with its official checkpoints when every file is present, else with networks
of the official size given the deterministic fill (``weights: filled``) through the public
``prepare(device, fill=...)``; nothing is written to the weights folder."""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vfr_bench.perf.timing import PeakMemory, Stopwatch, free_memory, timed

PARTS = ("decode", "preprocess", "restore", "metrics", "write")
FLAIR_TASK = "x8-bicubic"


def fill_f32(net: torch.nn.Module) -> None:
    """Load the deterministic conformance fill (float32) into ``net``, strict."""
    from vfr_bench.fill import fill_state_dict
    net.load_state_dict(fill_state_dict(net.state_dict(), torch.float32), strict=True)


def prepare_method(name: str, device: torch.device, overrides: Optional[Mapping[str, Any]] = None,
                   degradation: Optional[str] = None):
    """(restorer on ``device``, weights label): ``official`` when every checkpoint is present,
    ``filled`` (deterministic fill of the networks from ``build_networks``, no file written), or ``none``."""
    from vfr_bench import weights as W
    from vfr_bench.methods import build_method
    r = build_method(name, overrides, degradation or "blind")
    if degradation is not None:
        why = r.applicable(degradation)
        if why:
            raise ValueError(f"{name}: {why}")
    required = r.required_weights()
    if not required:
        return r.prepare(device), "none"
    if all(W.is_present(w) for w in required):
        return r.prepare(device), "official"
    return r.prepare(device, fill=fill_f32), "filled"


def read_clip(clip, frames: Optional[int], device: torch.device, sw: Stopwatch):
    """(lq, gt) [T,3,h,w] float32 in [0,1] on ``device``; PNG reading counts as decode, the
    conversion to float tensors on the device as preprocess."""
    from vfr_bench.datasets.clips import read_frames, to_tensor
    with sw("decode"):
        lq_u8, gt_u8 = read_frames(clip.lq, frames), read_frames(clip.gt, frames)
    with sw("preprocess"):
        lq, gt = to_tensor(lq_u8).to(device), to_tensor(gt_u8).to(device)
    return lq, gt


def write_frames(pred: torch.Tensor, folder: Path) -> None:
    """Restored frames as 8-bit PNGs (the ``write`` part: what a user's run saves)."""
    import cv2
    folder.mkdir(parents=True, exist_ok=True)
    u8 = (pred.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    for i, frame in enumerate(u8):
        cv2.imwrite(str(folder / f"{i:05d}.png"), np.ascontiguousarray(frame[..., ::-1]))


def score_all(metrics, pred: torch.Tensor, gt: torch.Tensor) -> dict:
    from vfr_bench.metrics.base import MetricContext
    ctx = MetricContext(pred, gt)
    return {m.name: m.score(ctx).value for m in metrics}


def psnr_ssim_vs(pred: torch.Tensor, ref: torch.Tensor) -> dict:
    """PSNR/SSIM (dB, [0,1]) of ``pred`` against ``ref`` (e.g. an AMP output vs fp32)."""
    from vfr_bench.metrics.psnr import psnr
    from vfr_bench.metrics.ssim import ssim
    p = psnr(pred.float(), ref.float()).double()
    return {"PSNR": float(p[torch.isfinite(p)].mean()) if torch.isfinite(p).any() else float("inf"),
            "SSIM": float(ssim(pred.float(), ref.float()).double().mean())}


def head(meta, n: int):
    """The ClipMeta of the clip's first ``n`` frames (warm-up calls)."""
    return dataclasses.replace(meta, mask=None if meta.mask is None else meta.mask[:n])


def amp_rows(r, lq: torch.Tensor, meta, pred32: torch.Tensor, device: torch.device) -> list[dict]:
    """bf16/fp16 autocast of ``restore``: frames/s and PSNR/SSIM against the fp32 output."""
    rows = []
    for amp in ("bf16", "fp16"):
        with torch.autocast(device_type=device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[amp]):
            r.restore(lq[:2], head(meta, 2))  # warm-up
            seconds, pred = timed(lambda: r.restore(lq, meta), device)
        rows.append({"amp": amp, "fps": lq.shape[0] / seconds, "vs_fp32": psnr_ssim_vs(pred, pred32)})
    return rows


@dataclass
class RowRun:
    """What a method row hands to its ratio: the prepared restorer, the clip it restored and
    the timed output (the ratio shares the row's networks instead of building them again)."""
    restorer: Any
    weights: str
    lq: torch.Tensor
    meta: Any
    pred: torch.Tensor
    seconds: float


def method_row(name: str, opts, split, device: torch.device, metrics,
               overrides: Optional[Mapping[str, Any]] = None,
               ratio: Optional[Callable[[RowRun], dict]] = None) -> dict:
    """One method (under ``overrides``) on the split's first clip, ``opts.frames`` frames;
    FLAIR on a synthetic x8 clip.

    ``ratio(RowRun)``, when given, runs after the timed parts with the same networks; its
    result (or its failure) is returned under ``row["ratio"]``."""
    from vfr_bench.interface import ClipMeta
    from vfr_bench.methods import build_method
    sw, mem = Stopwatch(device), PeakMemory(device)
    row: dict = {"name": name, "kind": "method"}
    degradation = split.degradation
    probe = build_method(name, overrides)
    why = probe.applicable(degradation)
    flair = why is not None and probe.applicable(FLAIR_TASK) is None
    if why and not flair:
        return {**row, "status": "skipped", "note": why}
    if overrides:
        row["set"] = dict(overrides)
    clip = split.clips[0]
    mem.reset()
    try:
        if flair:  # the split's degradation does not match: a synthetic x8-bicubic clip
            r, weights = prepare_method(name, device, {**(overrides or {}), "task": FLAIR_TASK,
                                                      "steps": opts.flair_steps, "size": opts.flair_size})
            from vfr_bench.datasets.clips import read_frames, to_tensor
            with sw("decode"):
                gt_u8 = read_frames(clip.gt, opts.flair_frames)
            with sw("preprocess"):
                gt = to_tensor(gt_u8).to(device)
                size = r.config.size
                gt = F.interpolate(gt, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
                lq = F.interpolate(gt, scale_factor=1 / 8, mode="bicubic", align_corners=False,
                                   antialias=True).clamp(0, 1)
            row["note"] = (f"synthetic {FLAIR_TASK}: {lq.shape[-1]}px LQ -> {size}px (official 512), "
                           f"{opts.flair_steps} of 100 steps")
            meta = ClipMeta(clip.id, clip.fps, tuple(gt.shape[-2:]), degradation=FLAIR_TASK)
        else:
            r, weights = prepare_method(name, device, overrides)
            lq, gt = read_clip(clip, opts.frames, device, sw)
            meta = ClipMeta(clip.id, clip.fps, tuple(gt.shape[-2:]), degradation=degradation)
            if clip.mask is not None:
                from vfr_bench.datasets.clips import read_frames, to_tensor
                meta.mask = to_tensor(read_frames(clip.mask, opts.frames)[..., :1]).to(device)
        if device.type == "cuda":  # kernels and allocator warm before timing
            r.restore(lq[:2], head(meta, 2))
        with sw("restore"):
            pred = r.restore(lq, meta)
        with sw("metrics"):
            scores = score_all(metrics, pred, gt)
        with tempfile.TemporaryDirectory() as tmp, sw("write"):
            write_frames(pred, Path(tmp))
        n = lq.shape[0]
        row.update(status="ok", weights=weights, frames=n, size=list(pred.shape[-2:]),
                   fps=n / sw.seconds["restore"], fps_end_to_end=n / sum(sw.seconds.values()),
                   seconds={p: sw.seconds[p] for p in PARTS}, metric_names=[m.name for m in metrics],
                   **mem.read())
        if weights == "filled":
            row["metric_values_note"] = "filled weights: metric values are meaningless, not reported"
        else:
            row["metric_values"] = scores
        if "amp" in opts.ratios and device.type == "cuda":
            row["amp"] = amp_rows(r, lq, meta, pred, device)
        if ratio is not None:
            try:
                row["ratio"] = ratio(RowRun(r, weights, lq, meta, pred, sw.seconds["restore"]))
            except Exception as e:
                row["ratio"] = {"status": "failed", "note": f"{type(e).__name__}: {e}"}
        del r, pred
    except Exception as e:  # one method failing (e.g. out of memory) must not end the run
        row.update(status="failed", note=f"{type(e).__name__}: {e}")
    free_memory()
    return row


def same_compute_as(name: str, timed_rows: Sequence[dict]) -> Optional[str]:
    """An earlier timed method with the same entry class and parameters except ``weights``
    (``dicface-color`` vs ``dicface``): the same network and path, so the same speed."""
    from vfr_bench.methods import method_spec
    spec = method_spec(name)
    params = {k: v for k, v in (spec.get("params") or {}).items() if k != "weights"}
    for row in timed_rows:
        other = method_spec(row["name"])
        if row.get("status") == "ok" and other["entry"] == spec["entry"] and \
                {k: v for k, v in (other.get("params") or {}).items() if k != "weights"} == params:
            return row["name"]
    return None
