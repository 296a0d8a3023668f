"""One row per metric on the ``lq-upsample`` output of a few clips, and the metric ratio: our
PSNR/SSIM/LPIPS against the reference loops (basicsr's per-frame numpy evaluation, one
``lpips.LPIPS`` call per frame pair) on the same float clips.

Every row and reference loop is timed with :func:`vfr_bench.perf.timing.best_time` after a
warm-up on a whole clip. ``LPIPS`` without its AlexNet file is timed with a filled trunk
(``LPIPS(trunk="filled")``, labelled), and its reference gets the same fill."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from vfr_bench.perf.timing import PeakMemory, best_time

REFERENCE_METRICS = ("PSNR", "SSIM", "LPIPS")


def metric_clips(split, n_clips: Optional[int], n_frames: Optional[int],
                 device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(pred, gt) per clip, pred = the ``lq-upsample`` baseline (bicubic to the GT size)."""
    from vfr_bench.datasets.clips import read_frames, to_tensor
    out = []
    for c in split.clips[:n_clips]:
        gt = to_tensor(read_frames(c.gt, n_frames)).to(device)
        lq = to_tensor(read_frames(c.lq, n_frames)).to(device)
        pred = F.interpolate(lq, size=gt.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
        out.append((pred, gt))
    return out


def timed_metric(name: str):
    """(metric, weights label, note): the registry's metric, or for ``LPIPS`` without its
    AlexNet file the same metric with a filled trunk (its speed does not depend on the values)."""
    from vfr_bench.metrics import build_metric
    from vfr_bench.metrics.lpips import LPIPS
    m = build_metric(name)
    if name == "LPIPS" and m.unavailable_reason():
        m = LPIPS(net="alex", trunk="filled")
        m.name = name
        return m, "filled", "filled AlexNet trunk"
    return m, "-", ""


def reference_lpips(trunk: str) -> torch.nn.Module:
    """The package's ``lpips.LPIPS(net="alex")`` with the trunk our row uses."""
    from vfr_bench.metrics.lpips import build_lpips, build_lpips_filled
    return build_lpips("alex") if trunk == "official" else build_lpips_filled("alex")


def reference_seconds(clips, device: torch.device, repeats: int, lpips_trunk: Optional[str]) -> dict:
    """Best seconds of the reference loops on ``clips``: ``PSNR``/``SSIM`` as basicsr's validation
    evaluates (``tensor2img`` on the output and the GT, then numpy ``calculate_psnr`` /
    ``calculate_ssim``), ``*_uint8`` the same calls on ready uint8 frames (conversion untimed,
    kept for transparency), ``LPIPS`` one ``lpips.LPIPS`` call per frame pair on ``device``
    (``LPIPS_values``: its per-frame values, to compare with ours)."""
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
    from basicsr.utils import tensor2img
    frames = [(a, b) for p, g in clips for a, b in zip(p.cpu(), g.cpu())]
    u8 = [(tensor2img(a), tensor2img(b)) for a, b in frames]
    out: dict = {}
    for name, fn in (("PSNR", calculate_psnr), ("SSIM", calculate_ssim)):
        out[name] = best_time(lambda: [fn(tensor2img(a), tensor2img(b), crop_border=0) for a, b in frames],
                              repeats).seconds
        out[f"{name}_uint8"] = best_time(lambda: [fn(a, b, crop_border=0) for a, b in u8], repeats).seconds
    if lpips_trunk is not None:
        model = reference_lpips(lpips_trunk).to(device)

        def loop():
            with torch.no_grad():
                return [model(p[i:i + 1] * 2 - 1, g[i:i + 1] * 2 - 1)  # [0,1] -> [-1,1]
                        for p, g in clips for i in range(p.shape[0])]
        out["LPIPS_values"] = [float(v) for v in loop()]  # also the warm-up
        out["LPIPS"] = best_time(loop, repeats).seconds
    return out


def metric_rows(names: Sequence[str], clips, device: torch.device, with_reference: bool,
                repeats: int = 3) -> tuple[list, dict]:
    """Per-metric frames/s on ``clips`` and, when asked, the reference loops for PSNR, SSIM and
    LPIPS; returns (rows, ratios)."""
    from vfr_bench.metrics.base import MetricContext
    n = sum(p.shape[0] for p, _ in clips)
    rows, ours, values, lpips_trunk = [], {}, {}, None
    mem = PeakMemory(device)
    for name in names:
        m, weights, note = timed_metric(name)
        why = m.unavailable_reason()
        if why:
            rows.append({"name": name, "kind": "metric", "status": "unavailable", "note": why.split(";")[0]})
            continue
        if name == "LPIPS":
            lpips_trunk = m.trunk
        mem.reset()
        m.setup(device)
        # warm-up on a whole clip: loads, caches, and kernels planned for the timed shapes
        # the input-referenced columns (LQ_IDS) get the upsampled input, pred itself, as their LQ
        m.score(MetricContext(clips[0][0], clips[0][1], lq=clips[0][0]))
        best = best_time(lambda: [m.score(MetricContext(p, g, lq=p)) for p, g in clips], repeats)
        if name == "LPIPS":
            values[name] = [v for p, g in clips for v in m.score(MetricContext(p, g, lq=p)).per_frame]
        ours[name] = best.seconds
        rows.append({"name": name, "kind": "metric", "status": "ok", "weights": weights, "frames": n,
                     "fps": n / best.seconds, "seconds": {"metrics": best.seconds}, "timing": best.describe(),
                     "note": note, **mem.read()})
        del m
    if not with_reference:
        return rows, {}
    ref = reference_seconds(clips, device, repeats, lpips_trunk)
    for row in rows:
        if row["name"] in ref and row["status"] == "ok":
            row["reference_fps"] = n / ref[row["name"]]
            row["ratio"] = ref[row["name"]] / ours[row["name"]]
    if not {"PSNR", "SSIM"} <= set(ours):
        return rows, {}
    ratio = {
        "frames": n, "target": 5.0,
        "psnr_ssim": {"ours_fps": n / (ours["PSNR"] + ours["SSIM"]),
                      "reference_fps": n / (ref["PSNR"] + ref["SSIM"]),
                      "ratio": (ref["PSNR"] + ref["SSIM"]) / (ours["PSNR"] + ours["SSIM"])},
        **{k: {"ours_fps": n / ours[k], "reference_fps": n / ref[k], "ratio": ref[k] / ours[k]}
           for k in REFERENCE_METRICS if k in ours},
        "reference_uint8": {k: {"reference_fps": n / ref[f"{k}_uint8"], "ratio": ref[f"{k}_uint8"] / ours[k]}
                            for k in ("PSNR", "SSIM")},
        "reference": "basicsr per frame on the same float clips: tensor2img on output and GT, then "
                     "calculate_psnr/calculate_ssim (numpy, CPU; reference_uint8: the calls alone on "
                     "ready uint8 frames); lpips.LPIPS once per frame pair on the same device" +
                     (" (filled AlexNet trunk on both sides)" if lpips_trunk == "filled" else "")}
    if "LPIPS" in values:
        ratio["LPIPS"]["max_abs_diff"] = max(abs(a - b) for a, b in zip(values["LPIPS"], ref["LPIPS_values"]))
    return rows, {"metrics": ratio}
