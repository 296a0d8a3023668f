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
def entry(monkeypatch, tmp_path):
    monkeypatch.setenv("VFR_BENCH_HOME", str(tmp_path))
    e = W.WeightFile("test-net", "test-net.pth", "http://127.0.0.1:9/none", "test only",
                     sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setitem(W._BY_NAME, e.name, e)
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


def test_fetch_rejects_wrong_hash(monkeypatch, entry, server, tmp_path):
    monkeypatch.setitem(W._BY_NAME, "test-net", W.WeightFile("test-net", "test-net.pth", server, "x",
                                                             sha256="0" * 64))
    with pytest.raises(W.WeightsMismatchError):
        W.fetch("test-net")
    assert not any((tmp_path / "weights").iterdir()), "nothing partial or unverified is left"


def test_fetch_offline_fails_clearly(entry, tmp_path):
    with pytest.raises(ConnectionError, match="offline|cannot download"):
        W.fetch("test-net")  # port 9 on loopback: nothing listens
    assert not (tmp_path / "weights" / "test-net.pth").exists()


def test_sha_prefix_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("VFR_BENCH_HOME", str(tmp_path))
    e = W.WeightFile("pref", "pref-deadbeef.pth", "u", "x", sha256_prefix="deadbeef")
    monkeypatch.setitem(W._BY_NAME, e.name, e)
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
