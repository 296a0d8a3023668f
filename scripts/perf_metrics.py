"""Frames per second of every metric on the sample split, next to the usual per-frame reference.

Usage: ``python scripts/perf_metrics.py [--device cpu|cuda] [--clips N]`` (``make perf-metrics``).

The restored clip is the ``lq-upsample`` baseline (bicubic x4). Each metric scores every clip
with a fresh :class:`MetricContext`, so its time includes the features it needs (landmarks,
embeddings, flow); the ``all (shared)`` row scores all available metrics on one context, as
the runner does. References: basicsr's per-frame numpy ``calculate_psnr`` /
``calculate_ssim`` loop on uint8 HWC frames, and one ``lpips.LPIPS`` call per frame pair.
Where a metric's weights are absent it is listed as unavailable; LPIPS is then timed with a
random trunk on both sides (speed does not depend on the weight values).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def load_clips(n_clips: int, device: torch.device):
    from vfr_bench.datasets.clips import read_frames, to_tensor
    from vfr_bench.datasets.splits import load_split
    split = load_split("sample")
    clips = []
    for c in split.clips[:n_clips]:
        gt = to_tensor(read_frames(c.gt)).to(device)
        lq = to_tensor(read_frames(c.lq)).to(device)
        pred = torch.nn.functional.interpolate(lq, size=gt.shape[-2:], mode="bicubic",
                                               align_corners=False).clamp(0, 1)
        clips.append((pred, gt))
    return clips


def reference_psnr_ssim(clips) -> dict[str, float]:
    """basicsr's per-frame numpy loop on uint8 HWC images; returns seconds per metric."""
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
    u8 = [((p.cpu().numpy().transpose(0, 2, 3, 1) * 255).round().astype(np.uint8),
           (g.cpu().numpy().transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)) for p, g in clips]
    out = {}
    for name, fn in (("PSNR", calculate_psnr), ("SSIM", calculate_ssim)):
        t0 = time.perf_counter()
        for p, g in u8:
            for a, b in zip(p, g):
                fn(a, b, crop_border=0)
        out[name] = time.perf_counter() - t0
    return out


def lpips_model(device):
    """Our LPIPS model, or the package's with a random trunk when the AlexNet file is absent."""
    from vfr_bench.metrics.lpips import build_lpips
    from vfr_bench.weights import is_present
    if is_present("alexnet"):
        return build_lpips("alex").to(device), ""
    import lpips
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval().to(device), " (random trunk)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--clips", type=int, default=3)
    args = ap.parse_args()
    device = torch.device(args.device)
    from vfr_bench.metrics import METRICS, build_metric
    from vfr_bench.metrics.base import MetricContext

    clips = load_clips(args.clips, device)
    n = sum(p.shape[0] for p, _ in clips)
    print(f"sample split: {len(clips)} clips, {n} frames of {tuple(clips[0][1].shape[-2:])}, "
          f"pred = lq-upsample, device {device}, torch threads {torch.get_num_threads()}")
    ref = reference_psnr_ssim(clips)

    model, note = lpips_model(device)
    with torch.no_grad():
        t_ref_lpips = timed(lambda: [model(p[i:i + 1] * 2 - 1, g[i:i + 1] * 2 - 1)
                                     for p, g in clips for i in range(p.shape[0])], device)
    ref["LPIPS"] = t_ref_lpips

    w = max(len(k) for k in METRICS) + len(note) + 2
    print(f"\n{'metric'.ljust(w)}  {'ours fps':>9}  {'reference fps':>13}  note", flush=True)

    def row(name, ours=None, theirs=None, why=""):
        o = f"{ours:9.1f}" if ours else " " * 9
        r = f"{theirs:13.1f}" if theirs else " " * 13
        print(f"{name.ljust(w)}  {o}  {r}  {why}", flush=True)

    available = []
    for name in METRICS:
        m = build_metric(name)
        why = m.unavailable_reason()
        name_shown = name
        if name == "LPIPS" and why:
            m.model, why, name_shown = model, None, name + note
        if why:
            row(name, why="unavailable: " + why.split(";")[0])
            continue
        if name != "FVD":
            available.append(m)
        m.setup(device)
        m.score(MetricContext(clips[0][0][:2], clips[0][1][:2]))  # warm-up (loads, caches)
        t = timed(lambda: [m.score(MetricContext(p, g)) for p, g in clips], device)
        row(name_shown, n / t, n / ref[name] if name in ref else None)
    t_all = timed(lambda: [[m.score(ctx) for m in available]
                           for ctx in (MetricContext(p, g) for p, g in clips)], device)
    row(f"all {len(available)} available, shared features", n / t_all)
    print("\nreference: basicsr calculate_psnr/calculate_ssim per uint8 frame (numpy, CPU); "
          "lpips.LPIPS called once per frame pair on the same device")


if __name__ == "__main__":
    main()
