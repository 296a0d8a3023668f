"""The metric registry: every column named as the papers print it (backend in brackets), the
default set, unavailable metrics named with their missing file, lazy imports."""
from __future__ import annotations

import subprocess
import sys

import pytest

from vfr_bench.metrics import DEFAULT_METRICS, METRICS, build_metric

COLUMNS = ["LPIPS", "LPIPS[vgg]", "IDS[arcface]", "IDS[dlib]", "sigma_IDS[arcface]", "sigma_IDS[dlib]",
           "AKD[dlib68]", "AKD[awing98]", "sigma_AKD[dlib68]", "sigma_AKD[awing98]", "TLME[dlib68]",
           "TLME[awing98]", "E_warp[dis]", "E_warp[raft]", "FVD", "FVD[per-clip]", "FID", "FID[ref]", "KID",
           "Deg.[arcface]", "Deg.[dlib]", "LMD[awing98]"]
DIRECTION = {"LPIPS": False, "IDS": True, "sigma_IDS": False, "AKD": False, "sigma_AKD": False,
             "TLME": False, "E_warp": False, "FVD": False, "FID": False, "KID": False, "Deg.": False, "LMD": False}


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


def test_lmd_is_an_alias_of_akd_awing98_under_its_own_name():
    """VQFR's LMD is AKD[awing98] (same model, input, decoding and per-image mean): same class and
    arguments, so both columns share one landmark pass; the column keeps its own name."""
    from vfr_bench.metrics.akd import AKD
    lmd, akd = build_metric("LMD[awing98]"), build_metric("AKD[awing98]")
    assert METRICS["LMD[awing98]"].alias_of == "AKD[awing98]"
    assert type(lmd) is AKD and lmd.name == "LMD[awing98]"
    assert (lmd.backend, lmd.box, lmd.weights) == (akd.backend, akd.box, akd.weights)
    assert [n for n, e in METRICS.items() if e.alias_of] == ["LMD[awing98]"]


def test_run_options_reach_only_the_metrics_that_take_them(tmp_path):
    assert build_metric("FID[ref]", ref_stats=tmp_path / "s.npz").ref_stats == tmp_path / "s.npz"
    assert build_metric("FID", ref_stats=tmp_path / "s.npz").ref_stats is None
    assert build_metric("PSNR", ref_stats=tmp_path / "s.npz").name == "PSNR"


def test_metrics_command_lists_new_columns_with_backend_and_alias():
    out = subprocess.run([sys.executable, "-m", "vfr_bench.cli", "metrics"], capture_output=True, text=True,
                         check=True).stdout
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    for name, backend in [("FID", "inception-fid"), ("FID[ref]", "inception-fid"), ("KID", "inception-fid"),
                          ("Deg.[arcface]", "arcface-ir-se50"), ("Deg.[dlib]", "dlib-resnet"),
                          ("LMD[awing98]", "awing-wflw"), ("FVD[per-clip]", "i3d")]:
        assert backend in rows[name], rows[name]
    assert "alias of AKD[awing98]" in rows["LMD[awing98]"]
    assert "--fid-ref" in rows["FID[ref]"]
