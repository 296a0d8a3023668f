"""The perf harness: end to end with tiny settings (lq-upsample plus a test-registered DicFace
whose network is shrunk to 64 px through the public ``build_networks`` / ``net_size``, no
patching), the ratio as two configurations of one method sharing its networks, and the
comparison catching a naive path that differs. perf.json carries the provenance fields;
filled weights are labelled and nothing lands in a weights folder, a results tree or a
leaderboard.
"""
from __future__ import annotations

import json

import pytest
import torch

from vfr_bench import paths
from vfr_bench.cli import main
from vfr_bench.interface import ClipMeta
from vfr_bench.methods import build_method
from vfr_bench.methods.dicface.restorer import DicFaceRestorer


class TinyDicFace(DicFaceRestorer):
    """DicFace at 64x64 (2x2 tokens) with the block layout of the full one, ~0.9M parameters."""
    net_size = 64

    def build_networks(self):
        from vfr_bench.methods.dicface.arch import DicFace
        return {"net": DicFace(img_size=64, nf=32, ch_mult=(1, 1, 1, 1, 1, 1), res_blocks=1,
                               attn_resolutions=(2,), codebook_size=64, emb_dim=32, dim_embed=64,
                               n_head=4, n_layers=2)}


class SkewedTinyDicFace(TinyDicFace):
    """Its naive path is off by exactly 0.25 everywhere: the ratio's comparison must see it."""

    def restore(self, lq, meta):
        out = super().restore(lq, meta)
        if self.config.path == "naive":
            out = torch.where(out > 0.5, out - 0.25, out + 0.25)
        return out


@pytest.fixture
def tiny_methods(tmp_path, monkeypatch):
    d = tmp_path / "methods"
    d.mkdir()
    for name, cls, extra in (("tiny-dicface", "TinyDicFace", ""),
                             ("tiny-dicface-color", "TinyDicFace", "  weights: dicface-color\n"),
                             ("skewed-dicface", "SkewedTinyDicFace", "")):
        (d / f"{name}.yaml").write_text(f"entry: tests.test_perf:{cls}\ndescription: test stand-in\n"
                                        f"params:\n  max_length: 10\n{extra}")
    monkeypatch.setenv("VFR_BENCH_METHODS", str(d))


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convs: threads only add contention on a shared CPU
    yield
    torch.set_num_threads(threads)


def _fps_ratio(d: dict) -> float:
    return (d["ours_frames"] / d["ours_seconds"]) / (d["naive_frames"] / d["naive_seconds"])


def test_perf_runs_end_to_end_and_writes_provenance(sample_split, tiny_methods, tmp_path, capsys):
    out = tmp_path / "res" / "perf.json"
    weights_before = sorted(paths.weights_dir().rglob("*")) if paths.weights_dir().exists() else []
    argv = ["perf", "--methods", "lq-upsample,tiny-dicface,tiny-dicface-color", "--metrics", "PSNR",
            "--frames", "2", "--ratios", "dicface,metrics,decode,amp", "--clips", "1", "--metric-frames", "2",
            "--dicface-method", "tiny-dicface", "--dicface-frames", "6", "--naive-outputs", "2",
            "--out", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    rep = json.loads(out.read_text())

    assert rep["command"] == "vfr-bench " + " ".join(argv)
    assert rep["machine"]["cpu"] and rep["machine"]["cores"] >= 1
    assert rep["device"] == "cpu" and rep["torch"] == torch.__version__
    assert rep["git_commit"] and rep["date"][:2] == "20"

    rows = {r["name"]: r for r in rep["rows"]}
    up, dic, psnr, lp = rows["lq-upsample"], rows["tiny-dicface"], rows["PSNR"], rows["LPIPS"]
    assert up["status"] == "ok" and up["weights"] == "none" and up["frames"] == 2
    assert dic["status"] == "ok", dic.get("note")
    assert dic["weights"] == "filled" and "metric_values" not in dic and dic["set"] == {"path": "cached"}
    assert set(dic["seconds"]) == {"decode", "preprocess", "restore", "metrics", "write"}
    assert all(v >= 0 for v in dic["seconds"].values()) and dic["fps"] > 0 and dic["peak_rss_mb"] > 0
    assert rows["tiny-dicface-color"]["status"] == "same" and "tiny-dicface" in rows["tiny-dicface-color"]["note"]
    assert psnr["status"] == "ok" and psnr["frames"] == 2 and psnr["fps"] > 0
    assert psnr["timing"].startswith("best of") and int(psnr["timing"].split()[2]) >= 3
    assert lp["status"] == "ok" and lp["weights"] == "filled" and "filled" in lp["note"]  # no AlexNet file here
    assert "filled" in table and "tiny-dicface --set path=cached  vs  tiny-dicface --set path=naive" in table

    d = rep["ratios"]["dicface"]
    assert "status" not in d, d
    assert d["ours_config"]["path"] == "cached" and d["naive_config"]["path"] == "naive"
    assert {k: v for k, v in d["ours_config"].items() if k != "path"} == \
        {k: v for k, v in d["naive_config"].items() if k != "path"}
    assert d["frames"] == d["ours_frames"] == 6 and d["naive_frames"] == d["naive_outputs_timed"] == 2
    assert d["timed_on"] == "a 2-frame clip of the same frames" and d["weights"] == "filled"
    assert d["compared_with"].startswith("the row's output")  # --frames 2: the row restored those frames
    assert d["ratio"] == pytest.approx(_fps_ratio(d), rel=1e-9) and d["ours_fps"] == pytest.approx(6 / d["ours_seconds"])
    assert d["max_abs_diff"] < 1e-4 and d["share_over_1_level"] == 0  # naive and cached paths agree
    met = rep["ratios"]["metrics"]
    assert met["psnr_ssim"]["ratio"] > 0
    assert all(met[k]["ratio"] > 0 and met["reference_uint8"][k]["reference_fps"] > 0 for k in ("PSNR", "SSIM"))
    assert met["LPIPS"]["max_abs_diff"] < 1e-5  # ours and lpips.LPIPS on the same filled trunk
    assert "tensor2img" in met["reference"] and "filled AlexNet trunk" in met["reference"]
    assert {"png", "pyav", "decord"} <= set(rep["ratios"]["decode"])
    assert rep["ratios"]["decode"]["png"]["frames"] == sum(c.n_frames for c in sample_split.clips)
    assert rep["ratios"]["amp"]["status"] == "skipped"

    # only perf.json is written: no per-clip records, no leaderboard, no weights file
    assert sorted(p.name for p in (tmp_path / "res").rglob("*")) == ["perf.json"]
    after = sorted(paths.weights_dir().rglob("*")) if paths.weights_dir().exists() else []
    assert after == weights_before


def _row_run(name: str, frames: int):
    from vfr_bench.perf.method_rows import RowRun, fill_f32
    from vfr_bench.perf.ratios import PAIRS
    r = build_method(name, PAIRS["dicface"].ours).prepare("cpu", fill=fill_f32)
    lq = torch.rand(frames, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return RowRun(r, "filled", lq, ClipMeta("clip", 25.0, (64, 64)), None, 0.0), lq


def test_ratio_shares_the_network_and_compares_every_output(tiny_methods, one_thread):
    from vfr_bench.perf.ratios import PAIRS, dicface_ratio, twin
    run, lq = _row_run("tiny-dicface", 4)
    naive = twin(run.restorer, PAIRS["dicface"].naive, torch.device("cpu"))
    assert naive.net is run.restorer.net and naive.config.path == "naive" and run.restorer.config.path == "cached"
    res = dicface_ratio(PAIRS["dicface"], run, torch.device("cpu"), lq, naive_outputs=None)
    assert res["timed_on"] == "all outputs" and res["compared_outputs"] == res["naive_frames"] == 4
    assert res["max_abs_diff"] < 1e-4 and res["ratio"] == pytest.approx(_fps_ratio(res), rel=1e-9)


def test_ratio_reports_a_naive_path_that_differs(tiny_methods, one_thread):
    from vfr_bench.perf.ratios import PAIRS, dicface_ratio
    run, lq = _row_run("skewed-dicface", 4)
    res = dicface_ratio(PAIRS["dicface"], run, torch.device("cpu"), lq, naive_outputs=2)
    assert res["naive_frames"] == 2 and res["timed_on"] == "a 2-frame clip of the same frames"
    assert res["compared_with"] == "the cached path on the same frames (untimed)"
    assert res["max_abs_diff"] == pytest.approx(0.25, abs=1e-4)
    assert res["mean_abs_diff"] == pytest.approx(0.25, abs=1e-4) and res["share_over_1_level"] == 1.0


@pytest.mark.parametrize("key,method", [("dicface", "dicface"), ("keep", "keep"), ("vqfr", "vqfr-v2"),
                                        ("vqfr", "vqfr-v1")])
def test_every_pair_is_two_valid_configs_of_its_method(key, method):
    """Each ratio's two sides are plain ``--set`` overrides its method accepts (unknown keys fail)."""
    from vfr_bench.perf.ratios import PAIRS, as_set
    pair = PAIRS[key]
    ours, naive = build_method(method, pair.ours), build_method(method, {**pair.ours, **pair.naive})
    assert ours.config != naive.config
    assert {k: getattr(naive.config, k) for k in pair.naive} == dict(pair.naive)
    assert as_set("keep", {"max_batch_frames": None}) == "keep --set max_batch_frames=null"
    assert as_set("dicface", {"path": "naive"}) == "dicface --set path=naive"
