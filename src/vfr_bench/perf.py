"""Performance harness (``vfr-bench perf``, ``make perf``): frames/s and peak memory per method
and per metric, with the time split into decode, preprocess, restore, metrics and write, and
side-by-side ratios against the naive or reference paths, in one run.

Methods whose official checkpoints are absent run with networks of the official size whose
weights come from :func:`vfr_bench.fill.fill_state_dict` (speed does not depend on the values).
They are loaded into the network directly, never written to any weights folder, and labelled
``weights: filled``; nothing here writes a per-clip result or a leaderboard row, only the JSON
named by ``--out``.

Ratios (each path timed in the same process on the same input, outputs compared untimed):

* DicFace: ``restore_cached`` vs ``restore_naive`` (the official script's cost: ``max_length``
  frames through the whole network per output frame), see ``methods/dicface/inference.py``.
* KEEP: our chunk forward (LQ encoder and GMFlow batched over the chunk's frames) vs the same
  forward with ``max_batch_frames=1`` (one frame / one flow pair per call). The official
  ``inference_keep.py`` also batches a chunk, so this measures batching, not saved work.
* VQFR: ``batch_frames`` frames per network call vs one frame per call (the official demo).
* Metrics: our batched PSNR/SSIM/LPIPS vs basicsr's per-frame numpy loop and one ``lpips``
  call per frame pair.
* Decode: the split's LQ PNG folders vs the same frames as H.264 mp4 read with PyAV and decord.
* AMP (CUDA only): fp32 vs bf16/fp16 autocast of ``restore``, with the PSNR/SSIM of the
  low-precision output against the fp32 output.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import gc
import json
import os
import platform
import resource
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

PARTS = ("decode", "preprocess", "restore", "metrics", "write")
RATIOS = ("dicface", "keep", "vqfr", "metrics", "decode", "amp")
METHOD_METRICS = ("PSNR", "SSIM")
FLAIR_TASK = "x8-bicubic"


@dataclass
class PerfOptions:
    """What ``vfr-bench perf`` measures.

    Attributes:
        split: split name or folder; method rows read its first clip.
        frames: frames of that clip per method row (and for the KEEP/VQFR ratios).
        methods: method names for the per-method rows (None: every registered method).
        metrics: metric names for the per-metric rows (None: every registered metric).
        ratios: which side-by-side comparisons to run (subset of ``RATIOS``).
        device: ``cpu`` or ``cuda``.
        out: the JSON to write.
        clips: clips of the split for the metric rows (None: all).
        metric_frames: frames per clip for the metric rows (None: whole clips).
        metric_repeats: each metric row and reference loop is timed at least this many times
            after its warm-up, and more until 1 s is spent, and the best time is kept (timeit's
            convention; PSNR on 8 frames takes ~7 ms, one timing is at the mercy of the scheduler).
        dicface_frames: clip length of the DicFace ratio (the issue's 24).
        naive_outputs: output frames of the naive DicFace path that are timed (None: all).
        vqfr_method: which VQFR variant the VQFR ratio uses.
        flair_steps: diffusion steps of the FLAIR row (official: 100).
        flair_frames: frames of the FLAIR row's synthetic x8 clip.
        flair_size: output size of that clip (official 512; LQ = size / 8).
        command: the command line, recorded in the JSON.
    """
    split: str = "sample"
    frames: int = 2
    methods: Optional[list[str]] = None
    metrics: Optional[list[str]] = None
    ratios: Sequence[str] = RATIOS
    device: str = "cpu"
    out: Path = Path("results/perf.json")
    clips: Optional[int] = 1
    metric_frames: Optional[int] = 8
    metric_repeats: int = 3
    dicface_frames: int = 24
    naive_outputs: Optional[int] = 1
    vqfr_method: str = "vqfr-v2"
    flair_steps: int = 2
    flair_frames: int = 2
    flair_size: int = 128
    command: str = ""


# --- measuring ----------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Seconds per named part; synchronises the device around each timed block."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        sync(self.device)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            sync(self.device)
            self.seconds[part] += time.perf_counter() - t0


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """(seconds, result) of ``fn()`` with the device synchronised before and after."""
    sw = Stopwatch(device)
    with sw("t"):
        result = fn()
    return sw.seconds["t"], result


def best_time(fn: Callable[[], object], device: torch.device, repeats: int, min_seconds: float = 1.0,
              max_repeats: int = 200) -> float:
    """The shortest timing of ``fn()`` (``timed``) over at least ``repeats`` calls, and more
    until ``min_seconds`` have been spent (up to ``max_repeats``): timeit's convention, so a
    millisecond-long loop gets enough samples for its minimum to be stable."""
    times, spent = [], 0.0
    while len(times) < max(1, repeats) or (spent < min_seconds and len(times) < max_repeats):
        times.append(timed(fn, device)[0])
        spent += times[-1]
    return min(times)


class PeakMemory:
    """Peak memory of one row: process RSS and, on CUDA, the allocator's max allocated.

    On Linux the RSS high-water mark (``VmHWM``) is reset per row by writing 5 to
    ``/proc/self/clear_refs``; elsewhere the figure is the process peak so far (``ru_maxrss``),
    and ``rss_scope`` says so.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.scope = "row"

    def reset(self) -> None:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.scope = "row"
        except OSError:
            self.scope = "process"
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def read(self) -> dict:
        rss = None
        if self.scope == "row":
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        rss = int(line.split()[1]) / 1024
            except OSError:
                rss = None
        if rss is None:
            self.scope = "process"
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = {"peak_rss_mb": round(rss, 1), "rss_scope": self.scope}
        if self.device.type == "cuda":
            out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return out


def machine(device: torch.device) -> dict:
    """CPU model, cores, torch threads and the accelerator's name."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# --- inputs --------------------------------------------------------------------------------
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


# --- methods -------------------------------------------------------------------------------
def prepare_method(name: str, device: torch.device, overrides: Optional[dict] = None,
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


def fill_f32(net: torch.nn.Module) -> None:
    """Load the deterministic conformance fill (float32) into ``net``, strict."""
    net.load_state_dict(fill_state_dict_f32(net), strict=True)


def fill_state_dict_f32(net: torch.nn.Module) -> dict:
    from vfr_bench.fill import fill_state_dict
    return fill_state_dict(net.state_dict(), torch.float32)


def _free(*objs) -> None:
    del objs
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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


def method_row(name: str, opts: PerfOptions, split, device: torch.device, metrics,
               ratio: Optional[Callable] = None) -> dict:
    """One method on the split's first clip (``opts.frames`` frames); FLAIR on a synthetic x8 clip.

    ``ratio(RowRun, opts, split, device)``, when given, runs after the timed parts with the same
    network; its result is returned under ``row["ratio"]``."""
    from vfr_bench.interface import ClipMeta
    from vfr_bench.methods import build_method
    sw, mem = Stopwatch(device), PeakMemory(device)
    row: dict = {"name": name, "kind": "method"}
    degradation = split.degradation
    probe = build_method(name)
    why = probe.applicable(degradation)
    flair = why is not None and probe.applicable(FLAIR_TASK) is None
    if why and not flair:
        return {**row, "status": "skipped", "note": why}
    clip = split.clips[0]
    mem.reset()
    try:
        if flair:  # the split's degradation does not match: a synthetic x8-bicubic clip
            r, weights = prepare_method(name, device, {"task": FLAIR_TASK, "steps": opts.flair_steps,
                                                      "size": opts.flair_size})
            with sw("decode"):
                from vfr_bench.datasets.clips import read_frames, to_tensor
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
            r, weights = prepare_method(name, device)
            lq, gt = read_clip(clip, opts.frames, device, sw)
            meta = ClipMeta(clip.id, clip.fps, tuple(gt.shape[-2:]), degradation=degradation)
            if clip.mask is not None:
                from vfr_bench.datasets.clips import read_frames, to_tensor
                meta.mask = to_tensor(read_frames(clip.mask, opts.frames)[..., :1]).to(device)
        if device.type == "cuda":  # kernels and allocator warm before timing
            r.restore(lq[:2], _head(meta, 2))
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
                row["ratio"] = ratio(RowRun(r, weights, lq, meta, pred, sw.seconds["restore"]), opts, split, device)
            except Exception as e:
                row["ratio"] = {"status": "failed", "note": f"{type(e).__name__}: {e}"}
        _free(r, pred)
    except Exception as e:  # one method failing (e.g. out of memory) must not end the run
        row.update(status="failed", note=f"{type(e).__name__}: {e}")
        _free()
    return row


def _head(meta, n: int):
    """The ClipMeta of the clip's first ``n`` frames (warm-up calls)."""
    return dataclasses.replace(meta, mask=None if meta.mask is None else meta.mask[:n])


def amp_rows(r, lq: torch.Tensor, meta, pred32: torch.Tensor, device: torch.device) -> list[dict]:
    """bf16/fp16 autocast of ``restore``: frames/s and PSNR/SSIM against the fp32 output."""
    rows = []
    for amp in ("bf16", "fp16"):
        with torch.autocast(device_type=device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[amp]):
            r.restore(lq[:2], _head(meta, 2))  # warm-up
            seconds, pred = timed(lambda: r.restore(lq, meta), device)
        rows.append({"amp": amp, "fps": lq.shape[0] / seconds, "vs_fp32": psnr_ssim_vs(pred, pred32)})
    return rows


# --- metrics -------------------------------------------------------------------------------
def metric_clips(split, n_clips: Optional[int], n_frames: Optional[int], device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(pred, gt) per clip, pred = the ``lq-upsample`` baseline (bicubic to the GT size)."""
    from vfr_bench.datasets.clips import read_frames, to_tensor
    out = []
    for c in split.clips[:n_clips]:
        gt = to_tensor(read_frames(c.gt, n_frames)).to(device)
        lq = to_tensor(read_frames(c.lq, n_frames)).to(device)
        pred = F.interpolate(lq, size=gt.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
        out.append((pred, gt))
    return out


def reference_psnr_ssim(clips, repeats: int = 1) -> dict[str, float]:
    """Seconds of basicsr's per-frame evaluation on the same float clips our metrics get:
    ``tensor2img`` on the output and on the GT, then numpy ``calculate_psnr`` /
    ``calculate_ssim`` (its validation loop). ``PSNR_uint8`` / ``SSIM_uint8``: the metric
    calls alone on ready uint8 frames (the conversion untimed), kept for transparency."""
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
    from basicsr.utils import tensor2img
    frames = [(a, b) for p, g in clips for a, b in zip(p.cpu(), g.cpu())]
    u8 = [(tensor2img(a), tensor2img(b)) for a, b in frames]
    out = {}
    for name, fn in (("PSNR", calculate_psnr), ("SSIM", calculate_ssim)):
        out[name] = best_time(lambda: [fn(tensor2img(a), tensor2img(b), crop_border=0) for a, b in frames],
                              torch.device("cpu"), repeats)
        out[f"{name}_uint8"] = best_time(lambda: [fn(a, b, crop_border=0) for a, b in u8],
                                         torch.device("cpu"), repeats)
    return out


def lpips_model(device: torch.device) -> tuple[torch.nn.Module, str]:
    """Our LPIPS model, or the package's with a random trunk when the AlexNet file is absent."""
    from vfr_bench.metrics.lpips import build_lpips
    from vfr_bench.weights import is_present
    if is_present("alexnet"):
        return build_lpips("alex").to(device), ""
    import lpips
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval().to(device), "random AlexNet trunk"


def metric_rows(names: Sequence[str], clips, device: torch.device, with_reference: bool,
                repeats: int = 1) -> tuple[list, dict]:
    """Per-metric frames/s on ``clips`` and, when asked, the reference loops for PSNR, SSIM and
    LPIPS, each the best of ``repeats`` timings after a warm-up; returns (rows, ratios)."""
    from vfr_bench.metrics import build_metric
    from vfr_bench.metrics.base import MetricContext
    n = sum(p.shape[0] for p, _ in clips)
    ref: dict[str, float] = {}
    lp_model, lp_note = (None, "")
    if with_reference or "LPIPS" in names:
        lp_model, lp_note = lpips_model(device)
    if with_reference:
        ref.update(reference_psnr_ssim(clips, repeats))
        with torch.no_grad():
            lp_model(clips[0][0][:1] * 2 - 1, clips[0][1][:1] * 2 - 1)  # warm-up
            ref["LPIPS"] = best_time(lambda: [lp_model(p[i:i + 1] * 2 - 1, g[i:i + 1] * 2 - 1)  # [0,1] -> [-1,1]
                                              for p, g in clips for i in range(p.shape[0])], device, repeats)
    rows, ours = [], {}
    mem = PeakMemory(device)
    for name in names:
        m = build_metric(name)
        why = m.unavailable_reason()
        note = ""
        if name == "LPIPS" and why and lp_model is not None:
            # speed does not depend on the trunk's values; a copy: setup() makes ours channels-last
            m.model, why, note = copy.deepcopy(lp_model), None, lp_note
        if why:
            rows.append({"name": name, "kind": "metric", "status": "unavailable", "note": why.split(";")[0]})
            continue
        mem.reset()
        m.setup(device)
        # warm-up on a whole clip: loads, caches, and kernels planned for the timed shapes. The
        # input-referenced columns (LQ_IDS) get the upsampled input, pred itself, as their LQ.
        m.score(MetricContext(clips[0][0], clips[0][1], lq=clips[0][0]))
        seconds = best_time(lambda: [m.score(MetricContext(p, g, lq=p)) for p, g in clips], device, repeats)
        ours[name] = seconds
        row = {"name": name, "kind": "metric", "status": "ok", "frames": n, "fps": n / seconds,
               "seconds": {"metrics": seconds}, "note": note, **mem.read()}
        if name in ref:
            row["reference_fps"] = n / ref[name]
            row["ratio"] = ref[name] / seconds
        rows.append(row)
    ratios = {}
    if with_reference and {"PSNR", "SSIM"} <= set(ours):
        ratios["metrics"] = {
            "frames": n, "target": 5.0,
            "psnr_ssim": {"ours_fps": n / (ours["PSNR"] + ours["SSIM"]),
                          "reference_fps": n / (ref["PSNR"] + ref["SSIM"]),
                          "ratio": (ref["PSNR"] + ref["SSIM"]) / (ours["PSNR"] + ours["SSIM"])},
            **{k: {"ours_fps": n / ours[k], "reference_fps": n / ref[k], "ratio": ref[k] / ours[k]}
               for k in ("PSNR", "SSIM", "LPIPS") if k in ours},
            "reference_uint8": {k: {"reference_fps": n / ref[f"{k}_uint8"], "ratio": ref[f"{k}_uint8"] / ours[k]}
                                for k in ("PSNR", "SSIM")},
            "reference": "basicsr per frame on the same float clips: tensor2img on output and GT, then "
                         "calculate_psnr/calculate_ssim (numpy, CPU; reference_uint8: the calls alone on "
                         "ready uint8 frames); lpips.LPIPS once per frame pair on the same device" +
                         (f" ({lp_note})" if lp_note else "")}
    return rows, ratios


# --- side-by-side ratios -----------------------------------------------------------------------
def dicface_ratio(model: torch.nn.Module, clip: torch.Tensor, settings, naive_outputs: Optional[int],
                  device: torch.device, clip_id: str = "perf") -> dict:
    """Cached vs naive (official-cost) DicFace inference on one clip.

    Args:
        model: a ``DicFace`` in eval mode on ``device``.
        clip: [T,3,S,S] float RGB in [-1,1] at the network's size.
        settings: ``WindowSettings`` (window, max_length...).
        naive_outputs: time the naive path on the first N output frames only (its cost per
            output is constant: ``max_length`` frames through the full network); None: all T.
    """
    from vfr_bench.methods.dicface.inference import restore_cached, restore_naive
    n = clip.shape[0]
    k = n if naive_outputs is None else max(1, min(naive_outputs, n))
    t_cached, cached = timed(lambda: restore_cached(model, clip, settings, clip_id=clip_id), device)
    t_naive, naive = timed(lambda: restore_naive(model, clip, settings, clip_id=clip_id,
                                                 outputs=range(k)), device)
    diff = float((cached[:k] - naive).abs().max())
    scale = float(naive.abs().max())
    fps_c, fps_n = n / t_cached, k / t_naive
    return {"frames": n, "size": list(clip.shape[-2:]), "window": settings.window,
            "max_length": settings.max_length, "cached_fps": fps_c, "naive_fps": fps_n,
            "ratio": fps_c / fps_n, "target": 4.0, "naive_outputs_timed": k,
            "note": "naive timed on all outputs" if k == n else f"naive timed on {k} of {n} outputs",
            "max_abs_diff": diff, "max_rel_diff": diff / scale if scale else diff,
            "agree_1e-5": diff <= 1e-5 * max(scale, 1.0), "compared_outputs": k}


@dataclass
class RowRun:
    """What a method row hands to its ratio: the prepared restorer, the clip it restored, and
    the timed output (so the ratio reuses the network instead of building and filling it again)."""
    restorer: object
    weights: str
    lq: torch.Tensor
    meta: object
    pred: torch.Tensor
    seconds: float


def dicface_ratio_from(run: RowRun, opts: PerfOptions, split, device: torch.device) -> dict:
    """The DicFace ratio with the row's network on the split's first clip, ``opts.dicface_frames``
    long (looped when the clip is shorter), at the restorer's face size."""
    from vfr_bench.datasets.clips import read_frames, to_tensor
    from vfr_bench.methods.dicface import restorer as dicface_restorer
    size = dicface_restorer.FACE_SIZE
    r = run.restorer
    lq = to_tensor(read_frames(split.clips[0].lq, opts.dicface_frames)).to(device)
    if lq.shape[0] < opts.dicface_frames:  # a short split clip: loop it to the asked length
        reps = -(-opts.dicface_frames // lq.shape[0])
        lq = lq.repeat(reps, 1, 1, 1)[:opts.dicface_frames]
    x = F.interpolate(lq, size=(size, size), mode="bilinear", align_corners=False) * 2 - 1  # [0,1] -> [-1,1]
    out = dicface_ratio(r.net, x, r.config.settings(), opts.naive_outputs, device, clip_id=split.clips[0].id)
    return {**out, "weights": run.weights}


def _diffs(ours: torch.Tensor, naive: torch.Tensor) -> dict:
    """Max and mean |ours - naive| in [0,1] units, and the share of pixels that differ by more
    than one 8-bit level (a VQ codebook lookup can flip to another code on float rounding)."""
    d = (ours.float() - naive.float()).abs()
    return {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
            "share_over_1_level": float((d > 1 / 255).float().mean())}


def keep_ratio_from(run: RowRun, opts: PerfOptions, split, device: torch.device) -> dict:
    """KEEP as the row ran it (LQ encoder and GMFlow batched over each chunk) vs the same
    ``restore`` with one frame (flow pair) per encoder/GMFlow call."""
    r = run.restorer
    r.net.forward = functools.partial(type(r.net).forward, r.net, max_batch_frames=1)
    try:
        t_naive, naive = timed(lambda: r.restore(run.lq, run.meta), device)
    finally:
        del r.net.forward  # back to the class's forward
    n = run.lq.shape[0]
    return {"frames": n, "max_length": r.config.max_length, "weights": run.weights,
            "ours_fps": n / run.seconds, "naive_fps": n / t_naive, "ratio": t_naive / run.seconds,
            **_diffs(run.pred, naive),
            "naive": "same chunks, LQ encoder and GMFlow called one frame (pair) at a time",
            "note": "the official inference_keep.py also runs each chunk in one forward and "
                    "recomputes nothing: ours does the same work, the ratio is batching only"}


def vqfr_ratio_from(run: RowRun, opts: PerfOptions, split, device: torch.device) -> dict:
    """VQFR as the row ran it (``batch_frames`` per network call) vs one frame per call."""
    r = run.restorer
    batch = r.config.batch_frames
    r.config.batch_frames = 1
    try:
        t_naive, naive = timed(lambda: r.restore(run.lq, run.meta), device)
    finally:
        r.config.batch_frames = batch
    n = run.lq.shape[0]
    return {"method": r.method_name, "frames": n, "batch_frames": batch, "weights": run.weights,
            "ours_fps": n / run.seconds, "naive_fps": n / t_naive, "ratio": t_naive / run.seconds,
            **_diffs(run.pred, naive),
            "naive": "one frame per network call (the official demo's loop)",
            "note": "VQFR is per frame: nothing to save but batching"}


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


RATIO_OF_METHOD = {"dicface": ("dicface", dicface_ratio_from), "keep": ("keep", keep_ratio_from)}


def ratio_hooks(opts: PerfOptions) -> dict[str, tuple[str, Callable]]:
    """method name -> (ratio key, function of the row's :class:`RowRun`) for the asked ratios."""
    hooks = {**RATIO_OF_METHOD, opts.vqfr_method: ("vqfr", vqfr_ratio_from)}
    return {m: h for m, h in hooks.items() if h[0] in opts.ratios}


def decode_rows(split, n_clips: Optional[int], n_frames: Optional[int]) -> dict:
    """frames/s reading the split's LQ clips (all, whole: decoding is cheap): PNG folder (cv2), H.264 mp4 via PyAV and decord.

    The mp4s are written first from the PNG frames (not timed; libx264 CRF 18, yuv420p)."""
    from vfr_bench.datasets.clips import read_frames
    from vfr_bench.video_io import write_mp4
    clips = split.clips[:n_clips]
    out: dict = {"clips": len(clips)}
    with tempfile.TemporaryDirectory() as tmp:
        videos, n = [], 0
        for c in clips:
            frames = read_frames(c.lq, n_frames)
            n += frames.shape[0]
            videos.append(write_mp4(Path(tmp) / f"{c.id}.mp4", frames, c.fps))
        out["frames"] = n
        out["size"] = list(frames.shape[1:3])
        readers: dict[str, Callable[[], object]] = {"png": lambda: [read_frames(c.lq, n_frames) for c in clips]}
        try:
            import av

            def pyav():
                res = []
                for v in videos:
                    with av.open(str(v)) as container:
                        res.append(np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]))
                return res
            readers["pyav"] = pyav
        except ImportError:
            out["pyav_note"] = "PyAV not installed"
        try:
            import decord

            def dec():
                res = []
                for v in videos:
                    vr = decord.VideoReader(str(v), ctx=decord.cpu(0))
                    res.append(vr.get_batch(list(range(len(vr)))).asnumpy())
                return res
            readers["decord"] = dec
        except ImportError:
            out["decord_note"] = "decord not installed"
        for name, fn in readers.items():
            fn()  # warm-up: file cache, codec init
            seconds, res = timed(fn, torch.device("cpu"))
            got = sum(a.shape[0] for a in res)
            out[name] = {"fps": got / seconds, "frames": got}
    return out


# --- the run -------------------------------------------------------------------------------------
def _print(line: str) -> None:
    print(line, flush=True)


def run_perf(opts: PerfOptions, log: Callable[[str], None] = _print) -> dict:
    """Measure everything ``opts`` asks for, print the tables, write ``opts.out``; return the JSON."""
    from vfr_bench import provenance
    from vfr_bench.datasets.splits import load_split
    from vfr_bench.methods import method_names
    from vfr_bench.metrics import build_metric, metric_names
    device = torch.device(opts.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but torch sees no CUDA device")
    bad = sorted(set(opts.ratios) - set(RATIOS))
    if bad:
        raise ValueError(f"unknown ratio(s) {bad}; choose from {', '.join(RATIOS)}")
    split = load_split(opts.split)
    report: dict = {
        "command": opts.command, "date": provenance.now(), "git_commit": provenance.git_commit(),
        "torch": torch.__version__, "device": str(device), "machine": machine(device),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "split": {"name": split.name, "clips": len(split.clips)},
        "rows": [], "ratios": {}, "notes": []}
    t_start = time.perf_counter()
    torch.set_grad_enabled(False)
    try:
        methods = method_names() if opts.methods is None else opts.methods
        row_metrics = [build_metric(n) for n in METHOD_METRICS]
        for m in row_metrics:
            m.setup(device)
        hooks = ratio_hooks(opts)
        for name in methods:
            t0 = time.perf_counter()
            key, hook = hooks.pop(name, (None, None))
            twin = None if hook else same_compute_as(name, [r for r in report["rows"] if r.get("kind") == "method"])
            if twin:
                report["rows"].append({"name": name, "kind": "method", "status": "same",
                                       "note": f"same network, path and settings as {twin} "
                                               f"(only the checkpoint differs): see its row"})
                continue
            row = method_row(name, opts, split, device, row_metrics, ratio=hook)
            if "ratio" in row:
                report["ratios"][key] = row.pop("ratio")
            report["rows"].append(row)
            log(f"[perf] method {name}: {row['status']} ({time.perf_counter() - t0:.0f} s)")
        for name, (key, hook) in hooks.items():  # a ratio whose method had no row: time it alone
            t0 = time.perf_counter()
            row = method_row(name, opts, split, device, row_metrics, ratio=hook)
            report["ratios"][key] = row.get("ratio", {"status": row["status"], "note": row.get("note", "")})
            log(f"[perf] ratio {key}: {time.perf_counter() - t0:.0f} s")
        names = metric_names() if opts.metrics is None else opts.metrics
        if names or "metrics" in opts.ratios:
            t0 = time.perf_counter()
            clips = metric_clips(split, opts.clips, opts.metric_frames, device)
            with_ref = "metrics" in opts.ratios
            rows, ratios = metric_rows(list(dict.fromkeys([*names, *(["PSNR", "SSIM", "LPIPS"] if with_ref else [])])),
                                       clips, device, with_ref, opts.metric_repeats)
            report["rows"] += rows
            report["ratios"].update(ratios)
            del clips
            log(f"[perf] metrics: {time.perf_counter() - t0:.0f} s")
        for key, fn in (("decode", lambda: decode_rows(split, None, None)),):
            if key in opts.ratios:
                t0 = time.perf_counter()
                try:
                    report["ratios"][key] = fn()
                    log(f"[perf] ratio {key}: {time.perf_counter() - t0:.0f} s")
                except Exception as e:
                    report["ratios"][key] = {"status": "failed", "note": f"{type(e).__name__}: {e}"}
                    _free()
        if "amp" in opts.ratios and device.type != "cuda":
            report["ratios"]["amp"] = {"status": "skipped", "note": "AMP compared on CUDA only (--device cuda)"}
    finally:
        torch.set_grad_enabled(True)
    report["wall_seconds"] = time.perf_counter() - t_start
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    for line in render(report):
        log(line)
    log(f"wrote {opts.out}")
    return report


# --- the table ------------------------------------------------------------------------------------
def _f(x, fmt="{:.2f}") -> str:
    return "" if x is None else fmt.format(x)


def render(report: dict) -> list[str]:
    """The figures as plain-text tables (also pasted into the README)."""
    m = report["machine"]
    lines = [f"vfr-bench perf  {report['date']}  commit {report['git_commit'][:10]}  torch {report['torch']}",
             f"device {report['device']}  {m.get('gpu', m['cpu'])}  {m['cores']} cores, "
             f"{m['torch_threads']} torch threads  split {report['split']['name']}",
             f"command: {report['command']}", ""]
    head = (f"{'name':20s} {'weights':8s} {'frames':>6s} {'fps':>8s} {'e2e fps':>8s} {'peak MB':>8s} "
            + " ".join(f"{p:>8s}" for p in PARTS) + "  note")
    lines += [head, "-" * len(head)]
    for r in report["rows"]:
        mem = r.get("cuda_max_allocated_mb", r.get("peak_rss_mb"))
        if r.get("status") != "ok":
            lines.append(f"{r['name']:20s} {r.get('status', ''):8s} {'':>6s} {'':>8s} {'':>8s} {'':>8s} "
                         + " ".join(f"{'':>8s}" for _ in PARTS) + f"  {r.get('note', '')}")
            continue
        sec = r.get("seconds", {})
        note = r.get("note", "")
        if "reference_fps" in r:
            note = f"reference {r['reference_fps']:.1f} fps, x{r['ratio']:.1f}" + (f"; {note}" if note else "")
        lines.append(f"{r['name']:20s} {r.get('weights', '-'):8s} {r['frames']:6d} {r['fps']:8.2f} "
                     f"{_f(r.get('fps_end_to_end')):>8s} {_f(mem, '{:.0f}'):>8s} "
                     + " ".join(f"{_f(sec.get(p)):>8s}" for p in PARTS) + f"  {note}")
    lines += ["", "fps = frames / restore (methods) or scoring (metrics) seconds; e2e = frames / all parts; "
              "seconds per part; peak MB = " + ("CUDA max allocated" if report["device"].startswith("cuda")
                                                else "RSS high-water mark of the row"), ""]
    rt = report["ratios"]
    lines.append("ratios (same run):")
    if "dicface" in rt:
        d = rt["dicface"]
        lines.append(f"  DicFace cached vs naive: x{d['ratio']:.2f} (target >= 4), {d['cached_fps']:.3f} vs "
                     f"{d['naive_fps']:.3f} fps, {d['frames']} frames max_length {d['max_length']} "
                     f"window {d['window']}; {d['note']}; max|diff| {d['max_abs_diff']:.2e} ({d['max_rel_diff']:.1e} of max|out|); weights {d['weights']}"
                     if "ratio" in d else f"  DicFace: {d.get('note')}")
    for key, label in (("keep", "KEEP batched vs per-frame"), ("vqfr", "VQFR batched vs per-frame")):
        if key in rt:
            d = rt[key]
            lines.append(f"  {label}: x{d['ratio']:.2f}, {d['ours_fps']:.3f} vs {d['naive_fps']:.3f} fps, "
                         f"{d['frames']} frames, max|diff| {d['max_abs_diff']:.2e}, mean {d['mean_abs_diff']:.1e}, "
                         f"{100 * d['share_over_1_level']:.2f}% of values > 1/255 apart; {d['note']}"
                         if "ratio" in d else f"  {label}: {d.get('note')}")
    if "metrics" in rt:
        d = rt["metrics"]
        ps = d["psnr_ssim"]
        lines.append(f"  PSNR+SSIM batched vs basicsr loop: x{ps['ratio']:.2f} (target >= 5), "
                     f"{ps['ours_fps']:.1f} vs {ps['reference_fps']:.1f} fps on {d['frames']} frames")
        for k in ("PSNR", "SSIM", "LPIPS"):
            if k in d:
                u8 = d.get("reference_uint8", {}).get(k)
                lines.append(f"    {k}: x{d[k]['ratio']:.2f} ({d[k]['ours_fps']:.1f} vs {d[k]['reference_fps']:.1f} fps)"
                             + (f"; vs basicsr on ready uint8 frames x{u8['ratio']:.2f} ({u8['reference_fps']:.1f} fps)"
                                if u8 else ""))
    if "decode" in rt:
        d = rt["decode"]
        if "png" in d:
            lines.append(f"  decode {d['frames']} LQ frames {d['size'][0]}x{d['size'][1]}: " + ", ".join(
                f"{k} {d[k]['fps']:.0f} fps" for k in ("png", "pyav", "decord") if k in d))
        else:
            lines.append(f"  decode: {d.get('note')}")
    if "amp" in rt:
        lines.append(f"  AMP: {rt['amp'].get('note', '')}")
    amp_lines = [f"    {r['name']} {a['amp']}: {a['fps']:.2f} fps (fp32 {r['fps']:.2f}), vs fp32 PSNR "
                 f"{a['vs_fp32']['PSNR']:.2f} dB SSIM {a['vs_fp32']['SSIM']:.4f}"
                 for r in report["rows"] for a in r.get("amp", [])]
    if amp_lines:
        lines += ["  AMP (autocast of restore):"] + amp_lines
    lines.append(f"wall time {report['wall_seconds']:.0f} s")
    return lines
