"""The metric registry: every column named as the papers print it (backend in brackets), the
default set, unavailable metrics named with their missing file, lazy imports."""
from __future__ import annotations

import subprocess
import sys

import pytest

from vfr_bench.metrics import DEFAULT_METRICS, METRICS, build_metric

COLUMNS = ["LPIPS", "LPIPS[vgg]", "IDS[arcface]", "IDS[dlib]", "sigma_IDS[arcface]", "sigma_IDS[dlib]",
           "AKD[dlib68]", "AKD[awing98]", "sigma_AKD[dlib68]", "sigma_AKD[awing98]", "TLME[dlib68]",
           "TLME[awing98]", "E_warp[dis]", "E_warp[raft]", "FVD"]
DIRECTION = {"LPIPS": False, "IDS": True, "sigma_IDS": False, "AKD": False, "sigma_AKD": False,
             "TLME": False, "E_warp": False, "FVD": False}


@pytest.mark.parametrize("name", COLUMNS)
def test_every_column_builds_under_its_name(name):
    m = build_metric(name)
    assert m.name == name
    assert m.higher_is_better is DIRECTION[name.split("[")[0]]


def test_default_set_runs_offline_metrics_and_names_missing_files():
    """On a machine without downloaded weights (the test's empty VFR_BENCH_HOME): the offline
    columns are available, the others report the file they miss (as `make bench` lists them)."""
    from vfr_bench.bench import select_metrics
    metrics, unavailable = select_metrics(None)
    ran = [m.name for m in metrics]
    assert ran == ["PSNR", "SSIM", "IDS[dlib]", "sigma_IDS[dlib]", "AKD[dlib68]", "sigma_AKD[dlib68]",
                   "TLME[dlib68]", "E_warp[dis]"]
    files = {"LPIPS": "alexnet-owt-7be5be79.pth", "IDS[arcface]": "recognition_arcface_ir_se50.pth",
             "sigma_IDS[arcface]": "recognition_arcface_ir_se50.pth",
             "E_warp[raft]": "raft_large_C_T_SKHT_V2-ff5fadd5.pth", "FVD": "i3d_torchscript.pt"}
    assert set(unavailable) == set(files)
    for name, f in files.items():
        assert f in unavailable[name]
    assert set(DEFAULT_METRICS) <= set(METRICS)


def test_importing_the_registry_loads_no_backend():
    code = ("import sys, vfr_bench.metrics as m; [m.METRICS[n] for n in m.METRICS]; "
            "print(sorted(k for k in ('dlib', 'lpips', 'cv2', 'facexlib') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
