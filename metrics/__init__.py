"""Metric registry: one row per leaderboard column.

A column name carries its backend where one exists (``IDS[dlib]``), so numbers
from different backends never share a column. Entries are lazy
``"module:Class"`` strings plus constructor arguments; nothing is imported until
a metric is built (STYLE: pyiqa's default-config table, lm-eval's lazy registry).
"""
from __future__ import annotations

from typing import Any, NamedTuple

from vfr_bench.registry import resolve, unknown


class MetricEntry(NamedTuple):
    entry: str
    kwargs: dict[str, Any]


METRICS: dict[str, MetricEntry] = {
    "PSNR": MetricEntry("vfr_bench.metrics.psnr:PSNR", {}),
    "PSNR[Y]": MetricEntry("vfr_bench.metrics.psnr:PSNR", {"y_channel": True}),
    "SSIM": MetricEntry("vfr_bench.metrics.ssim:SSIM", {}),
    "SSIM[Y]": MetricEntry("vfr_bench.metrics.ssim:SSIM", {"y_channel": True}),
}

# The default set for `bench`: every metric here whose backend is available.
DEFAULT_METRICS: tuple[str, ...] = ("PSNR", "SSIM")


def metric_names() -> list[str]:
    return list(METRICS)


def build_metric(name: str):
    """Instantiate the metric registered under ``name`` (its column name)."""
    try:
        e = METRICS[name]
    except KeyError:
        raise unknown("metric", name, METRICS) from None
    metric = resolve(e.entry)(**e.kwargs)
    assert metric.name == name, f"registry name {name} != metric.name {metric.name}"
    return metric
