"""Metric registry: one row per leaderboard column.

A column name carries its backend where one exists (``IDS[dlib]``), so numbers
from different backends never share a column. Entries are lazy
``"module:Class"`` strings plus constructor arguments; nothing is imported until
a metric is built (STYLE: pyiqa's default-config table, lm-eval's lazy registry).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

from vfr_bench.registry import resolve, unknown


class MetricEntry(NamedTuple):
    """One column: its class (lazy ``"module:Class"``), constructor arguments, the run options
    it takes (``bench --fid-ref`` -> ``ref_stats``) and, for an alias, the column it equals."""
    entry: str
    kwargs: dict[str, Any]
    options: tuple[str, ...] = ()
    alias_of: Optional[str] = None


_M = "vfr_bench.metrics."

METRICS: dict[str, MetricEntry] = {
    "PSNR": MetricEntry(_M + "psnr:PSNR", {}),
    "PSNR[Y]": MetricEntry(_M + "psnr:PSNR", {"y_channel": True}),
    "SSIM": MetricEntry(_M + "ssim:SSIM", {}),
    "SSIM[Y]": MetricEntry(_M + "ssim:SSIM", {"y_channel": True}),
    "LPIPS": MetricEntry(_M + "lpips:LPIPS", {"net": "alex"}),
    "LPIPS[vgg]": MetricEntry(_M + "lpips:LPIPS", {"net": "vgg"}),
    "IDS[arcface]": MetricEntry(_M + "identity:IDS", {"backend": "arcface"}),
    "IDS[dlib]": MetricEntry(_M + "identity:IDS", {"backend": "dlib"}),
    "sigma_IDS[arcface]": MetricEntry(_M + "identity:SigmaIDS", {"backend": "arcface"}),
    "sigma_IDS[dlib]": MetricEntry(_M + "identity:SigmaIDS", {"backend": "dlib"}),
    "AKD[dlib68]": MetricEntry(_M + "akd:AKD", {"backend": "dlib68"}),
    "AKD[awing98]": MetricEntry(_M + "akd:AKD", {"backend": "awing98"}),
    "sigma_AKD[dlib68]": MetricEntry(_M + "akd:SigmaAKD", {"backend": "dlib68"}),
    "sigma_AKD[awing98]": MetricEntry(_M + "akd:SigmaAKD", {"backend": "awing98"}),
    "TLME[dlib68]": MetricEntry(_M + "tlme:TLME", {"backend": "dlib68"}),
    "TLME[awing98]": MetricEntry(_M + "tlme:TLME", {"backend": "awing98"}),
    "E_warp[dis]": MetricEntry(_M + "ewarp:EWarp", {"backend": "dis"}),
    "E_warp[raft]": MetricEntry(_M + "ewarp:EWarp", {"backend": "raft"}),
    "FVD": MetricEntry(_M + "fvd:FVD", {}),
    "FVD[per-clip]": MetricEntry(_M + "fvd:FVDPerClip", {}),
    "FID": MetricEntry(_M + "fid:FID", {}),
    "FID[ref]": MetricEntry(_M + "fid:FID", {"reference": "stats"}, options=("ref_stats",)),
    "KID": MetricEntry(_M + "fid:KID", {}),
    "Deg.[arcface]": MetricEntry(_M + "identity:IdentityAngle", {"backend": "arcface"}),
    "Deg.[dlib]": MetricEntry(_M + "identity:IdentityAngle", {"backend": "dlib"}),
    # no GT needed: the restored clip alone, or against the method input
    "NIQE": MetricEntry(_M + "niqe:NIQE", {}),
    "MUSIQ": MetricEntry(_M + "iqa:PyIQA", {"model": "musiq"}),
    "CLIP-IQA": MetricEntry(_M + "iqa:PyIQA", {"model": "clipiqa"}),
    "MANIQA": MetricEntry(_M + "iqa:PyIQA", {"model": "maniqa"}),
    "flicker[dis]": MetricEntry(_M + "temporal:Flicker", {"backend": "dis"}),
    "flicker[raft]": MetricEntry(_M + "temporal:Flicker", {"backend": "raft"}),
    "jitter[dlib68]": MetricEntry(_M + "temporal:Jitter", {"backend": "dlib68"}),
    "jitter[awing98]": MetricEntry(_M + "temporal:Jitter", {"backend": "awing98"}),
    "ID_drift[dlib]": MetricEntry(_M + "temporal:IDDrift", {"backend": "dlib"}),
    "ID_drift[arcface]": MetricEntry(_M + "temporal:IDDrift", {"backend": "arcface"}),
    "ID_spread[dlib]": MetricEntry(_M + "temporal:IDSpread", {"backend": "dlib"}),
    "ID_spread[arcface]": MetricEntry(_M + "temporal:IDSpread", {"backend": "arcface"}),
    "face_found[dlib]": MetricEntry(_M + "faces:FaceFound", {"detector": "dlib"}),
    "face_found[retinaface]": MetricEntry(_M + "faces:FaceFound", {"detector": "retinaface"}),
    "LQ_IDS[dlib]": MetricEntry(_M + "faces:LQIDS", {"backend": "dlib"}),
    "LQ_IDS[arcface]": MetricEntry(_M + "faces:LQIDS", {"backend": "arcface"}),
}

# VQFR's LMD (TencentARC/VQFR metric_paper/calculate_landmark_distance.py) is AKD[awing98]:
# the same facexlib AWing WFLW model on the whole 512 frame resized to 256 (BGR read, RGB fed,
# /255), the same heatmap decoding and W/64 scaling, and per image the mean over the 98 points
# of the L2 distance in pixels. Same class and arguments, so both columns share one landmark
# pass per clip (MetricContext cache); the column appears under its own name.
METRICS["LMD[awing98]"] = METRICS["AKD[awing98]"]._replace(alias_of="AKD[awing98]")

# The default set for `bench`: every metric here whose backend is available runs; the
# others are listed as unavailable with the missing file (log and leaderboard notes).
# AKD/TLME[awing98] and LPIPS[vgg] are opt-in (`--metrics`): alternative backends of
# columns already in the set.
DEFAULT_METRICS: tuple[str, ...] = (
    "PSNR", "SSIM", "LPIPS", "IDS[arcface]", "IDS[dlib]", "sigma_IDS[arcface]", "sigma_IDS[dlib]",
    "AKD[dlib68]", "sigma_AKD[dlib68]", "TLME[dlib68]", "E_warp[dis]", "E_warp[raft]", "FVD")


# The default set on splits without ground truth (real footage): every GT-free column. Those
# whose weights (or pyiqa) are missing are listed as unavailable with the file, as above; on
# splits with GT they run when asked (`--metrics`), beside the full-reference columns.
DEFAULT_GT_FREE_METRICS: tuple[str, ...] = (
    "NIQE", "MUSIQ", "CLIP-IQA", "MANIQA", "flicker[dis]", "flicker[raft]", "jitter[dlib68]",
    "jitter[awing98]", "ID_drift[dlib]", "ID_drift[arcface]", "ID_spread[dlib]", "ID_spread[arcface]",
    "face_found[dlib]", "face_found[retinaface]", "LQ_IDS[dlib]", "LQ_IDS[arcface]")


def metric_names() -> list[str]:
    return list(METRICS)


def build_metric(name: str, **run_options: Any):
    """Instantiate the metric registered under ``name``; the registry key is its column name
    (written here only: classes compute no names).

    Args:
        run_options: options of the run (``ref_stats=PATH`` from ``bench --fid-ref``); each
            metric receives those its entry lists in ``options`` (when not None), the others
            are ignored, so callers pass the same options to every metric.
    """
    try:
        e = METRICS[name]
    except KeyError:
        raise unknown("metric", name, METRICS) from None
    given = {k: run_options[k] for k in e.options if run_options.get(k) is not None}
    metric = resolve(e.entry)(**e.kwargs, **given)
    metric.name = name
    return metric
