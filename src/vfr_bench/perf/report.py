"""The report: perf.json written atomically, and the plain-text tables printed at the end of a
run (also pasted into the README's Performance section, so their layout stays put)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from vfr_bench.perf.method_rows import PARTS


def write_json(report: dict, path: Path) -> None:
    """``path`` replaced in one step (a temporary file beside it, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(report, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _f(x, fmt="{:.2f}") -> str:
    return "" if x is None else fmt.format(x)


def _rows(report: dict) -> list[str]:
    head = (f"{'name':20s} {'weights':8s} {'frames':>6s} {'fps':>8s} {'e2e fps':>8s} {'peak MB':>8s} "
            + " ".join(f"{p:>8s}" for p in PARTS) + "  note")
    lines = [head, "-" * len(head)]
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
    return lines


def _method_ratios(rt: dict) -> list[str]:
    lines = []
    if "dicface" in rt:
        d = rt["dicface"]
        lines.append(f"  DicFace cached vs naive: x{d['ratio']:.2f} (target >= 4), {d['ours_fps']:.3f} vs "
                     f"{d['naive_fps']:.3f} fps, {d['frames']} frames max_length {d['max_length']} "
                     f"window {d['window']}; naive timed on {d['timed_on']}; max|diff| {d['max_abs_diff']:.2e}, "
                     f"mean {d['mean_abs_diff']:.1e}; weights {d['weights']}"
                     if "ratio" in d else f"  DicFace: {d.get('note')}")
        if "ratio" in d:
            lines.append(f"    {d['ours']}  vs  {d['naive']}")
    for key, label in (("keep", "KEEP batched vs per-frame"), ("vqfr", "VQFR batched vs per-frame")):
        if key in rt:
            d = rt[key]
            lines.append(f"  {label}: x{d['ratio']:.2f}, {d['ours_fps']:.3f} vs {d['naive_fps']:.3f} fps, "
                         f"{d['frames']} frames, max|diff| {d['max_abs_diff']:.2e}, mean {d['mean_abs_diff']:.1e}, "
                         f"{100 * d['share_over_1_level']:.2f}% of values > 1/255 apart; {d['note']}"
                         if "ratio" in d else f"  {label}: {d.get('note')}")
            if "ratio" in d:
                lines.append(f"    {d['ours']}  vs  {d['naive']}")
    return lines


def _other_ratios(report: dict) -> list[str]:
    rt, lines = report["ratios"], []
    if "metrics" in rt:
        d = rt["metrics"]
        ps = d["psnr_ssim"]
        lines.append(f"  PSNR+SSIM batched vs basicsr loop: x{ps['ratio']:.2f} (target >= 5), "
                     f"{ps['ours_fps']:.1f} vs {ps['reference_fps']:.1f} fps on {d['frames']} frames")
        for k in ("PSNR", "SSIM", "LPIPS"):
            if k in d:
                u8 = d.get("reference_uint8", {}).get(k)
                agree = d[k].get("max_abs_diff")
                lines.append(f"    {k}: x{d[k]['ratio']:.2f} ({d[k]['ours_fps']:.1f} vs {d[k]['reference_fps']:.1f} fps)"
                             + (f"; vs basicsr on ready uint8 frames x{u8['ratio']:.2f} ({u8['reference_fps']:.1f} fps)"
                                if u8 else "")
                             + (f"; values agree to {agree:.1e}" if agree is not None else ""))
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
    return lines


def render(report: dict) -> list[str]:
    """The figures as plain-text tables."""
    m = report["machine"]
    lines = [f"vfr-bench perf  {report['date']}  commit {report['git_commit'][:10]}  torch {report['torch']}",
             f"device {report['device']}  {m.get('gpu', m['cpu'])}  {m['cores']} cores, "
             f"{m['torch_threads']} torch threads  split {report['split']['name']}",
             f"command: {report['command']}", ""]
    lines += _rows(report)
    lines += ["", "fps = frames / restore (methods) or scoring (metrics) seconds; e2e = frames / all parts; "
              "seconds per part; peak MB = " + ("CUDA max allocated" if report["device"].startswith("cuda")
                                                else "RSS high-water mark of the row"), ""]
    lines.append("ratios (same run):")
    lines += _method_ratios(report["ratios"])
    lines += _other_ratios(report)
    lines.append(f"wall time {report['wall_seconds']:.0f} s")
    return lines
