"""The weights registry: every network file vfr-bench can use, listed once.

Nothing is downloaded implicitly. Methods and metrics name the entries they need;
:func:`locate` returns the file or raises :class:`MissingWeightsError` naming the file,
the folder and the command that fetches it. ``vfr-bench weights fetch`` downloads from
each entry's official source (plain URL, Hugging Face, Google Drive file, folder or
archive; see :mod:`vfr_bench.weight_sources`). Checkpoints keep their own licenses
(the ``license`` field, also in the README).

Integrity: a hash the source publishes (a sha256, a prefix in the file name as in
``KEEP-a1a14d46.pth``, the Hub's LFS ETag) is checked on download. Every file fetched
or verified is also recorded (size, sha256, source) in ``weights.lock`` in the weights
folder (trust on first use); :func:`locate`, the one door every loader goes through,
refuses a file whose size or hash no longer matches that record or the registry.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Iterable, Optional

from vfr_bench import paths
from vfr_bench import weight_sources as S
from vfr_bench.registry import unknown

S_LAB = "NTU S-Lab License 1.0 (non-commercial)"
BSD3_TV = "BSD-3-Clause (torchvision)"
FACEXLIB = "MIT (facexlib release)"
DICFACE_LICENSE = "NTU S-Lab License 1.0 (non-commercial; DicFace README; its model card says MIT)"
FLAIR_LICENSE = "MIT (wustl-cig/FLAIR repository; no separate license for the weights)"
KINDS = ("url", "huggingface", "gdrive", "package")


@dataclass(frozen=True)
class WeightFile:
    """One network file.

    Attributes:
        name: registry name users type (``vfr-bench weights path keep``).
        filename: the official file name (the file's name in the weights folder).
        url: official download URL, or the page the file is published on.
        license: license note shown beside the file.
        sha256: full hash when the source publishes it.
        sha256_prefix: hash prefix carried in the file name.
        package: the file ships inside this installed Python package (under
            ``subdir``) instead of the weights folder.
        used_by: what needs it, for ``weights list``.
        hf_repo, hf_path, hf_revision: Hugging Face model repo, the file's path in it and
            the revision fetched (a commit hash, or a branch where none is known).
        gdrive_id: Google Drive file id (the file itself, or an archive: ``archive_member``).
        gdrive_folder: shared Drive folder id holding a file named ``filename``.
        archive_member: the downloaded file is a zip/tar archive; only this member
            (a path, or a file name matched anywhere in it) is kept, as ``filename``.
        size_mb: size as the source states it (MB, possibly rounded), for the fetch plan.
        manual: non-empty when no library can fetch the file: why, and the steps by hand.
    """
    name: str
    filename: str
    url: str
    license: str
    sha256: Optional[str] = None
    sha256_prefix: Optional[str] = None
    package: Optional[str] = None
    subdir: str = ""
    used_by: str = ""
    hf_repo: Optional[str] = None
    hf_path: Optional[str] = None
    hf_revision: str = "main"
    gdrive_id: Optional[str] = None
    gdrive_folder: Optional[str] = None
    archive_member: Optional[str] = None
    size_mb: Optional[float] = None
    manual: str = ""

    @property
    def kind(self) -> str:
        """Where the file comes from: one of :data:`KINDS`."""
        if self.package:
            return "package"
        if self.hf_repo:
            return "huggingface"
        if self.gdrive_id or self.gdrive_folder:
            return "gdrive"
        return "url"

    @property
    def non_commercial(self) -> bool:
        return "non-commercial" in self.license.lower()

    @property
    def source(self) -> str:
        """The exact source, as ``weights list`` shows it and ``weights.lock`` records it."""
        if self.kind == "huggingface":
            return f"huggingface {self.hf_repo}@{self.hf_revision}:{self.hf_path}"
        if self.gdrive_folder:
            return f"gdrive folder {self.gdrive_folder}"
        if self.gdrive_id:
            member = f", member {self.archive_member}" if self.archive_member else ""
            return f"gdrive {'archive' if self.archive_member else 'file'} {self.gdrive_id}{member}"
        if self.kind == "package":
            return f"package {self.package}"
        member = f", member {self.archive_member}" if self.archive_member else ""
        return f"url {self.url}{member}"


_GH_CF = "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/"
_GH_FX = "https://github.com/xinntao/facexlib/releases/download/v0.1.0/"
_TV = "https://download.pytorch.org/models/"
_DLIB = "https://github.com/ageitgey/face_recognition_models (PyPI face-recognition-models)"
# DicFace README: "all pretrained models required by inference from our HuggingFace repo
# fudan-generative-ai/DicFace_model"; the repo holds CodeFormer/{bfr,color,inpainting}_100k.pth
# (930 MB each on its file page). Revision "main": the page showed commit 165124a, but its
# full hash could not be read offline; weights.lock records the commit actually served.
_HF_DICFACE = "fudan-generative-ai/DicFace_model"
_HF_PAGE = "https://huggingface.co/" + _HF_DICFACE + "/blob/main/"
# VQFR README "Quick Inference": one Google Drive folder (v1 lives only there; v2 is a release).
_VQFR_FOLDER = "1lczKYEbARwe27FJlKoFdng7UnffGDjO2"
# FLAIR README: one Google Drive archive, "place them in ./checkpoints".
_FLAIR_ID = "1dmF7pjN8N-T1UXdijO7kHGjqREAx0a9L"
_FLAIR = f"https://drive.google.com/file/d/{_FLAIR_ID}/view (archive)"

REGISTRY: tuple[WeightFile, ...] = (
    # methods
    WeightFile("codeformer", "codeformer.pth", _GH_CF + "codeformer.pth", S_LAB,
               used_by="codeformer, flair (enhancement)"),
    WeightFile("keep", "KEEP-a1a14d46.pth",
               "https://github.com/jnjaby/KEEP/releases/download/v0.1.0/KEEP-a1a14d46.pth", S_LAB,
               sha256_prefix="a1a14d46", used_by="keep"),
    WeightFile("vqfr-v1", "VQFR_v1-33a1fac5.pth",
               f"https://drive.google.com/drive/folders/{_VQFR_FOLDER}",
               "Apache-2.0 (VQFR)", sha256_prefix="33a1fac5", gdrive_folder=_VQFR_FOLDER,
               used_by="vqfr-v1"),
    WeightFile("vqfr-v2", "VQFR_v2.pth",
               "https://github.com/TencentARC/VQFR/releases/download/v2.0.0/VQFR_v2.pth",
               "Apache-2.0 (VQFR)", used_by="vqfr-v2"),
    WeightFile("dicface-bfr", "bfr_100k.pth", _HF_PAGE + "CodeFormer/bfr_100k.pth", DICFACE_LICENSE,
               hf_repo=_HF_DICFACE, hf_path="CodeFormer/bfr_100k.pth", size_mb=930,
               used_by="dicface"),
    WeightFile("dicface-color", "color_100k.pth", _HF_PAGE + "CodeFormer/color_100k.pth",
               DICFACE_LICENSE, hf_repo=_HF_DICFACE, hf_path="CodeFormer/color_100k.pth",
               size_mb=930, used_by="dicface-color"),
    WeightFile("dicface-inpaint", "inpainting_100k.pth", _HF_PAGE + "CodeFormer/inpainting_100k.pth",
               DICFACE_LICENSE, hf_repo=_HF_DICFACE, hf_path="CodeFormer/inpainting_100k.pth",
               size_mb=930, used_by="dicface-inpaint"),
    WeightFile("flair-x8-bicubic", "flair_x8_bicubic.pt", _FLAIR, FLAIR_LICENSE,
               gdrive_id=_FLAIR_ID, archive_member="flair_x8_bicubic.pt", used_by="flair (x8-bicubic)"),
    WeightFile("flair-x16-bicubic", "flair_x16_bicubic.pt", _FLAIR, FLAIR_LICENSE,
               gdrive_id=_FLAIR_ID, archive_member="flair_x16_bicubic.pt",
               used_by="flair (x16-bicubic)"),
    WeightFile("flair-gaussian", "flair_gaussian.pt", _FLAIR, FLAIR_LICENSE,
               gdrive_id=_FLAIR_ID, archive_member="flair_gaussian.pt", used_by="flair (x4-gaussian)"),
    WeightFile("flair-jpeg", "flair_jpeg.pt", _FLAIR, FLAIR_LICENSE,
               gdrive_id=_FLAIR_ID, archive_member="flair_jpeg.pt", used_by="flair (x4-gaussian-jpeg)"),
    # face helpers
    WeightFile("retinaface-resnet50", "detection_Resnet50_Final.pth",
               _GH_CF + "detection_Resnet50_Final.pth", "MIT (Pytorch_Retinaface / facexlib)",
               used_by="flair enhancement, face alignment"),
    WeightFile("parsenet", "parsing_parsenet.pth", _GH_CF + "parsing_parsenet.pth",
               "MIT (facexlib)", used_by="flair enhancement, restore paste-back"),
    # metric backbones (sizes: torchvision's weights metadata, _file_size)
    WeightFile("alexnet", "alexnet-owt-7be5be79.pth", _TV + "alexnet-owt-7be5be79.pth", BSD3_TV,
               sha256_prefix="7be5be79", size_mb=233.1, used_by="LPIPS (alex)"),
    WeightFile("vgg16", "vgg16-397923af.pth", _TV + "vgg16-397923af.pth", BSD3_TV,
               sha256_prefix="397923af", size_mb=527.8, used_by="LPIPS (vgg)"),
    WeightFile("arcface-ir-se50", "recognition_arcface_ir_se50.pth",
               _GH_FX + "recognition_arcface_ir_se50.pth", FACEXLIB, used_by="IDS[arcface]"),
    WeightFile("awing-wflw", "alignment_WFLW_4HG.pth", _GH_FX + "alignment_WFLW_4HG.pth",
               FACEXLIB, used_by="AKD[awing98]"),
    WeightFile("raft-large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
               _TV + "raft_large_C_T_SKHT_V2-ff5fadd5.pth", BSD3_TV, sha256_prefix="ff5fadd5",
               size_mb=20.1, used_by="E_warp[raft]"),
    WeightFile("i3d", "i3d_torchscript.pt",
               "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
               "Apache-2.0 (Kinetics I3D, StyleGAN-V export)", used_by="FVD"),
    # shipped inside PyPI packages (offline)
    WeightFile("dlib-shape5", "shape_predictor_5_face_landmarks.dat", _DLIB,
               "CC0 (dlib-models)", package="face_recognition_models", subdir="models",
               used_by="alignment"),
    WeightFile("dlib-shape68", "shape_predictor_68_face_landmarks.dat", _DLIB,
               "trained on iBUG 300-W: non-commercial use only", package="face_recognition_models",
               subdir="models", used_by="AKD[dlib68], TLME[dlib68]"),
    WeightFile("dlib-mmod", "mmod_human_face_detector.dat", _DLIB, "CC0 (dlib-models)",
               package="face_recognition_models", subdir="models", used_by="alignment"),
    WeightFile("dlib-resnet", "dlib_face_recognition_resnet_model_v1.dat", _DLIB,
               "CC0 (dlib-models)", package="face_recognition_models", subdir="models",
               used_by="IDS[dlib]"),
    # FID / KID: TensorFlow's Inception-v3 (2015-12-05 graph) as torch-fidelity converted it
    WeightFile("inception-fid", "weights-inception-2015-12-05-6726825d.pth",
               "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
               "weights-inception-2015-12-05-6726825d.pth",
               "Apache-2.0 (TensorFlow Inception-v3 2015-12-05 weights, converted by torch-fidelity)",
               used_by="FID, FID[ref], KID"),
    # GT-free quality metrics through pyiqa (the files pyiqa's default metrics load; pyiqa's
    # own code is PolyForm Noncommercial 1.0.0)
    WeightFile("musiq-koniq", "musiq_koniq_ckpt-e95806b9.pth",
               "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/musiq_koniq_ckpt-e95806b9.pth",
               "Apache-2.0 (google-research MUSIQ koniq_ckpt.npz; PyTorch conversion by pyiqa)",
               used_by="MUSIQ"),
    WeightFile("maniqa-koniq", "ckpt_koniq10k.pt",
               "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/ckpt_koniq10k.pt",
               "no license stated by IIGROUP/MANIQA (pyiqa's copy of its KonIQ-10k checkpoint)",
               used_by="MANIQA"),
    WeightFile("clip-rn50", "RN50.pt",
               "https://openaipublic.azureedge.net/clip/models/"
               "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
               "MIT (openai/CLIP)",
               sha256="afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
               used_by="CLIP-IQA"),
)

_BY_NAME = {w.name: w for w in REGISTRY}
assert len(_BY_NAME) == len(REGISTRY), "duplicate weight names"


def register(entry: WeightFile) -> Optional[WeightFile]:
    """Add or replace an entry at run time (a user's own network, a test's stand-in file);
    returns the entry it replaced. Every loader looks entries up by name, so all see it."""
    old = _BY_NAME.get(entry.name)
    _BY_NAME[entry.name] = entry
    return old


def unregister(name: str) -> None:
    """Remove an entry added with :func:`register` (no error if absent)."""
    _BY_NAME.pop(name, None)


class MissingWeightsError(FileNotFoundError):
    """A registered file is not on disk; the message says where to put it and where from."""


class WeightsMismatchError(ValueError):
    """A file's size or sha256 does not match the registry, its source or ``weights.lock``."""


def get(name: str) -> WeightFile:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise unknown("weights", name, _BY_NAME) from None


def path_of(entry: WeightFile) -> Path:
    """Where the file is expected (whether or not it exists)."""
    if entry.package:
        spec = find_spec(entry.package)  # importing it would pull pkg_resources
        if spec is None or not spec.submodule_search_locations:
            return Path(f"<package {entry.package} not installed>") / entry.filename
        return Path(list(spec.submodule_search_locations)[0]) / entry.subdir / entry.filename
    return paths.weights_dir() / entry.filename


def is_present(name: str) -> bool:
    return path_of(get(name)).is_file()


def missing_message(entry: WeightFile) -> str:
    where = path_of(entry)
    if entry.package:
        return (f"{entry.filename} not found in package {entry.package} ({where.parent}); "
                f"install it: pip install {entry.package.replace('_', '-')}")
    how = (f"{entry.manual}; place it as {where}" if entry.manual
           else f"run: vfr-bench weights fetch {entry.name}")
    return f"{entry.filename} not in {where.parent} ({entry.url}); {how}"


# --- hashing and weights.lock ---------------------------------------------------------------
_HASHES: dict[tuple, str] = {}  # (path, size, mtime_ns, inode) -> sha256, this process only


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path, fresh: bool = False) -> str:
    """sha256 of ``path``, hashed once per process while its size and mtime stay the same."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if fresh or key not in _HASHES:
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


LOCK_NAME = "weights.lock"


def lock_path() -> Path:
    return paths.weights_dir() / LOCK_NAME


def read_lock() -> dict[str, dict]:
    """``weights.lock``: file name -> {name, size, sha256, source, checked, recorded}."""
    try:
        data = json.loads(lock_path().read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise WeightsMismatchError(f"{lock_path()} is unreadable ({e}); move it away and run: "
                                   f"vfr-bench weights verify (records the files present again)") from None
    return dict(data.get("files", {}))


def lock_record(entry: WeightFile) -> Optional[dict]:
    return None if entry.package else read_lock().get(entry.filename)


def _write_record(entry: WeightFile, size: int, digest: str, source: str, checked: list[str]) -> None:
    """Add or replace the file's record, atomically and under an exclusive lock on the folder."""
    folder = paths.weights_dir()
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):  # no flock (Windows, some network mounts): best effort
            pass
        files = read_lock()
        files[entry.filename] = {
            "name": entry.name, "size": size, "sha256": digest, "source": source,
            "checked": checked or ["trust on first use"],
            "recorded": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        tmp = folder / f".{LOCK_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"version": 1, "files": dict(sorted(files.items()))}, indent=1) + "\n")
        os.replace(tmp, lock_path())
    finally:
        os.close(fd)


def check_hash(entry: WeightFile, digest: str) -> None:
    """Raise WeightsMismatchError if ``digest`` disagrees with what the registry knows."""
    if entry.sha256 and digest != entry.sha256:
        raise WeightsMismatchError(f"{entry.filename}: sha256 {digest} != expected {entry.sha256}")
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix):
        raise WeightsMismatchError(
            f"{entry.filename}: sha256 {digest[:12]}... does not start with "
            f"{entry.sha256_prefix} (the prefix in its official name)")


def _check_lock(entry: WeightFile, size: int, digest: Optional[str], rec: dict) -> None:
    when = f"recorded {rec.get('recorded', '?')} from {rec.get('source', '?')}"
    if rec.get("size") is not None and size != rec["size"]:
        raise WeightsMismatchError(f"{entry.filename} is {size} bytes but weights.lock says "
                                   f"{rec['size']} ({when}): it changed or is truncated")
    if digest is not None and digest != rec.get("sha256"):
        raise WeightsMismatchError(f"{entry.filename}: sha256 {digest[:12]}... differs from "
                                   f"weights.lock {str(rec.get('sha256'))[:12]}... ({when}): it changed")


def _check_file(entry: WeightFile, path: Path, fresh: bool) -> str:
    """sha256 of a present file, checked against the registry and its lock record."""
    rec = lock_record(entry)
    if rec is not None:
        _check_lock(entry, path.stat().st_size, None, rec)  # cheap: before hashing
    digest = file_sha256(path, fresh=fresh)
    check_hash(entry, digest)
    if rec is not None:
        _check_lock(entry, path.stat().st_size, digest, rec)
    return digest


def locate(name: str) -> Path:
    """Path of a registered file, after checking it (hashed once per process).

    Raises:
        MissingWeightsError: the file is absent; the message names file, folder and URL.
        WeightsMismatchError: its size or sha256 disagrees with weights.lock or the registry;
            such a file is never loaded.
    """
    entry = get(name)
    p = path_of(entry)
    if not p.is_file():
        raise MissingWeightsError(missing_message(entry))
    if not entry.package and (entry.sha256 or entry.sha256_prefix or lock_record(entry)):
        try:
            _check_file(entry, p, fresh=False)
        except WeightsMismatchError as e:
            raise WeightsMismatchError(f"{e}; it is not loaded. Check: vfr-bench weights verify "
                                       f"{name}; replace: delete {p} and run: vfr-bench weights "
                                       f"fetch {name}") from None
    return p


def verify(name: str, *, fresh: bool = False, record: bool = False) -> str:
    """sha256 of a present file after checking it against the registry and ``weights.lock``.

    Args:
        fresh: re-hash even if this process hashed the file already (``weights verify``).
        record: record a file the lock does not know yet (trust on first use).

    Raises:
        MissingWeightsError: the file is absent.
        WeightsMismatchError: it differs from the registry or from its lock record.
    """
    entry = get(name)
    p = path_of(entry)
    if not p.is_file():
        raise MissingWeightsError(missing_message(entry))
    digest = _check_file(entry, p, fresh=fresh)
    if record and not entry.package and lock_record(entry) is None:
        _write_record(entry, p.stat().st_size, digest, "placed by hand (first verify)",
                      _checked(entry, None))
    return digest


def _checked(entry: WeightFile, published: Optional[str]) -> list[str]:
    out = ["source sha256"] if published else []
    out += ["registry sha256"] if entry.sha256 else []
    out += ["name prefix"] if entry.sha256_prefix else []
    return out


def load_entry(name: str, key: str = "params_ema") -> dict:
    """``torch.load`` a registered checkpoint (CPU, tensors only) and return its ``key`` entry,
    as basicsr-trained releases store their EMA weights under ``params_ema``.

    Raises:
        MissingWeightsError: the file is absent.
        KeyError: the file has no ``key`` entry (not the official release); names file and keys found.
    """
    from vfr_bench.checkpoint import load_checkpoint
    path = locate(name)
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or key not in ckpt:
        found = list(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise KeyError(f"{path}: no '{key}' entry (found {found}); expected the official "
                       f"{get(name).filename}, see: vfr-bench weights list")
    return ckpt[key]


# --- fetching ----------------------------------------------------------------------------------
Progress = Callable[[int, Optional[int]], None]


def _install(entry: WeightFile, tmp: Path, published: Optional[str], source: str,
             accept_new: bool) -> Path:
    """Hash a complete download, check it, rename it into place and record it in the lock.
    A file that fails any check is removed: the weights folder never holds it."""
    dest = path_of(entry)
    try:
        digest = sha256_file(tmp)
        if published and digest != published:
            raise WeightsMismatchError(f"{entry.filename}: sha256 {digest[:12]}... but the source "
                                       f"publishes {published[:12]}...: the download is corrupt")
        check_hash(entry, digest)
        rec = lock_record(entry)
        if rec is not None and rec.get("sha256") != digest and not accept_new:
            raise WeightsMismatchError(
                f"{entry.filename}: the source now serves sha256 {digest[:12]}..., not the "
                f"{str(rec.get('sha256'))[:12]}... in weights.lock (recorded {rec.get('recorded')}); "
                f"to trust the new file: vfr-bench weights fetch --accept-new {entry.name}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    size = tmp.stat().st_size
    os.replace(tmp, dest)
    _write_record(entry, size, digest, source, _checked(entry, published))
    st = dest.stat()  # the next locate in this process need not hash it again
    _HASHES[(str(dest.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)] = digest
    return dest


def _install_group(results: list, accept_new: bool, report: Callable[[WeightFile, Path], None]) -> None:
    """Install each download of one source (an archive yields several); a member that fails
    its checks does not stop the others. Raises the failures together, as one line."""
    errors = []
    try:
        for e, tmp, published, src in results:
            try:
                report(e, _install(e, tmp, published, src, accept_new))
            except WeightsMismatchError as x:
                errors.append(str(x))
    finally:
        for _, tmp, _, _ in results:  # only what was not installed is still there
            tmp.unlink(missing_ok=True)
    if errors:
        raise WeightsMismatchError("; ".join(errors))


def _bar(label: str, enabled: bool) -> tuple[Optional[Progress], Callable[[], None]]:
    """A tqdm byte bar driven by (done, total) callbacks, opened at the first byte (a source
    that cannot be reached shows no empty bar); returns (callback, close)."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm
    state: dict = {}

    def update(done: int, total: Optional[int]) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(desc=label, total=total, unit="B", unit_scale=True,
                                      unit_divisor=1024, file=sys.stderr, dynamic_ncols=True)
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def close() -> None:
        if "bar" in state:
            state["bar"].close()
    return update, close


def _download(group: list[WeightFile], url: Optional[str], timeout: float,
              progress: Optional[Progress], bars: bool) -> list[tuple[WeightFile, Path, Optional[str], str]]:
    """Download one source; returns (entry, complete temp file, published sha256, source)."""
    first = group[0]
    folder = paths.weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    label = first.filename if len(group) == 1 else f"archive for {len(group)} files"
    cb, close = (progress, lambda: None) if progress else _bar(label, bars)
    try:
        if first.archive_member:
            return _download_archive(group, url, timeout, cb)
        dest = path_of(first)
        if first.kind == "huggingface" and url is None:
            staging = folder / ".staging" / "huggingface" / first.hf_repo.replace("/", "--")
            got, meta = S.download_hf(first.hf_repo, first.hf_path, first.hf_revision, staging,
                                      dest.with_name(f".{dest.name}.hf"), bars=bars and not progress)
            src = f"huggingface {first.hf_repo}@{meta['commit']}:{first.hf_path}"
            return [(first, got, meta["sha256"], src)]
        if first.gdrive_folder and url is None:
            file_id = S.gdrive_folder_file_id(first.gdrive_folder, first.filename)
            got = S.download_gdrive(file_id, dest.with_name(f".{dest.name}.gdrive"), cb)
            return [(first, got, None, f"gdrive folder {first.gdrive_folder} file {file_id}")]
        if first.gdrive_id and url is None:
            got = S.download_gdrive(first.gdrive_id, dest.with_name(f".{dest.name}.gdrive"), cb)
            return [(first, got, None, f"gdrive file {first.gdrive_id}")]
        u = url or first.url
        got = S.download_url(u, dest.with_name(dest.name + ".part"), timeout, cb)
        return [(first, got, None, f"url {u}")]
    finally:
        close()


def _download_archive(group: list[WeightFile], url: Optional[str], timeout: float,
                      cb: Optional[Progress]) -> list[tuple[WeightFile, Path, Optional[str], str]]:
    """Download an archive once, copy out the members the group names, delete the archive."""
    first = group[0]
    folder = paths.weights_dir()
    key = first.gdrive_id or hashlib.sha256((url or first.url).encode()).hexdigest()[:16]
    if first.gdrive_id and url is None:
        archive = S.download_gdrive(first.gdrive_id, folder / f".archive-{key}", cb)
        src = f"gdrive archive {first.gdrive_id}"
    else:
        archive = S.download_url(url or first.url, folder / f".archive-{key}.part", timeout, cb)
        src = f"url archive {url or first.url}"
    outs = {e.archive_member: path_of(e).with_name(f".{e.filename}.extract") for e in group}
    try:
        S.extract_members(archive, outs)
    except BaseException:
        for p in outs.values():
            p.unlink(missing_ok=True)
        raise
    finally:
        archive.unlink(missing_ok=True)
    return [(e, outs[e.archive_member], None, f"{src} member {e.archive_member}") for e in group]


def fetch(name: str, url: Optional[str] = None, timeout: float = S.URL_TIMEOUT,
          progress: Optional[Progress] = None, accept_new: bool = False) -> Path:
    """Download one registered file (and, for an archive member, its missing siblings) from
    its source, check it and rename it into place; a present file is returned as is.

    Args:
        name: registry name.
        url: override of the source (tests, mirrors): a plain URL.
        progress: called with (bytes so far, total or None); default: a tqdm bar.
        accept_new: accept a file whose sha256 differs from its weights.lock record.

    Raises:
        ConnectionError: the source cannot be reached or refuses (one-line message).
        WeightsMismatchError: the download's hash is wrong (nothing is kept).
    """
    entry = get(name)
    if entry.package:
        return locate(name)
    dest = path_of(entry)
    if dest.is_file():
        return dest
    if entry.manual and url is None:
        raise ConnectionError(f"{entry.filename} cannot be fetched automatically: "
                              f"{missing_message(entry)}")
    _install_group(_download(_group_of(entry, url), url, timeout, progress, bars=True), accept_new,
                   lambda e, p: None)
    return dest


def _group_of(entry: WeightFile, url: Optional[str]) -> list[WeightFile]:
    """The entry, plus the other missing members of its archive (one download serves all)."""
    if not entry.archive_member or url is not None:
        return [entry]
    return [entry] + [e for e in REGISTRY if e is not entry and e.archive_member
                      and (e.gdrive_id, e.url) == (entry.gdrive_id, entry.url)
                      and not path_of(e).is_file()]


def _host(entry: WeightFile, url: Optional[str]) -> str:
    if url:
        return S.host_of(url)
    if entry.kind == "huggingface":
        return S.host_of(S.hf_endpoint() or "https://huggingface.co")
    if entry.kind == "gdrive":
        return "drive.google.com"
    return S.host_of(entry.url)


def plan(names: Iterable[str]) -> tuple[list[list[WeightFile]], list[WeightFile]]:
    """(downloads to make, each a list of the entries it yields; entries already there)."""
    groups, present, seen = [], [], set()
    for n in dict.fromkeys(names):
        e = get(n)
        if e.name in seen:
            continue
        if path_of(e).is_file():
            present.append(e)
            seen.add(e.name)
            continue
        g = [e] if e.package else _group_of(e, None)
        seen.update(x.name for x in g)
        groups.append(g)
    return groups, present


def size_text(mb: Optional[float]) -> str:
    if mb is None:
        return "size unknown"
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def total_text(entries: Iterable[WeightFile]) -> str:
    """"1.9 GB" / "1.9 GB + 4 files of unknown size" / "size unknown"."""
    entries = list(entries)
    known = [e.size_mb for e in entries if e.size_mb is not None]
    unknown_n = len(entries) - len(known)
    if not known:
        return "size unknown"
    more = f" + {unknown_n} file{'s' * (unknown_n != 1)} of unknown size" if unknown_n else ""
    return size_text(sum(known)) + more


def fetch_many(names: Iterable[str], *, accept_new: bool = False, url: Optional[str] = None,
               bars: bool = True, out=None, err=None) -> int:
    """Fetch several entries, printing the plan (files, sizes, licenses, non-commercial ones
    marked) first and one line per download after; never prompts.

    Returns:
        the number of downloads that failed (each printed as one line on ``err``).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    groups, present = plan(names)
    entries = [e for g in groups for e in g]
    for e in present:
        print(f"present  {e.name:20s} {path_of(e)}", file=out)
    if not groups:
        print("nothing to fetch: every file asked for is present", file=out)
        return 0
    print(f"fetching {len(entries)} file(s) in {len(groups)} download(s), {total_text(entries)}, "
          f"into {paths.weights_dir()}:", file=out)
    for e in entries:
        mark = "  [NON-COMMERCIAL]" if e.non_commercial else ""
        print(f"  {e.name:20s} {e.kind:12s} {size_text(e.size_mb):>12s}  {e.license}{mark}", file=out)
    if any(e.non_commercial for e in entries):
        print("  [NON-COMMERCIAL]: research and non-commercial use only; each file keeps its "
              "own license", file=out)
    out.flush()
    failed, down = 0, {}
    for g in groups:
        label = ", ".join(e.name for e in g) + f" ({', '.join(e.filename for e in g)})"
        first = g[0]
        host = None if first.package else _host(first, url)
        try:
            if first.package:
                locate(first.name)  # present checked above: not installed
            if first.manual and url is None:
                raise ConnectionError(f"cannot be fetched automatically: {first.manual}; "
                                      f"place it as {path_of(first)}")
            if host in down:
                raise ConnectionError(f"skipped: {host} unreachable ({down[host]})")
            _install_group(_download(g, url, S.URL_TIMEOUT, None, bars), accept_new,
                           lambda e, p: print(f"fetched  {e.name:20s} {p}", file=out))
        except (ConnectionError, WeightsMismatchError, MissingWeightsError, OSError) as e:
            if isinstance(e, S.SourceUnreachable) and host:
                down[host] = "see above"
            failed += 1
            print(f"vfr-bench: fetch failed: {label}: {S.one_line(e, 400)}", file=err)
        out.flush()
        err.flush()
    return failed


# --- what methods and metrics need -------------------------------------------------------------
def weights_for_method(name: str) -> list[str]:
    """Registry names method ``name`` may need on any split: a method whose weights depend on
    the split (FLAIR's task) is asked once per degradation the split recipes use."""
    from vfr_bench.datasets.recipes import load_recipe, recipe_names
    from vfr_bench.methods import build_method
    found = []
    for deg in ["blind"] + sorted({load_recipe(r).degradation for r in recipe_names()}):
        m = build_method(name, None, deg)  # built for that split, as bench does
        if m.applicable(deg) is None:
            found += m.required_weights()
    return list(dict.fromkeys(found))


def default_metric_weights() -> list[str]:
    from vfr_bench.metrics import DEFAULT_METRICS, build_metric
    return list(dict.fromkeys(w for n in DEFAULT_METRICS for w in build_metric(n).weights))


def weights_for(methods: Iterable[str]) -> list[str]:
    """What ``weights fetch --for METHOD,...`` fetches: the methods' weights (``all``: every
    method) plus the default metrics' weights."""
    from vfr_bench.methods import method_names
    methods = list(methods)
    if "all" in methods:
        methods = method_names()
    names = [w for m in methods for w in weights_for_method(m)]
    return list(dict.fromkeys(names + default_metric_weights()))


def fetch_hint(names: Iterable[str]) -> str:
    """One line telling how to fetch the missing files ``names``: ``make weights`` when the
    default set covers them, else the exact ``vfr-bench weights fetch`` command."""
    names = [n for n in dict.fromkeys(names) if not get(n).package]
    if not names:
        return ""
    entries = [get(n) for n in names]
    what = f"{len(entries)} file{'s' * (len(entries) != 1)}, {total_text(entries)}"
    cmd = ("make weights" if set(names) <= set(weights_for(["all"]))
           else "vfr-bench weights fetch " + " ".join(names))
    return f"fetch the missing weights ({what}): {cmd}"
