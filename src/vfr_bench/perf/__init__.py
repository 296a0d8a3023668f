"""Performance harness (``vfr-bench perf``, ``make perf``): frames/s and peak memory per method
and per metric, with the time split into decode, preprocess, restore, metrics and write, and
side-by-side ratios, in one run. Nothing here writes a per-clip result, a leaderboard row or a
weights file, only the JSON named by ``--out``.

Methods whose official checkpoints are absent run with networks of the official size filled by
:func:`vfr_bench.fill.fill_state_dict` through the public ``VideoRestorer.prepare(device,
fill=...)`` (speed does not depend on the values), labelled ``weights: filled``.

Each method ratio is the same method under two configurations (``--set`` overrides), built
with ``build_method`` and sharing one set of networks through ``attach``:

* DicFace ``path=cached`` vs ``path=naive`` (the official script's cost);
* KEEP as configured vs ``max_batch_frames=1`` (one frame / flow pair per encoder call);
* VQFR as configured (``batch_frames`` 4) vs ``batch_frames=1`` (the official demo's loop).

Modules, one job each: ``options`` (what to measure), ``timing`` (clocks, best-of timing,
peak memory, machine), ``method_rows``, ``metric_rows`` (with the basicsr / lpips reference
loops), ``ratios`` (the configuration pairs), ``decode`` (PNG vs mp4 reading), ``report``
(the plain-text table) and ``run`` (all of it, in order).
"""
from vfr_bench.perf.options import RATIOS, PerfOptions
from vfr_bench.perf.run import run_perf

__all__ = ["PerfOptions", "RATIOS", "run_perf"]
