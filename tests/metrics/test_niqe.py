"""NIQE: the per-frame values of a bench run's clip record equal basicsr's calculate_niqe on the
same 8-bit frames (basicsr's tensor2img of the lq-upsample output), with the issue's arguments."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vfr_bench.metrics import build_metric
from vfr_bench.metrics.base import MetricContext


def reference_niqe(clip: torch.Tensor) -> list[float]:
    """basicsr's own path: tensor2img (RGB [0,1] -> 8-bit BGR HWC) then calculate_niqe per frame."""
    from basicsr.metrics import calculate_niqe
    from basicsr.utils import tensor2img
    return [float(calculate_niqe(tensor2img(f, rgb2bgr=True, min_max=(0, 1)), crop_border=0, input_order="HWC",
                                 convert_to="y")) for f in clip]


def test_bench_record_equals_basicsr(sample_split, tmp_path):
    from vfr_bench.bench import BenchOptions, run_bench
    from vfr_bench.datasets.clips import read_frames, to_tensor
    from vfr_bench.datasets.splits import load_split
    from vfr_bench.results import read_records, run_folder
    clip = sample_split.clips[0]
    split = load_split(str(sample_split.root))
    out = tmp_path / "res"
    rc = run_bench(BenchOptions(methods=["lq-upsample"], split=str(sample_split.root), out=out, metrics=["NIQE"],
                                max_frames=2, clips=[clip.id], wandb="off", progress=False, previews=0))
    assert rc == 0
    rec = read_records(run_folder(out, "lq-upsample", split.name, split.manifest_sha256))[clip.id]
    assert rec.status == "ok"
    got = rec.metrics["NIQE"]
    # the same frames, restored as lq-upsample does: bicubic to the GT size, clamped
    lq = to_tensor(read_frames(clip.lq, 2))
    pred = torch.nn.functional.interpolate(lq, size=read_frames(clip.gt, 1).shape[1:3], mode="bicubic",
                                           align_corners=False).clamp(0, 1)
    want = reference_niqe(pred)
    assert len(got["per_frame"]) == 2
    assert np.abs(np.array(got["per_frame"]) - want).max() < 1e-6
    assert got["value"] == pytest.approx(np.mean(want), abs=1e-6)
    assert all(3 < v < 30 for v in want)  # plausible NIQE values of 512 faces


def test_metric_is_gt_free_and_lower_on_sharper_frames(sample_gt, sample_lq_up):
    m = build_metric("NIQE")
    assert m.unavailable_reason() is None and not m.needs_gt and not m.higher_is_better
    sharp = m.score(MetricContext(sample_gt[:2]))
    blurry = m.score(MetricContext(sample_lq_up[:2]))
    assert sharp.per_frame == pytest.approx(reference_niqe(sample_gt[:2]), abs=1e-6)
    assert sharp.value < blurry.value  # the upsampled LQ looks less natural than the GT
