"""Fetching from each kind of source, all on this machine: a local HTTP server standing in
for the Hugging Face Hub (``HF_ENDPOINT=http://127.0.0.1:PORT``), Google Drive stubbed at
the ``gdown`` call, archives built by the test, and an "offline" run in which every client
is sent to a closed local proxy port (nothing leaves the machine)."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO
from vfr_bench import weight_sources as S
from vfr_bench import weights as W

VFR = [sys.executable, "-m", "vfr_bench.cli"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
HF_FILE = bytes(range(256)) * 1200  # 300 KiB stands in for bfr_100k.pth


class _Hub(http.server.BaseHTTPRequestHandler):
    """``HEAD``/``GET /{org}/{repo}/resolve/{revision}/{path}`` with the headers
    huggingface_hub reads: X-Repo-Commit, ETag (an LFS file's is its sha256), Content-Length."""
    files: dict[str, bytes] = {}
    etags: dict[str, str] = {}
    seen: list[str] = []

    def _lookup(self):
        parts = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/").split("/")
        type(self).seen.append(f"{self.command} {'/'.join(parts)}")
        if len(parts) < 5 or parts[2] != "resolve":
            return None, None
        key = "/".join(parts[:2]) + ":" + "/".join(parts[4:])
        body = self.files.get(key)
        return body, self.etags.get(key, hashlib.sha256(body).hexdigest() if body else None)

    def _head(self, body, etag):
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return True

    def do_HEAD(self):  # noqa: N802
        self._head(*self._lookup())

    def do_GET(self):  # noqa: N802
        body, etag = self._lookup()
        if self._head(body, etag):
            self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def hub():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Hub.files = {"fudan-generative-ai/DicFace_model:CodeFormer/bfr_100k.pth": HF_FILE}
    _Hub.etags, _Hub.seen = {}, []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    return {**env, "PYTHONPATH": str(REPO), "HF_HUB_DISABLE_TELEMETRY": "1", **extra}


def _listing(folder: Path) -> set[str]:
    """Every path under ``folder``, relative (hidden files and folders included)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


# --- Hugging Face ------------------------------------------------------------------------------
def test_hf_fetch_lands_official_name_records_lock_and_verify_reports_a_changed_byte(hub):
    """The acceptance run: `weights fetch dicface-bfr` against a local Hub, then `verify`."""
    env = _env(HF_ENDPOINT=hub)
    r = subprocess.run([*VFR, "weights", "fetch", "dicface-bfr", "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    wdir = Path(os.environ["VFR_BENCH_HOME"]) / "weights"
    dest = wdir / "bfr_100k.pth"
    assert dest.read_bytes() == HF_FILE
    assert "huggingface" in r.stdout and "[NON-COMMERCIAL]" in r.stdout and "930 MB" in r.stdout
    assert f"GET fudan-generative-ai/DicFace_model/resolve/{COMMIT}/CodeFormer/bfr_100k.pth" in _Hub.seen
    rec = W.read_lock()["bfr_100k.pth"]
    assert rec["sha256"] == hashlib.sha256(HF_FILE).hexdigest() and rec["size"] == len(HF_FILE)
    assert rec["source"] == f"huggingface fudan-generative-ai/DicFace_model@{COMMIT}:CodeFormer/bfr_100k.pth"
    assert rec["checked"] == ["source sha256"]
    assert _listing(wdir) == {"bfr_100k.pth", "weights.lock"}, "staging and temp files are gone"

    ok = subprocess.run([*VFR, "weights", "verify"], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "dicface-bfr: ok" in ok.stdout
    data = bytearray(dest.read_bytes())
    data[1000] ^= 0xFF  # same size, one byte changed
    dest.write_bytes(bytes(data))
    bad = subprocess.run([*VFR, "weights", "verify"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    line = next(ln for ln in bad.stdout.splitlines() if ln.startswith("dicface-bfr:"))
    assert "FAILED" in line and "bfr_100k.pth" in line and "weights.lock" in line
    os.utime(dest, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime for this process's cache
    with pytest.raises(W.WeightsMismatchError, match=r"bfr_100k\.pth.*vfr-bench weights verify"):
        W.locate("dicface-bfr")


def test_hf_download_whose_bytes_disagree_with_the_published_sha256_is_not_kept(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub)
    _Hub.etags = {"fudan-generative-ai/DicFace_model:CodeFormer/bfr_100k.pth": "ab" * 32}
    with pytest.raises(W.WeightsMismatchError, match="corrupt"):
        W.fetch("dicface-bfr", progress=lambda *a: None)
    wdir = Path(os.environ["VFR_BENCH_HOME"]) / "weights"
    assert _listing(wdir) == set() and not W.is_present("dicface-bfr")


def test_hf_missing_file_is_one_line_source_error(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub)
    _Hub.files = {}
    with pytest.raises(S.SourceError, match="not found") as ei:
        W.fetch("dicface-color", progress=lambda *a: None)
    assert "\n" not in str(ei.value) and not isinstance(ei.value, S.SourceUnreachable)


def test_refetch_that_disagrees_with_the_lock_is_refused_unless_accepted(hub, monkeypatch):
    """Trust on first use: the Hub serving other bytes later is an alarm, not an update."""
    monkeypatch.setenv("HF_ENDPOINT", hub)
    W.fetch("dicface-bfr", progress=lambda *a: None)
    dest = W.path_of(W.get("dicface-bfr"))
    dest.unlink()
    _Hub.files = {"fudan-generative-ai/DicFace_model:CodeFormer/bfr_100k.pth": HF_FILE[::-1]}
    with pytest.raises(W.WeightsMismatchError, match="--accept-new dicface-bfr"):
        W.fetch("dicface-bfr", progress=lambda *a: None)
    assert not dest.exists()
    W.fetch("dicface-bfr", progress=lambda *a: None, accept_new=True)
    assert W.read_lock()["bfr_100k.pth"]["sha256"] == hashlib.sha256(HF_FILE[::-1]).hexdigest()


# --- Google Drive (stubbed at gdown) -----------------------------------------------------------
UNETS = {"flair_x8_bicubic.pt": b"x8" * 5000, "flair_x16_bicubic.pt": b"x16" * 4000,
         "flair_gaussian.pt": b"gauss" * 3000, "flair_jpeg.pt": b"jpeg" * 3500}


def _zip_archive(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in UNETS.items():
            z.writestr(f"checkpoints/{name}", data)
        z.writestr("checkpoints/codeformer.pth", b"not ours")  # in the archive, not asked for
        z.writestr("README.txt", b"hello")
    return path


@pytest.fixture
def fake_gdown(monkeypatch, tmp_path):
    """gdown.download / download_folder replaced: they copy local files, recording each call."""
    import gdown
    calls, served = [], {}

    def download(id=None, output=None, progress=None, **kw):  # noqa: A002
        calls.append(("download", id, kw.get("timeout"), kw.get("retries")))
        data = served[id].read_bytes()
        Path(output).write_bytes(data)
        if progress:
            progress(len(data), len(data))
        return output

    def download_folder(id=None, skip_download=False, **kw):  # noqa: A002
        calls.append(("folder", id, kw.get("timeout"), skip_download))
        return [type("F", (), {"id": fid, "path": path})() for fid, path in served[id]]

    monkeypatch.setattr(gdown, "download", download)
    monkeypatch.setattr(gdown, "download_folder", download_folder)
    return calls, served


def test_archive_entry_extracts_only_the_named_members(fake_gdown, tmp_path):
    calls, served = fake_gdown
    served[W.get("flair-x8-bicubic").gdrive_id] = _zip_archive(tmp_path / "flair.zip")
    dest = W.fetch("flair-x8-bicubic", progress=lambda *a: None)
    wdir = dest.parent
    # one download serves the four UNets; the archive's codeformer.pth and README are not kept
    assert [c[0] for c in calls] == ["download"] and calls[0][3] == 0 and calls[0][2] is not None
    assert _listing(wdir) == set(UNETS) | {"weights.lock"}
    for name, data in UNETS.items():
        assert (wdir / name).read_bytes() == data
    lock = W.read_lock()
    assert lock["flair_jpeg.pt"]["source"].endswith("member flair_jpeg.pt")
    assert lock["flair_jpeg.pt"]["checked"] == ["trust on first use"]
    assert W.locate("flair-gaussian") == wdir / "flair_gaussian.pt"


def test_archive_without_the_member_keeps_nothing(fake_gdown, tmp_path):
    calls, served = fake_gdown
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("checkpoints/something_else.pt", b"x")
    served[W.get("flair-jpeg").gdrive_id] = tmp_path / "other.zip"
    with pytest.raises(S.SourceError, match=r"flair_.*\.pt is not in the archive .*something_else"):
        W.fetch("flair-jpeg", progress=lambda *a: None)
    assert _listing(Path(os.environ["VFR_BENCH_HOME"]) / "weights") == set()


def test_extract_members_from_tar_by_path_or_name_and_refuses_ambiguity(tmp_path):
    tar_path = tmp_path / "a.tar.gz"
    with tarfile.open(tar_path, "w:gz") as t:
        for name, data in (("ckpt/a.pt", b"A" * 10), ("ckpt/b.pt", b"B" * 20), ("x/b.pt", b"C")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    S.extract_members(tar_path, {"a.pt": tmp_path / "a", "ckpt/b.pt": tmp_path / "b"})
    assert (tmp_path / "a").read_bytes() == b"A" * 10 and (tmp_path / "b").read_bytes() == b"B" * 20
    with pytest.raises(S.SourceError, match="more than once"):
        S.extract_members(tar_path, {"b.pt": tmp_path / "c"})
    (tmp_path / "plain").write_bytes(b"not an archive")
    with pytest.raises(S.SourceError, match="neither a zip nor a tar"):
        S.extract_members(tmp_path / "plain", {"a.pt": tmp_path / "d"})


def test_gdrive_folder_entry_downloads_the_file_named_in_the_folder(fake_gdown, tmp_path, monkeypatch, weight_entry):
    calls, served = fake_gdown
    payload = b"vqfr v1 stand-in" * 100
    (tmp_path / "v1.pth").write_bytes(payload)
    folder = W.get("vqfr-v1").gdrive_folder
    served[folder] = [("id-other", "VQFR/other.pth"), ("id-v1", "VQFR/VQFR_v1-33a1fac5.pth")]
    served["id-v1"] = tmp_path / "v1.pth"
    # the stand-in cannot carry the release's sha256 prefix: first the prefix check refuses it ...
    with pytest.raises(W.WeightsMismatchError, match="33a1fac5"):
        W.fetch("vqfr-v1", progress=lambda *a: None)
    assert _listing(Path(os.environ["VFR_BENCH_HOME"]) / "weights") == set()
    # ... then, with the check waived, it lands under the official name
    weight_entry(dataclasses.replace(W.get("vqfr-v1"), sha256_prefix=None))
    dest = W.fetch("vqfr-v1", progress=lambda *a: None)
    assert dest.name == "VQFR_v1-33a1fac5.pth" and dest.read_bytes() == payload
    assert ("folder", folder) == calls[-2][:2] and calls[-1][1] == "id-v1"
    assert W.read_lock()[dest.name]["source"] == f"gdrive folder {folder} file id-v1"


# --- offline ---------------------------------------------------------------------------------------
def test_offline_fetch_all_fails_fast_one_line_per_download_and_writes_nothing(tmp_path):
    """Every client is pointed at a closed port on 127.0.0.1 as its proxy: the same failures
    as a machine without network, and no request leaves this machine."""
    closed = "http://127.0.0.1:9"
    env = _env(HTTP_PROXY=closed, HTTPS_PROXY=closed, http_proxy=closed, https_proxy=closed,
               ALL_PROXY=closed, NO_PROXY="", no_proxy="")
    env.pop("HF_ENDPOINT", None)
    groups, _ = W.plan([e.name for e in W.REGISTRY])
    t0 = time.monotonic()
    r = subprocess.run([*VFR, "weights", "fetch", "--all"], capture_output=True, text=True,
                       env=env, timeout=120)
    elapsed = time.monotonic() - t0
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    failures = [ln for ln in r.stderr.splitlines() if ln.startswith("vfr-bench: fetch failed: ")]
    assert len(failures) == len(groups) >= 14
    assert any("flair-x8-bicubic, flair-x16-bicubic" in ln for ln in failures)  # one archive, one line
    assert all(f"({e.filename}" in r.stderr or e.filename in r.stderr for g in groups for e in g)
    assert _listing(Path(os.environ["VFR_BENCH_HOME"]) / "weights") == set()
    assert elapsed < 120


def test_unreachable_host_fails_once_then_its_other_files_are_skipped(monkeypatch):
    calls = []

    def unreachable(url, part, timeout=20.0, progress=None):
        calls.append(url)
        raise S.SourceUnreachable(f"cannot reach {S.host_of(url)} (refused); offline?")
    monkeypatch.setattr(S, "download_url", unreachable)
    out, err = io.StringIO(), io.StringIO()
    failed = W.fetch_many(["codeformer", "parsenet", "alexnet"], out=out, err=err, bars=False)
    assert failed == 3 and len(calls) == 2  # github.com tried once, download.pytorch.org once
    lines = err.getvalue().splitlines()
    assert len(lines) == 3 and "skipped: github.com unreachable" in lines[1]
