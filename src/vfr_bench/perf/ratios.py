"""Method ratios: the same method under two configurations, timed in the same process on the
same input, outputs compared outside the timed blocks.

Each pair is two sets of ``--set`` overrides: ``vfr-bench bench --method keep --set
max_batch_frames=1`` runs the reference path of a ratio as a user would. The reference
restorer is built with ``build_method`` and given the timed row's networks through the public
``attach`` hook (the fill is deterministic, so a second fill would hold the same weights; with
official checkpoints, the same file): one copy in memory, no second fill.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import yaml

from vfr_bench.perf.method_rows import RowRun
from vfr_bench.perf.timing import timed


@dataclass(frozen=True)
class ConfigPair:
    """One ratio: ``ours`` (the path the benchmark runs) vs ``naive`` (the reference path).

    Attributes:
        key: the ratio's key in perf.json (``keep``).
        ours: overrides of the timed method row.
        naive: overrides of the reference restorer (on top of ``ours``).
        label: the ratio's name in the table.
        naive_is: what the reference path does.
        note: how to read the ratio.
    """
    key: str
    ours: Mapping[str, Any]
    naive: Mapping[str, Any]
    label: str
    naive_is: str
    note: str = ""


PAIRS: dict[str, ConfigPair] = {p.key: p for p in (
    ConfigPair("dicface", {"path": "cached"}, {"path": "naive"}, "DicFace cached vs naive",
               "the official script's cost: all max_length frames through encoder, transformer and "
               "generator for every output frame",
               "each output of the naive path costs the same (max_length frames through the network, "
               "whatever the clip's length)"),
    ConfigPair("keep", {"max_batch_frames": None}, {"max_batch_frames": 1}, "KEEP batched vs per-frame",
               "same chunks, LQ encoder and GMFlow called one frame (pair) at a time",
               "the official inference_keep.py also runs each chunk in one forward and recomputes "
               "nothing: ours does the same work, the ratio is batching only"),
    ConfigPair("vqfr", {}, {"batch_frames": 1}, "VQFR batched vs per-frame",
               "one frame per network call (the official demo's loop)",
               "VQFR is per frame: nothing to save but batching"),
)}


def pair_methods(opts) -> dict[str, ConfigPair]:
    """method name -> its pair, for the method ratios ``opts.ratios`` asks for."""
    methods = {"dicface": opts.dicface_method, "keep": "keep", "vqfr": opts.vqfr_method}
    return {methods[k]: p for k, p in PAIRS.items() if k in opts.ratios}


def as_set(name: str, overrides: Mapping[str, Any]) -> str:
    """The overrides as a user types them: ``keep --set max_batch_frames=1``."""
    sets = " ".join(f"--set {k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                    for k, v in overrides.items())
    return f"{name} {sets}".strip()


def twin(restorer, overrides: Mapping[str, Any], device: torch.device):
    """The same method under ``overrides``, holding ``restorer``'s networks (``attach``)."""
    from vfr_bench.methods import build_method
    other = build_method(restorer.method_name, overrides, restorer.degradation)
    other.attach(dict(restorer.named_children()))
    return other.to(device).eval()


def diffs(ours: torch.Tensor, naive: torch.Tensor) -> dict:
    """Max and mean |ours - naive| in [0,1] units, and the share of values that differ by more
    than one 8-bit level (a VQ codebook lookup can flip to another code on float rounding)."""
    d = (ours.float() - naive.float()).abs()
    return {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
            "share_over_1_level": float((d > 1 / 255).float().mean())}


def _result(pair: ConfigPair, r, naive, weights: str, ours_frames: int, t_ours: float,
            naive_frames: int, t_naive: float) -> dict:
    fps_ours, fps_naive = ours_frames / t_ours, naive_frames / t_naive
    return {"method": r.method_name, "weights": weights,
            "ours": as_set(r.method_name, pair.ours), "naive": as_set(r.method_name, {**pair.ours, **pair.naive}),
            "ours_config": dataclasses.asdict(r.config), "naive_config": dataclasses.asdict(naive.config),
            "ours_frames": ours_frames, "ours_seconds": t_ours, "naive_frames": naive_frames,
            "naive_seconds": t_naive, "ours_fps": fps_ours, "naive_fps": fps_naive,
            "ratio": fps_ours / fps_naive, "naive_is": pair.naive_is, "note": pair.note}


def batching_ratio(pair: ConfigPair, run: RowRun, device: torch.device) -> dict:
    """The row's restore (its clip, its time) vs the same clip under ``pair.naive``."""
    r = run.restorer
    naive = twin(r, {**pair.ours, **pair.naive}, device)
    t_naive, out = timed(lambda: naive.restore(run.lq, run.meta), device)
    n = run.lq.shape[0]
    return {**_result(pair, r, naive, run.weights, n, run.seconds, n, t_naive), "frames": n,
            **diffs(run.pred, out)}


def dicface_ratio(pair: ConfigPair, run: RowRun, device: torch.device, lq: torch.Tensor,
                  naive_outputs: int | None) -> dict:
    """The cached path on ``lq`` vs the naive path, timed on its first ``naive_outputs`` frames
    (a clip of that length: each naive output costs ``max_length`` frames through the whole
    network whatever the clip's length, so k outputs of a k-frame clip cost what k outputs of
    the long clip cost). The naive output is compared with the cached path on the same frames
    (the row's output when the row restored exactly them).

    Keep k >= 2 for the comparison: on a 1-frame clip the cached path encodes at batch 1,
    whose float32 kernels round differently from the naive path's batch of ``max_length``,
    and the filled network amplifies that (to ~0.1 at 512 px; float64 agrees exactly).

    Args:
        lq: [T,3,h,w] float32 RGB in [0,1] on ``device``.
        naive_outputs: frames of the naive clip; None: all T.
    """
    r = run.restorer
    naive = twin(r, {**pair.ours, **pair.naive}, device)
    meta = dataclasses.replace(run.meta, mask=None)
    n = lq.shape[0]
    k = n if naive_outputs is None else max(1, min(naive_outputs, n))
    t_ours, ours = timed(lambda: r.restore(lq, meta), device)
    t_naive, out = timed(lambda: naive.restore(lq[:k], meta), device)
    if k == n:
        ref, compared_with = ours, "the timed cached output"
    elif run.pred is not None and torch.equal(run.lq, lq[:k]):
        ref, compared_with = run.pred, "the row's output (the same frames, cached)"
    else:  # untimed
        ref, compared_with = r.restore(lq[:k], meta), "the cached path on the same frames (untimed)"
    s = r.config.settings()
    return {**_result(pair, r, naive, run.weights, n, t_ours, k, t_naive), "frames": n,
            "size": list(ours.shape[-2:]), "window": s.window, "max_length": s.max_length,
            "target": 4.0, "naive_outputs_timed": k, "compared_outputs": k, "compared_with": compared_with,
            "timed_on": "all outputs" if k == n else f"a {k}-frame clip of the same frames",
            **diffs(ref, out)}


def looped_clip(split, frames: int, device: torch.device) -> torch.Tensor:
    """The split's first clip, ``frames`` long (looped when the clip is shorter), on ``device``."""
    from vfr_bench.datasets.clips import read_frames, to_tensor
    lq = to_tensor(read_frames(split.clips[0].lq, frames)).to(device)
    if lq.shape[0] < frames:
        lq = lq.repeat(-(-frames // lq.shape[0]), 1, 1, 1)[:frames]
    return lq


def ratio_hook(pair: ConfigPair, opts, split, device: torch.device):
    """The function a method row calls with its :class:`RowRun` to compute ``pair``'s ratio."""
    if pair.key == "dicface":
        return lambda run: dicface_ratio(pair, run, device, looped_clip(split, opts.dicface_frames, device),
                                         opts.naive_outputs)
    return lambda run: batching_ratio(pair, run, device)
