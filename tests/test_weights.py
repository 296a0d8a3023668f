"""Weights registry: listing, the missing-file message, and fetch with resume and hash check
against an HTTP server started on 127.0.0.1 by the test."""
from __future__ import annotations

import hashlib
import http.server
import os
import threading

import pytest

from vfr_bench import weights as W
from vfr_bench.cli import main

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    ranges_seen: list = []

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        type(self).ranges_seen.append(rng)
        body = PAYLOAD[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    _RangeHandler.ranges_seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"
    httpd.shutdown()


@pytest.fixture
def entry(monkeypatch, tmp_path, weight_entry):
    monkeypatch.setenv("VFR_BENCH_HOME", str(tmp_path))
    e = W.WeightFile("test-net", "test-net.pth", "http://127.0.0.1:9/none", "test only",
                     sha256=hashlib.sha256(PAYLOAD).hexdigest())
    weight_entry(e)
    return e


def test_missing_message_names_file_folder_and_url(entry, tmp_path):
    with pytest.raises(W.MissingWeightsError) as ei:
        W.locate("test-net")
    msg = str(ei.value)
    assert "test-net.pth" in msg and str(tmp_path / "weights") in msg and entry.url in msg


def test_fetch_resumes_partial_file_and_checks_hash(entry, server, tmp_path):
    dest = tmp_path / "weights" / "test-net.pth"
    dest.parent.mkdir(parents=True)
    dest.with_name("test-net.pth.part").write_bytes(PAYLOAD[:300_000])
    assert W.fetch("test-net", url=server) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _RangeHandler.ranges_seen == ["bytes=300000-"]
    assert not dest.with_name("test-net.pth.part").exists()
    assert W.verify("test-net") == entry.sha256


def test_fetch_rejects_wrong_hash(monkeypatch, entry, server, tmp_path, weight_entry):
    weight_entry(W.WeightFile("test-net", "test-net.pth", server, "x",
                                                             sha256="0" * 64))
    with pytest.raises(W.WeightsMismatchError):
        W.fetch("test-net")
    assert not any((tmp_path / "weights").iterdir()), "nothing partial or unverified is left"


def test_fetch_offline_fails_clearly(entry, tmp_path):
    with pytest.raises(ConnectionError, match="offline|cannot download"):
        W.fetch("test-net")  # port 9 on loopback: nothing listens
    assert not (tmp_path / "weights" / "test-net.pth").exists()


def test_sha_prefix_checked(monkeypatch, tmp_path, weight_entry):
    monkeypatch.setenv("VFR_BENCH_HOME", str(tmp_path))
    e = W.WeightFile("pref", "pref-deadbeef.pth", "u", "x", sha256_prefix="deadbeef")
    weight_entry(e)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / e.filename).write_bytes(b"not the right bytes")
    with pytest.raises(W.WeightsMismatchError, match="deadbeef"):
        W.verify("pref")


def test_weights_list_shows_every_entry_with_state(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("VFR_BENCH_HOME", str(tmp_path))
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "codeformer.pth").write_bytes(b"x")
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for e in W.REGISTRY:
        assert e.filename in out and e.license in out
    line = next(ln for ln in out.splitlines() if ln.startswith("codeformer "))
    assert "present" in line
    assert "missing" in next(ln for ln in out.splitlines() if ln.startswith("keep "))
    assert "present" in next(ln for ln in out.splitlines() if ln.startswith("dlib-shape68 "))


def test_registry_names_are_unique_and_files_distinct():
    assert len({e.name for e in W.REGISTRY}) == len(W.REGISTRY)
    assert len({e.filename for e in W.REGISTRY}) == len(W.REGISTRY)
    assert os.sep not in "".join(e.filename for e in W.REGISTRY)


# --- weights.lock, locate's checks, verify ---------------------------------------------------
def _sub_env():
    from tests.helpers import REPO
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _cli(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "vfr_bench.cli", *args], capture_output=True,
                          text=True, env=_sub_env(), timeout=120)


def _bump_mtime(path):
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_fetch_records_lock_and_locate_refuses_a_file_that_changed(entry, server, tmp_path):
    dest = W.fetch("test-net", url=server, progress=lambda *a: None)
    rec = W.read_lock()["test-net.pth"]
    assert rec == {**rec, "name": "test-net", "size": len(PAYLOAD), "sha256": entry.sha256,
                   "source": f"url {server}", "checked": ["registry sha256"]}
    assert W.locate("test-net") == dest
    dest.write_bytes(PAYLOAD[:-10])  # truncated: caught by size alone
    with pytest.raises(W.WeightsMismatchError, match=r"test-net\.pth is 1048566 bytes.*weights verify test-net"):
        W.locate("test-net")


def test_locate_hashes_once_per_process_and_catches_same_size_change(monkeypatch, tmp_path, weight_entry):
    monkeypatch.setenv("VFR_BENCH_HOME", str(tmp_path))
    e = W.WeightFile("plain", "plain.pth", "u", "x")  # no registry hash: the lock is all we know
    weight_entry(e)
    (tmp_path / "weights").mkdir()
    f = tmp_path / "weights" / "plain.pth"
    f.write_bytes(b"a" * 1000)
    assert W.locate("plain") == f  # not in the lock: nothing to compare, not hashed
    W.verify("plain", record=True)  # trust on first use
    assert W.read_lock()["plain.pth"]["source"].startswith("placed by hand")
    calls = []
    real = W.sha256_file
    monkeypatch.setattr(W, "sha256_file", lambda p, *a: calls.append(p) or real(p, *a))
    W._HASHES.clear()
    for _ in range(3):
        W.locate("plain")
    assert len(calls) == 1
    f.write_bytes(b"b" + b"a" * 999)  # same size, one byte changed
    _bump_mtime(f)
    with pytest.raises(W.WeightsMismatchError, match="differs from weights.lock"):
        W.locate("plain")
    with pytest.raises(W.WeightsMismatchError):
        W.verify("plain", fresh=True)


def test_verify_cli_records_hand_placed_files_then_names_the_changed_one():
    from pathlib import Path
    wdir = Path(os.environ["VFR_BENCH_HOME"]) / "weights"
    wdir.mkdir()
    (wdir / "codeformer.pth").write_bytes(b"codeformer stand-in")
    (wdir / "i3d_torchscript.pt").write_bytes(b"i3d stand-in")
    first = _cli("weights", "verify")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "codeformer: ok" in first.stdout and "recorded in weights.lock (first use)" in first.stdout
    assert set(W.read_lock()) == {"codeformer.pth", "i3d_torchscript.pt"}  # package files are not
    (wdir / "i3d_torchscript.pt").write_bytes(b"I3d stand-in")
    second = _cli("weights", "verify")
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert "codeformer: ok" in second.stdout and "(matches weights.lock)" in second.stdout
    bad = [ln for ln in second.stdout.splitlines() if "FAILED" in ln]
    assert len(bad) == 1 and bad[0].startswith("i3d: FAILED: i3d_torchscript.pt")
    (wdir / "i3d_torchscript.pt").write_bytes(b"longer i3d stand-in")
    listing = _cli("weights", "list").stdout.splitlines()
    assert next(ln for ln in listing if ln.startswith("i3d ")).split()[1] == "changed"
    assert next(ln for ln in listing if ln.startswith("codeformer ")).split()[1] == "present"


def test_weights_list_source_kinds_and_no_manual_step():
    r = _cli("weights", "list")
    assert r.returncode == 0
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines() if ln and not ln[0].isspace()}
    assert set(rows) == {e.name for e in W.REGISTRY}
    assert all(row[2] in W.KINDS for row in rows.values())
    assert {n for n, row in rows.items() if row[2] == "huggingface"} == {
        "dicface-bfr", "dicface-color", "dicface-inpaint"}
    assert {n for n, row in rows.items() if row[2] == "gdrive"} == {
        "vqfr-v1", "flair-x8-bicubic", "flair-x16-bicubic", "flair-gaussian", "flair-jpeg"}
    assert "MANUAL" not in r.stdout and not any(e.manual for e in W.REGISTRY)


@pytest.mark.parametrize("args, msg", [
    (["weights", "fetch", "kepp"], "unknown weights 'kepp'. Did you mean keep"),
    (["weights", "fetch", "--for", "kepp"], "unknown method 'kepp'"),
    (["weights", "fetch"], "needs exactly one of NAME"),
    (["weights", "fetch", "keep", "--all"], "needs exactly one of NAME"),
    (["weights", "fetch", "--all", "--url", "http://127.0.0.1:9/x"], "--url needs exactly one NAME"),
])
def test_fetch_user_errors_are_one_line_exit_2(args, msg):
    r = _cli(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_for_flair_means_all_four_unets_enhancement_and_default_metric_weights():
    names = W.weights_for(["flair"])
    assert {"flair-x8-bicubic", "flair-x16-bicubic", "flair-gaussian", "flair-jpeg",
            "codeformer", "retinaface-resnet50", "parsenet"} <= set(names)
    assert {"alexnet", "arcface-ir-se50", "raft-large", "i3d"} <= set(names)  # default metrics
    assert "keep" not in names and "vgg16" not in names  # LPIPS[vgg] is not a default metric
    assert W.weights_for(["keep"]) == ["keep"] + W.default_metric_weights()


def test_fetch_hint_names_make_weights_with_count_and_declared_size():
    assert W.fetch_hint(["dicface-bfr", "dicface-color", "keep"]) == (
        "fetch the missing weights (3 files, 1.9 GB + 1 file of unknown size): make weights")
    assert W.fetch_hint(["vgg16"]) == "fetch the missing weights (1 file, 528 MB): vfr-bench weights fetch vgg16"
    assert W.fetch_hint([]) == ""


def test_plan_prints_licenses_marks_non_commercial_and_never_reads_stdin(monkeypatch, tmp_path):
    import io
    import sys
    monkeypatch.setattr(sys, "stdin", None)  # any prompt would fail
    monkeypatch.setattr(W.S, "download_url", lambda *a, **k: (_ for _ in ()).throw(
        W.S.SourceUnreachable("cannot reach github.com (refused); offline?")))
    out, err = io.StringIO(), io.StringIO()
    assert W.fetch_many(["keep", "vqfr-v2"], out=out, err=err, bars=False) == 2
    text = out.getvalue()
    keep = next(ln for ln in text.splitlines() if ln.strip().startswith("keep "))
    vqfr = next(ln for ln in text.splitlines() if ln.strip().startswith("vqfr-v2 "))
    assert "[NON-COMMERCIAL]" in keep and "NTU S-Lab License 1.0" in keep
    assert "[NON-COMMERCIAL]" not in vqfr and "Apache-2.0" in vqfr
    assert "size unknown" in keep and "2 file(s) in 2 download(s)" in text

