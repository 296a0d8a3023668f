"""The perf harness end to end with tiny settings: lq-upsample plus DicFace on a tiny filled
network (the restorer's face size shrunk to 64), one metric, two frames; the DicFace ratio
machinery on the same tiny network; perf.json carries the provenance fields; filled weights
are labelled and nothing lands in a weights folder, a results tree or a leaderboard.
"""
from __future__ import annotations

import json

import pytest
import torch

from vfr_bench import paths
from vfr_bench.cli import main


def _tiny_dicface():
    """A DicFace at 64x64 (2x2 tokens) with the block layout of the full one, ~0.9M parameters."""
    from vfr_bench.methods.dicface.arch import DicFace
    return DicFace(img_size=64, nf=32, ch_mult=(1, 1, 1, 1, 1, 1), res_blocks=1, attn_resolutions=(2,),
                   codebook_size=64, emb_dim=32, dim_embed=64, n_head=4, n_layers=2)


@pytest.fixture
def tiny_dicface(monkeypatch):
    from vfr_bench.methods.dicface import restorer
    monkeypatch.setattr(restorer.DicFaceRestorer, "build_networks", lambda self: {"net": _tiny_dicface()})
    monkeypatch.setattr(restorer, "FACE_SIZE", 64)


def test_perf_runs_end_to_end_and_writes_provenance(sample_split, tiny_dicface, tmp_path, capsys):
    out = tmp_path / "res" / "perf.json"
    weights_before = sorted(paths.weights_dir().rglob("*")) if paths.weights_dir().exists() else []
    argv = ["perf", "--methods", "lq-upsample,dicface,dicface-color", "--metrics", "PSNR", "--frames", "2",
            "--ratios", "dicface,metrics,decode,amp", "--clips", "1", "--metric-frames", "2",
            "--dicface-frames", "6", "--naive-outputs", "2", "--out", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    rep = json.loads(out.read_text())

    assert rep["command"] == "vfr-bench " + " ".join(argv)
    assert rep["machine"]["cpu"] and rep["machine"]["cores"] >= 1
    assert rep["device"] == "cpu" and rep["torch"] == torch.__version__
    assert rep["git_commit"] and rep["date"][:2] == "20"

    rows = {r["name"]: r for r in rep["rows"]}
    up, dic, psnr = rows["lq-upsample"], rows["dicface"], rows["PSNR"]
    assert up["status"] == "ok" and up["weights"] == "none" and up["frames"] == 2
    assert dic["status"] == "ok", dic.get("note")
    assert dic["weights"] == "filled" and "metric_values" not in dic
    assert set(dic["seconds"]) == {"decode", "preprocess", "restore", "metrics", "write"}
    assert all(v >= 0 for v in dic["seconds"].values()) and dic["fps"] > 0 and dic["peak_rss_mb"] > 0
    assert rows["dicface-color"]["status"] == "same" and "dicface" in rows["dicface-color"]["note"]
    assert psnr["status"] == "ok" and psnr["frames"] == 2 and psnr["fps"] > 0
    assert "filled" in table and "dicface" in table

    d = rep["ratios"]["dicface"]
    assert "status" not in d, d
    assert d["frames"] == 6 and d["naive_outputs_timed"] == 2 and d["note"] == "naive timed on 2 of 6 outputs"
    assert d["max_rel_diff"] < 1e-5 and d["agree_1e-5"] and d["ratio"] > 0 and d["weights"] == "filled"
    met = rep["ratios"]["metrics"]
    assert met["psnr_ssim"]["ratio"] > 0
    assert all(met[k]["ratio"] > 0 and met["reference_uint8"][k]["reference_fps"] > 0 for k in ("PSNR", "SSIM"))
    assert "tensor2img" in met["reference"]
    assert {"png", "pyav", "decord"} <= set(rep["ratios"]["decode"])
    assert rep["ratios"]["decode"]["png"]["frames"] == sum(c.n_frames for c in sample_split.clips)
    assert rep["ratios"]["amp"]["status"] == "skipped"

    # only perf.json is written: no per-clip records, no leaderboard, no weights file
    assert sorted(p.name for p in (tmp_path / "res").rglob("*")) == ["perf.json"]
    after = sorted(paths.weights_dir().rglob("*")) if paths.weights_dir().exists() else []
    assert after == weights_before


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convs: threads only add contention on a shared CPU
    yield
    torch.set_num_threads(threads)


def test_dicface_ratio_compares_the_outputs_it_timed(one_thread):
    """The naive prefix is compared with the same cached outputs: a model whose naive and
    cached paths differ shows up in max_abs_diff."""
    from vfr_bench.methods.dicface.inference import WindowSettings
    from vfr_bench.perf import dicface_ratio
    torch.manual_seed(0)
    model = _tiny_dicface().eval()
    with torch.no_grad():  # non-zero position embeddings so the window's frame order matters
        model.position_emb.normal_()
        model.position_emb_temporal.normal_()
    clip = torch.rand(4, 3, 64, 64) * 2 - 1
    settings = WindowSettings(window="official", max_length=10, mixture="sample")
    res = dicface_ratio(model, clip, settings, naive_outputs=2, device=torch.device("cpu"))
    assert res["compared_outputs"] == 2 and res["max_rel_diff"] < 1e-5
    full = dicface_ratio(model, clip, settings, naive_outputs=None, device=torch.device("cpu"))
    assert full["note"] == "naive timed on all outputs" and full["max_rel_diff"] < 1e-5



def test_dicface_ratio_reports_a_difference(monkeypatch, one_thread):
    from vfr_bench.methods.dicface import inference
    from vfr_bench.methods.dicface.inference import WindowSettings
    from vfr_bench.perf import dicface_ratio
    naive = inference.restore_naive
    monkeypatch.setattr(inference, "restore_naive", lambda *a, **k: naive(*a, **k) + 0.25)
    model = _tiny_dicface().eval()
    res = dicface_ratio(model, torch.rand(6, 3, 64, 64) * 2 - 1, WindowSettings(max_length=10), 1,
                        torch.device("cpu"))
    assert res["max_abs_diff"] == pytest.approx(0.25, abs=1e-5)
