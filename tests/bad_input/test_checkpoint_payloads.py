"""A checkpoint file cannot run code: for every registry entry read with ``torch.load``, a
pickle payload placed under its file name is refused through the public path that loads it
(method setup, metric scoring, detector loader), the payload does not run, and the error
names the file. A new loader or registry entry without a case here fails the coverage tests."""
from __future__ import annotations

import dataclasses
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import REPO
from vfr_bench import weights as W
from vfr_bench.checkpoint import CheckpointError, load_checkpoint

# Registry entries read by torch.jit.load (TorchScript archives, not Python pickles).
# TorchScript archives: I3D (torch.jit.load), OpenAI's CLIP RN50 (clip.load: jit first, then the
# weights-only torch.load of torch >= 2.10); neither unpickles Python objects
TORCHSCRIPT = {"i3d", "clip-rn50"}
PACKAGE_ROOTS = ("src/vfr_bench", "methods", "metrics", "datasets")


class Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do instead."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_payload(path: Path, marker: Path, fmt: str) -> None:
    """``pickle``: a bare protocol-2 pickle (torch's legacy reader path); ``zip``: torch.save's
    archive with the payload beside a real tensor, as a tampered state dict would be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "pickle":
        with open(path, "wb") as f:
            pickle.dump(Payload(marker), f, protocol=2)
    else:
        torch.save({"weight": torch.zeros(2), "payload": Payload(marker)}, path)


# --- the public paths that load each entry --------------------------------------------------
def _method(name: str, **overrides):
    def run():
        from vfr_bench.methods import build_method
        build_method(name, overrides).prepare("cpu")
    return run


def _keep(monkeypatch):
    # KEEP checks its file's sha256 prefix first (which also refuses a payload); skip that
    # check so the payload reaches the loader itself.
    monkeypatch.setattr(W, "verify", lambda name: "")
    _method("keep")()


def _metric_setup(name: str):
    def run():
        from vfr_bench.metrics import build_metric
        build_metric(name).setup(torch.device("cpu"))
    return run


def _retinaface_detector():
    from vfr_bench import align
    align.build_detector("retinaface")


def _flair_face_net(which: str):
    def run():
        from vfr_bench.methods.flair import face_nets
        net = getattr(face_nets, f"build_{which}")()
        getattr(face_nets, f"load_{which}_into")(net)
    return run


# entry -> the public paths that torch.load it (callables; those taking an argument get monkeypatch)
TRIGGERS = {
    "codeformer": [_method("codeformer")],
    "keep": [_keep],
    "vqfr-v1": [_method("vqfr-v1")],
    "vqfr-v2": [_method("vqfr-v2")],
    "dicface-bfr": [_method("dicface")],
    "dicface-color": [_method("dicface-color")],
    "dicface-inpaint": [_method("dicface-inpaint")],
    "flair-x8-bicubic": [_method("flair", task="x8-bicubic", enhance=False)],
    "flair-x16-bicubic": [_method("flair", task="x16-bicubic", enhance=False)],
    "flair-gaussian": [_method("flair", task="x4-gaussian", enhance=False)],
    "flair-jpeg": [_method("flair", task="x4-gaussian-jpeg", enhance=False)],
    "retinaface-resnet50": [_retinaface_detector, _flair_face_net("retinaface")],
    "parsenet": [_flair_face_net("parsenet")],
    "alexnet": [_metric_setup("LPIPS")],
    "vgg16": [_metric_setup("LPIPS[vgg]")],
    "arcface-ir-se50": [_metric_setup("IDS[arcface]")],
    "awing-wflw": [_metric_setup("AKD[awing98]")],
    "raft-large": [_metric_setup("E_warp[raft]")],
    "inception-fid": [_metric_setup("FID"), _metric_setup("KID")],
    "musiq-koniq": [_metric_setup("MUSIQ")],
    "maniqa-koniq": [_metric_setup("MANIQA")],
}
CASES = [(name, i) for name, runs in TRIGGERS.items() for i in range(len(runs))]


def place_all_weights() -> Path:
    """Every weights-folder entry present as a placeholder (setup locates all it needs first)."""
    folder = W.paths.weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for e in W.REGISTRY:
        if not e.package:
            (folder / e.filename).write_bytes(b"placeholder, never loaded in these tests")
    return folder


def test_every_torch_load_entry_has_a_trigger():
    loaded_by_torch_load = {e.name for e in W.REGISTRY if not e.package} - TORCHSCRIPT
    assert set(TRIGGERS) == loaded_by_torch_load


def test_the_package_reads_pickles_only_through_load_checkpoint():
    """A loader added with a bare torch.load (or pickle) would escape the tests above."""
    bare = re.compile(r"torch\.load\s*\(|torch\.serialization\.load|pickle\.loads?\s*\(|weights_only\s*=\s*False")
    offenders = []
    for root in PACKAGE_ROOTS:
        for py in sorted((REPO / root).rglob("*.py")):
            rel = py.relative_to(REPO).as_posix()
            for n, line in enumerate(py.read_text().splitlines(), 1):
                if bare.search(line) and rel != "src/vfr_bench/checkpoint.py":
                    offenders.append(f"{rel}:{n}: {line.strip()}")
                if "jit.load(" in line and not any(f'locate("{t}")' in line for t in TORCHSCRIPT):
                    offenders.append(f"{rel}:{n}: jit.load of an entry not in TORCHSCRIPT")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("fmt", ["pickle", "zip"])
@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_payload_is_refused_and_does_not_run(name, index, fmt, tmp_path, monkeypatch, weight_entry):
    # weights.locate refuses a file whose sha256 disagrees with the registry (the prefix in
    # KEEP-a1a14d46.pth etc.) before any loader runs; waive that so the payload reaches the loader
    for e in W.REGISTRY:
        weight_entry(dataclasses.replace(e, sha256=None, sha256_prefix=None))
    folder = place_all_weights()
    target = folder / W.get(name).filename
    marker = tmp_path / "payload_ran"
    write_payload(target, marker, fmt)
    if fmt == "pickle":  # sanity: the payload is live (an unrestricted unpickler runs it)
        with open(target, "rb") as f:
            pickle.load(f).close()
        assert marker.exists()
        marker.unlink()

    run = TRIGGERS[name][index]
    with pytest.raises(CheckpointError) as err:
        run(monkeypatch) if run is _keep else run()
    assert not marker.exists(), f"loading {target.name} ran its payload"
    msg = str(err.value)
    assert str(target) in msg and "refused" in msg and "Python objects" in msg
    assert "\n" not in msg


def test_zip_payload_is_live_under_an_unrestricted_load(tmp_path):
    """The zip payload of the test above does run when loaded the old way (weights_only=False)."""
    marker = tmp_path / "ran"
    write_payload(tmp_path / "x.pth", marker, "zip")
    out = torch.load(tmp_path / "x.pth", weights_only=False)
    out["payload"].close()
    assert marker.exists()


@pytest.mark.parametrize("entry,column", [("i3d", "FVD"), ("clip-rn50", "CLIP-IQA")])
@pytest.mark.parametrize("fmt", ["pickle", "zip"])
def test_torchscript_entry_does_not_run_a_pickle_payload(entry, column, fmt, tmp_path, weight_entry):
    from vfr_bench.metrics import build_metric
    weight_entry.unhashed(entry)  # let the payload reach the loader
    folder = place_all_weights()
    marker = tmp_path / "payload_ran"
    write_payload(folder / W.get(entry).filename, marker, fmt)
    with pytest.raises(Exception):
        build_metric(column).setup(torch.device("cpu"))
    assert not marker.exists()


# --- the loader itself -------------------------------------------------------------------------
@pytest.mark.parametrize("legacy", [False, True])
def test_plain_state_dicts_load(tmp_path, legacy):
    sd = {"a.weight": torch.arange(6.0).reshape(2, 3), "meta": {"epoch": 3, "name": "x"}}
    torch.save(sd, tmp_path / "ok.pth", _use_new_zipfile_serialization=not legacy)
    got = load_checkpoint(tmp_path / "ok.pth")
    assert torch.equal(got["a.weight"], sd["a.weight"]) and got["meta"] == sd["meta"]


def test_non_tensor_values_are_refused(tmp_path):
    torch.save({"w": torch.zeros(1), "best": np.float64(0.5)}, tmp_path / "np.pth")
    with pytest.raises(CheckpointError, match=r"np\.pth refused: it contains Python objects \(numpy"):
        load_checkpoint(tmp_path / "np.pth")


@pytest.mark.parametrize("damage", ["truncated", "empty", "html"])
def test_damaged_files_say_so(tmp_path, damage):
    p = tmp_path / "codeformer.pth"
    torch.save({"w": torch.zeros(100)}, p)
    data = p.read_bytes()
    p.write_bytes({"truncated": data[: len(data) // 2], "empty": b"",
                   "html": b"<html>404 Not Found</html>"}[damage])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(p)
    msg = str(err.value)
    assert str(p) in msg and "Python objects" not in msg
    assert W.get("codeformer").url in msg  # the registry's source for that file name


def test_cli_refuses_a_payload_in_one_line(tmp_path):
    """``vfr-bench restore --method codeformer`` with a tampered codeformer.pth: exit 2, one line
    naming the file, no traceback, the payload not run, no output written."""
    from tests.test_restore import encode_mp4
    home = tmp_path / "home"
    folder = home / "weights"
    marker = tmp_path / "payload_ran"
    write_payload(folder / "codeformer.pth", marker, "zip")
    video = tmp_path / "in.mp4"
    encode_mp4(video, np.zeros((2, 32, 32, 3), np.uint8))
    out = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONPATH": str(REPO), "VFR_BENCH_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "vfr_bench.cli", "restore", "--method", "codeformer",
                           "--input", str(video), "--output", str(out), "--device", "cpu", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfr-bench: error: ")
    assert f"{folder / 'codeformer.pth'} refused: it contains Python objects" in lines[0]
    assert not marker.exists() and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "in.mp4"]
