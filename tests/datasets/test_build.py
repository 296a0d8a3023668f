"""``vfr-bench degrade``: byte-identical rebuilds (also with 2 workers), seeds matter, codec
really compresses, --verify catches a changed byte, bad clips are skipped with reasons."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vfr_bench.cli import main
from vfr_bench.datasets import degradations as D
from vfr_bench.datasets.build import DegradeError, degrade, verify
from vfr_bench.datasets.clips import ClipDataset, read_frames
from vfr_bench.datasets.recipes import Recipe, Step, load_recipe, render, sample_params
from vfr_bench.datasets.splits import manifest_hash, read_split
from tests.datasets.test_recipes import RECIPES

# Recipes without any random draw (fixed operators): a seed cannot change them.
DETERMINISTIC = {"vfhq-color", "celebv-x8", "celebv-x16"}


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under clips/, read from disk (not from the manifest)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "clips").rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(short_src, tmp_path_factory):
    """recipe -> split folder built with the recipe's seed and one worker (cached)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = degrade(name, short_src, tmp_path_factory.mktemp(name) / "out", progress=False).root
        return cache[name]
    return get


@pytest.mark.parametrize("name", RECIPES)
def test_rebuild_with_two_workers_is_byte_identical(name, built, short_src, tmp_path):
    """A second, independent run (here with --workers 2) gives the same bytes as the first."""
    first = built(name)
    pooled = degrade(name, short_src, tmp_path / "pooled", workers=2, progress=False).root
    ref = file_hashes(first)
    assert len(ref) >= 3 * 6 * 2
    assert file_hashes(pooled) == ref
    m = [json.loads((r / "manifest.json").read_text()) for r in (first, pooled)]
    assert manifest_hash(m[0]) == manifest_hash(m[1])
    assert m[1]["created_with"]["workers"] == 2  # recorded, yet not part of the identity


def test_rebuild_twice_in_one_process_is_byte_identical(built, short_src, tmp_path):
    again = degrade("vfhq-heavy", short_src, tmp_path / "again", progress=False).root
    assert file_hashes(again) == file_hashes(built("vfhq-heavy"))


@pytest.mark.parametrize("name", RECIPES)
def test_another_seed_changes_the_lq(name, built, short_src, tmp_path):
    ref = {k: v for k, v in file_hashes(built(name)).items() if "/lq/" in k}
    other = {k: v for k, v in file_hashes(degrade(name, short_src, tmp_path / "s1", seed=1,
                                                   progress=False).root).items() if "/lq/" in k}
    assert ref.keys() == other.keys()
    if name in DETERMINISTIC:
        assert other == ref
    else:
        assert all(other[k] != ref[k] for k in ref), "some LQ frames did not change with the seed"


def test_manifest_records_recipe_seed_version_params(built):
    m = json.loads((built("vfhq-mild") / "manifest.json").read_text())
    assert m["recipe"] == load_recipe("vfhq-mild").as_dict() and m["seed"] == 0
    assert m["created_with"]["vfr_bench"] and m["skipped"] == [] and m["degradation"] == "blind"
    c = m["clips"][0]
    assert [p["op"] for p in c["params"]] == ["blur", "noise", "resize", "noise", "codec"]
    assert c["params"] == sample_params(load_recipe("vfhq-mild"), c["id"], 6)
    assert len(c["files"]) == 12 and c["alignment"]["backend"] == "none"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def test_compression_is_really_applied(short_src):
    """PSNR of LQ against the same degradation without the codec falls as CRF rises."""
    hq = read_frames(sorted(short_src.iterdir())[0])
    base = load_recipe("vfhq-mild")
    pre = Recipe(**{**base.__dict__, "degradations": base.degradations[:-1]})
    params = sample_params(pre, "c", len(hq), seed=0)
    ref, _ = render(pre, params, hq, D.clip_generator(0, "c"))
    psnrs = []
    for crf in (18, 25, 35, 45):
        codec = Step("codec", {**base.degradations[-1].params, "crf": crf})
        r = Recipe(**{**base.__dict__, "degradations": (*base.degradations[:-1], codec)})
        lq, _ = render(r, sample_params(r, "c", len(hq), seed=0), hq, D.clip_generator(0, "c"))
        psnrs.append(_psnr(lq, ref))
    assert all(a > b + 0.5 for a, b in zip(psnrs, psnrs[1:])), psnrs
    assert psnrs[0] < 60  # even CRF 18 changes the frames


def test_verify_detects_a_changed_byte_in_any_lq_file(built, tmp_path, capsys):
    import shutil
    root = tmp_path / "split"
    shutil.copytree(built("celebv-x8"), root)
    assert verify(root) == []
    assert main(["degrade", "--verify", str(root)]) == 0
    lq_files = sorted(root.glob("clips/*/lq/*.png"))
    assert len(lq_files) == 18
    for f in lq_files:
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0x01
        f.write_bytes(bytes(data))
        rel = f.relative_to(root).as_posix()
        assert verify(root) == [f"{rel}: sha256 differs from the manifest"]
        f.write_bytes(bytes(data[: len(data) // 2]) + bytes([data[len(data) // 2] ^ 0x01]) + bytes(data[len(data) // 2 + 1:]))
    assert verify(root) == []
    lq_files[0].unlink()
    assert main(["degrade", "--out", str(root), "--verify"]) == 1
    assert "missing" in capsys.readouterr().out


def test_src_split_name_and_layout_read_by_the_datamodule(sample_split, tmp_path):
    out = tmp_path / "x8"
    assert main(["degrade", "--recipe", "celebv-x8", "--src", "sample", "--out", str(out), "--no-progress"]) == 0
    split = read_split(out)
    assert split.degradation == "x8-bicubic" and len(split.clips) == 3
    assert split.manifest["hq_source"].startswith("split sample")
    item = ClipDataset(split.clips)[0]
    assert item["lq"].shape == (24, 3, 64, 64) and item["gt"].shape == (24, 3, 512, 512)


def test_inpaint_mask_saved_beside_the_clip(built):
    split = read_split(built("vfhq-inpaint"))
    item = ClipDataset(split.clips)[0]
    mask = item["mask"][:, 0] > 0.5
    assert item["mask"].shape == (6, 1, 512, 512) and 0.005 < mask.float().mean() < 0.6
    assert (item["lq"].permute(1, 0, 2, 3)[:, mask] == 1.0).all()  # strokes are white
    assert (item["lq"].permute(1, 0, 2, 3)[:, ~mask] == item["gt"].permute(1, 0, 2, 3)[:, ~mask]).all()


def test_existing_output_needs_overwrite(built, short_src, capsys):
    root = built("celebv-x16")
    with pytest.raises(DegradeError, match="--overwrite"):
        degrade("celebv-x16", short_src, root, progress=False)
    assert main(["degrade", "--recipe", "celebv-x16", "--src", str(short_src), "--out", str(root)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert degrade("celebv-x16", short_src, root, overwrite=True, progress=False).root == root


def test_unknown_recipe_cli_lists_valid(short_src, tmp_path, capsys):
    assert main(["degrade", "--recipe", "vfhq-mid", "--src", str(short_src), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "vfhq-mild" in err and "vfhq-medium" in err


def test_bad_clips_are_skipped_with_reasons(short_src, tmp_path, monkeypatch):
    import shutil
    src = tmp_path / "src"
    shutil.copytree(sorted(short_src.iterdir())[0], src / "good")
    (src / "empty").mkdir()
    (src / "broken").mkdir()
    (src / "broken" / "00000.png").write_bytes(b"not a png")
    shutil.copytree(sorted(short_src.iterdir())[0], src / "mixed")
    import cv2
    cv2.imwrite(str(src / "mixed" / "00001.png"), np.zeros((100, 80, 3), np.uint8))
    (src / "noface").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # unaligned (not 512x512), flat noise: the detector finds nothing
        cv2.imwrite(str(src / "noface" / f"{i:05d}.png"), rng.integers(0, 255, (160, 200, 3), dtype=np.uint8))
    (src / "video.mp4").write_bytes(b"\x00" * 64)
    monkeypatch.setattr("vfr_bench.align.build_detector", lambda kind="auto": _NoFace())
    res = degrade("celebv-x8", src, tmp_path / "out", progress=False)
    reasons = {s["id"]: s["reason"] for s in res.skipped}
    assert [c["id"] for c in res.manifest["clips"]] == ["good"]
    assert set(reasons) == {"empty", "broken", "mixed", "noface", "video"}
    assert "no frames" in reasons["empty"] and "cannot decode" in reasons["broken"]
    assert "mixed sizes" in reasons["mixed"] and reasons["noface"] == "no face found in any frame"
    assert reasons["video"].startswith("unreadable")
    assert verify(res.root) == []


class _NoFace:
    backend = "stub"

    def __call__(self, frame):
        return np.full((5, 2), np.nan)


def test_splits_command_lists_recipes_with_papers_and_built_splits(sample_split, capsys):
    assert main(["splits"]) == 0
    out = capsys.readouterr().out
    for name in RECIPES:
        assert name in out
    assert "KEEP (Feng et al., ECCV 2024), supplementary Table A1: VFHQ-mild" in out
    assert "x8-bicubic" in out and "built splits (" in out and "  sample " in out.split("built splits (")[1]


def test_replace_folder_keeps_the_old_one_until_the_new_one_is_in_place(tmp_path, monkeypatch):
    """A kill between the two renames leaves the old folder (aside), never neither."""
    import os

    from vfr_bench.datasets.splits import replace_folder
    out, new = tmp_path / "split", tmp_path / ".split-new"
    out.mkdir(), new.mkdir()
    (out / "old.txt").write_text("old")
    (new / "new.txt").write_text("new")
    real = os.replace
    calls = []

    def killed_after_first(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies before the new folder moves in
        return real(src, dst)
    monkeypatch.setattr(os, "replace", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        replace_folder(new, out)
    monkeypatch.setattr(os, "replace", real)
    (aside,) = tmp_path.glob(".split.old-*")
    assert (aside / "old.txt").read_text() == "old" and (new / "new.txt").is_file()
    replace_folder(new, out)
    assert (out / "new.txt").read_text() == "new" and not new.exists()
