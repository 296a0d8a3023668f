"""The GT-free columns: registered under their names, need no GT, default on splits without GT
(offline ones run here, the others name their missing file), also selectable on splits with GT."""
from __future__ import annotations

import pytest

from vfr_bench.bench import NO_GT, select_metrics
from vfr_bench.metrics import DEFAULT_GT_FREE_METRICS, DEFAULT_METRICS, METRICS, build_metric

HIGHER = {"NIQE": False, "MUSIQ": True, "CLIP-IQA": True, "MANIQA": True, "flicker": False, "jitter": False,
          "ID_drift": False, "ID_spread": False, "face_found": True, "LQ_IDS": True}
OFFLINE = ["NIQE", "flicker[dis]", "jitter[dlib68]", "ID_drift[dlib]", "ID_spread[dlib]", "face_found[dlib]",
           "LQ_IDS[dlib]"]
ARCFACE = "recognition_arcface_ir_se50.pth"
FILES = {"MUSIQ": "musiq_koniq_ckpt-e95806b9.pth", "CLIP-IQA": "RN50.pt", "MANIQA": "ckpt_koniq10k.pt",
         "flicker[raft]": "raft_large_C_T_SKHT_V2-ff5fadd5.pth", "jitter[awing98]": "alignment_WFLW_4HG.pth",
         "ID_drift[arcface]": ARCFACE, "ID_spread[arcface]": ARCFACE, "LQ_IDS[arcface]": ARCFACE,
         "face_found[retinaface]": "detection_Resnet50_Final.pth"}


@pytest.mark.parametrize("name", DEFAULT_GT_FREE_METRICS)
def test_every_gt_free_column_builds_under_its_name(name):
    m = build_metric(name)
    assert m.name == name and name in METRICS
    assert m.needs_gt is False
    assert m.higher_is_better is HIGHER[name.split("[")[0]]


def test_default_set_without_gt_runs_the_offline_columns_and_names_missing_files():
    assert set(DEFAULT_GT_FREE_METRICS) == set(OFFLINE) | set(FILES)
    metrics, unavailable = select_metrics(None, has_gt=False)
    assert sorted(m.name for m in metrics) == sorted(OFFLINE)
    # the default full-reference columns are named as not applicable, the GT-free ones by their file
    assert set(unavailable) == set(FILES) | set(DEFAULT_METRICS)
    assert all(unavailable[n] == NO_GT for n in DEFAULT_METRICS)
    for name, f in FILES.items():
        assert f in unavailable[name], unavailable[name]


def test_gt_free_columns_run_beside_full_reference_ones_when_asked():
    metrics, unavailable = select_metrics(["PSNR", "NIQE", "flicker[dis]"], has_gt=True)
    assert [m.name for m in metrics] == ["PSNR", "NIQE", "flicker[dis]"] and not unavailable
    metrics, unavailable = select_metrics(["PSNR", "NIQE"], has_gt=False)
    assert [m.name for m in metrics] == ["NIQE"] and unavailable == {"PSNR": NO_GT}
