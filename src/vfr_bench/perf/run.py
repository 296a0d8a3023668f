"""``run_perf``: method rows (each ratio's method under its ``ours`` configuration, the ratio
right after its row on the same networks), metric rows with their reference loops, decode,
then the report."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from vfr_bench.perf.decode import decode_rows
from vfr_bench.perf.method_rows import method_row, same_compute_as
from vfr_bench.perf.metric_rows import REFERENCE_METRICS, metric_clips, metric_rows
from vfr_bench.perf.options import RATIOS, PerfOptions
from vfr_bench.perf.ratios import pair_methods, ratio_hook
from vfr_bench.perf.report import render, write_json
from vfr_bench.perf.timing import free_memory, machine

METHOD_METRICS = ("PSNR", "SSIM")  # scored in each method row's ``metrics`` part


def _print(line: str) -> None:
    print(line, flush=True)


def _method_part(opts: PerfOptions, split, device: torch.device, report: dict, log) -> None:
    from vfr_bench.methods import method_names
    from vfr_bench.metrics import build_metric
    methods = method_names() if opts.methods is None else opts.methods
    row_metrics = [build_metric(n).setup(device) for n in METHOD_METRICS]
    pairs = pair_methods(opts)
    for name in [*methods, *(m for m in pairs if m not in methods)]:  # a ratio's method runs even without its row
        t0 = time.perf_counter()
        pair = pairs.get(name)
        listed = name in methods
        twin = None if pair else same_compute_as(name, [r for r in report["rows"] if r.get("kind") == "method"])
        if twin:
            report["rows"].append({"name": name, "kind": "method", "status": "same",
                                   "note": f"same network, path and settings as {twin} "
                                           f"(only the checkpoint differs): see its row"})
            continue
        row = method_row(name, opts, split, device, row_metrics, overrides=pair.ours if pair else None,
                         ratio=ratio_hook(pair, opts, split, device) if pair else None)
        if pair:
            report["ratios"][pair.key] = row.pop("ratio", {"status": row["status"], "note": row.get("note", "")})
        if listed:
            report["rows"].append(row)
        log(f"[perf] method {name}: {row['status']}" + (f" + ratio {pair.key}" if pair else "")
            + f" ({time.perf_counter() - t0:.0f} s)")


def _check_names(opts: PerfOptions) -> None:
    """Every method and metric name known before any work starts (else one ValueError)."""
    from vfr_bench.methods import method_spec
    from vfr_bench.metrics import METRICS
    from vfr_bench.registry import UnknownNameError, unknown
    try:
        for name in [*(opts.methods or []), *pair_methods(opts)]:
            method_spec(name)
        for name in opts.metrics or []:
            if name not in METRICS:
                raise unknown("metric", name, METRICS)
    except UnknownNameError as e:
        raise ValueError(str(e)) from None


def run_perf(opts: PerfOptions, log: Callable[[str], None] = _print) -> dict:
    """Measure everything ``opts`` asks for, print the tables, write ``opts.out``; return the JSON.

    Raises:
        ValueError: a bad option (unknown ratio, CUDA asked but absent); one line for the CLI.
    """
    from vfr_bench import provenance
    from vfr_bench.datasets.splits import load_split
    from vfr_bench.metrics import metric_names
    device = torch.device(opts.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but torch sees no CUDA device")
    bad = sorted(set(opts.ratios) - set(RATIOS))
    if bad:
        raise ValueError(f"unknown ratio(s) {bad}; choose from {', '.join(RATIOS)}")
    _check_names(opts)
    split = load_split(opts.split)
    report: dict = {
        "command": opts.command, "date": provenance.now(), "git_commit": provenance.git_commit(),
        "torch": torch.__version__, "device": str(device), "machine": machine(device),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "split": {"name": split.name, "clips": len(split.clips)},
        "rows": [], "ratios": {}, "notes": []}
    t_start = time.perf_counter()
    grad = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        _method_part(opts, split, device, report, log)
        names = metric_names() if opts.metrics is None else opts.metrics
        with_ref = "metrics" in opts.ratios
        if names or with_ref:
            t0 = time.perf_counter()
            clips = metric_clips(split, opts.clips, opts.metric_frames, device)
            rows, ratios = metric_rows(list(dict.fromkeys([*names, *(REFERENCE_METRICS if with_ref else ())])),
                                       clips, device, with_ref, opts.metric_repeats)
            report["rows"] += rows
            report["ratios"].update(ratios)
            del clips
            log(f"[perf] metrics: {time.perf_counter() - t0:.0f} s")
        if "decode" in opts.ratios:
            t0 = time.perf_counter()
            try:
                report["ratios"]["decode"] = decode_rows(split)
                log(f"[perf] ratio decode: {time.perf_counter() - t0:.0f} s")
            except Exception as e:
                report["ratios"]["decode"] = {"status": "failed", "note": f"{type(e).__name__}: {e}"}
                free_memory()
        if "amp" in opts.ratios and device.type != "cuda":
            report["ratios"]["amp"] = {"status": "skipped", "note": "AMP compared on CUDA only (--device cuda)"}
    finally:
        torch.set_grad_enabled(grad)
    report["wall_seconds"] = time.perf_counter() - t_start
    write_json(report, opts.out)
    for line in render(report):
        log(line)
    log(f"wrote {opts.out}")
    return report
