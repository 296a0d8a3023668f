"""The weights registry: every network file vfr-bench can use, listed once.

Nothing is downloaded implicitly. Methods and metrics name the entries they need;
:func:`locate` returns the file or raises :class:`MissingWeightsError` naming the
file, the folder and the official URL. Checkpoints keep their own licenses (the
``license`` field, also in the README).

File names follow the official releases. Where a name carries a sha256 prefix
(basicsr/torchvision convention, ``KEEP-a1a14d46.pth``) :func:`verify` checks it.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Optional

from vfr_bench import paths
from vfr_bench.registry import unknown

S_LAB = "NTU S-Lab License 1.0 (non-commercial)"
BSD3_TV = "BSD-3-Clause (torchvision)"
FACEXLIB = "MIT (facexlib release)"


@dataclass(frozen=True)
class WeightFile:
    """One network file.

    Attributes:
        name: registry name users type (``vfr-bench weights path keep``).
        filename: the official file name.
        url: official download URL, or the page to download from by hand.
        license: license note shown beside the file.
        sha256: full hash when the source publishes it.
        sha256_prefix: hash prefix carried in the file name.
        manual: the URL is a web page (Drive/Hugging Face folder, archive), so
            ``weights fetch`` cannot download it and says how to place the file.
        package: the file ships inside this installed Python package (under
            ``subdir``) instead of the weights folder.
        used_by: what needs it, for ``weights list``.
    """
    name: str
    filename: str
    url: str
    license: str
    sha256: Optional[str] = None
    sha256_prefix: Optional[str] = None
    manual: bool = False
    package: Optional[str] = None
    subdir: str = ""
    used_by: str = ""


_GH_CF = "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/"
_GH_FX = "https://github.com/xinntao/facexlib/releases/download/v0.1.0/"
_TV = "https://download.pytorch.org/models/"
_DICFACE = "https://huggingface.co/fudan-generative-ai/DicFace_model (ckpts/CodeFormer/)"
_FLAIR = ("https://drive.google.com/file/d/1dmF7pjN8N-T1UXdijO7kHGjqREAx0a9L/view "
          "(archive; unpack its checkpoints/ folder)")
_DLIB = "https://github.com/ageitgey/face_recognition_models (PyPI face-recognition-models)"

REGISTRY: tuple[WeightFile, ...] = (
    # methods
    WeightFile("codeformer", "codeformer.pth", _GH_CF + "codeformer.pth", S_LAB,
               used_by="codeformer, flair (enhancement)"),
    WeightFile("keep", "KEEP-a1a14d46.pth",
               "https://github.com/jnjaby/KEEP/releases/download/v0.1.0/KEEP-a1a14d46.pth", S_LAB,
               sha256_prefix="a1a14d46", used_by="keep"),
    WeightFile("vqfr-v1", "VQFR_v1-33a1fac5.pth",
               "https://drive.google.com/drive/folders/1lczKYEbARwe27FJlKoFdng7UnffGDjO2",
               "Apache-2.0 (VQFR)", sha256_prefix="33a1fac5", manual=True, used_by="vqfr-v1"),
    WeightFile("vqfr-v2", "VQFR_v2.pth",
               "https://github.com/TencentARC/VQFR/releases/download/v2.0.0/VQFR_v2.pth",
               "Apache-2.0 (VQFR)", used_by="vqfr-v2"),
    WeightFile("dicface-bfr", "bfr_100k.pth", _DICFACE, "see the DicFace model card",
               manual=True, used_by="dicface"),
    WeightFile("dicface-color", "color_100k.pth", _DICFACE, "see the DicFace model card",
               manual=True, used_by="dicface-color"),
    WeightFile("dicface-inpaint", "inpainting_100k.pth", _DICFACE, "see the DicFace model card",
               manual=True, used_by="dicface-inpaint"),
    WeightFile("flair-x8-bicubic", "flair_x8_bicubic.pt", _FLAIR, "see wustl-cig/FLAIR",
               manual=True, used_by="flair (x8-bicubic)"),
    WeightFile("flair-x16-bicubic", "flair_x16_bicubic.pt", _FLAIR, "see wustl-cig/FLAIR",
               manual=True, used_by="flair (x16-bicubic)"),
    WeightFile("flair-gaussian", "flair_gaussian.pt", _FLAIR, "see wustl-cig/FLAIR",
               manual=True, used_by="flair (x4-gaussian)"),
    WeightFile("flair-jpeg", "flair_jpeg.pt", _FLAIR, "see wustl-cig/FLAIR",
               manual=True, used_by="flair (x4-gaussian-jpeg)"),
    # face helpers
    WeightFile("retinaface-resnet50", "detection_Resnet50_Final.pth",
               _GH_CF + "detection_Resnet50_Final.pth", "MIT (Pytorch_Retinaface / facexlib)",
               used_by="flair enhancement, face alignment"),
    WeightFile("parsenet", "parsing_parsenet.pth", _GH_CF + "parsing_parsenet.pth",
               "MIT (facexlib)", used_by="flair enhancement, restore paste-back"),
    # metric backbones
    WeightFile("alexnet", "alexnet-owt-7be5be79.pth", _TV + "alexnet-owt-7be5be79.pth", BSD3_TV,
               sha256_prefix="7be5be79", used_by="LPIPS (alex)"),
    WeightFile("vgg16", "vgg16-397923af.pth", _TV + "vgg16-397923af.pth", BSD3_TV,
               sha256_prefix="397923af", used_by="LPIPS (vgg)"),
    WeightFile("arcface-ir-se50", "recognition_arcface_ir_se50.pth",
               _GH_FX + "recognition_arcface_ir_se50.pth", FACEXLIB, used_by="IDS[arcface]"),
    WeightFile("awing-wflw", "alignment_WFLW_4HG.pth", _GH_FX + "alignment_WFLW_4HG.pth",
               FACEXLIB, used_by="AKD[awing98]"),
    WeightFile("raft-large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
               _TV + "raft_large_C_T_SKHT_V2-ff5fadd5.pth", BSD3_TV, sha256_prefix="ff5fadd5",
               used_by="E_warp[raft]"),
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


class MissingWeightsError(FileNotFoundError):
    """A registered file is not on disk; the message says where to put it and where from."""


class WeightsMismatchError(ValueError):
    """A file's sha256 does not match the registry."""


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
    how = (f"download it from {entry.url} and place it as {where}" if entry.manual
           else f"run: vfr-bench weights fetch {entry.name}")
    return f"{entry.filename} not in {where.parent} ({entry.url}); {how}"


def locate(name: str) -> Path:
    """Path of a registered file.

    Raises:
        MissingWeightsError: the file is absent; the message names file, folder and URL.
    """
    entry = get(name)
    p = path_of(entry)
    if not p.is_file():
        raise MissingWeightsError(missing_message(entry))
    return p


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_hash(entry: WeightFile, digest: str) -> None:
    """Raise WeightsMismatchError if ``digest`` disagrees with what the registry knows."""
    if entry.sha256 and digest != entry.sha256:
        raise WeightsMismatchError(f"{entry.filename}: sha256 {digest} != expected {entry.sha256}")
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix):
        raise WeightsMismatchError(
            f"{entry.filename}: sha256 {digest[:12]}... does not start with "
            f"{entry.sha256_prefix} (the prefix in its official name)")


def verify(name: str) -> str:
    """sha256 of a present file after checking it against the registry; raises if absent or wrong."""
    entry = get(name)
    digest = sha256_file(locate(name))
    check_hash(entry, digest)
    return digest


def load_entry(name: str, key: str = "params_ema") -> dict:
    """``torch.load`` a registered checkpoint (CPU, tensors only) and return its ``key`` entry,
    as basicsr-trained releases store their EMA weights under ``params_ema``.

    Raises:
        MissingWeightsError: the file is absent.
        KeyError: the file has no ``key`` entry (not the official release); names file and keys found.
    """
    import torch
    path = locate(name)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or key not in ckpt:
        found = list(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise KeyError(f"{path}: no '{key}' entry (found {found}); expected the official "
                       f"{get(name).filename}, see: vfr-bench weights list")
    return ckpt[key]


def fetch(name: str, url: Optional[str] = None, timeout: float = 30.0,
          progress: Optional[Callable[[int, Optional[int]], None]] = None) -> Path:
    """Download a registered file with partial-file resume, hash check and atomic rename.

    A ``<file>.part`` left by an interrupted download is continued with an HTTP Range
    request. The finished file is hashed before it is renamed into place, so the
    weights folder never holds a partial or unverified file.

    Args:
        name: registry name.
        url: override of the registry URL (tests, mirrors).
        progress: called with (bytes so far, total or None).

    Raises:
        ConnectionError: the URL cannot be reached (e.g. offline); the message says
            where to put the file by hand.
        WeightsMismatchError: the download's hash is wrong (the partial file is removed).
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
    url = url or entry.url
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is already complete
            resp = None
        else:
            raise ConnectionError(f"cannot download {entry.filename} from {url}: HTTP {e.code}. "
                                  f"Place it by hand as {dest}") from e
    except (urllib.error.URLError, OSError) as e:
        raise ConnectionError(f"cannot download {entry.filename} from {url} ({e}); offline? "
                              f"Place it by hand as {dest}") from e
    if resp is not None:
        with resp:
            resumed = have and resp.status == 206
            mode = "ab" if resumed else "wb"
            done = have if resumed else 0
            length = resp.headers.get("Content-Length")
            total = done + int(length) if length is not None else None
            with open(part, mode) as f:
                while block := resp.read(1 << 20):
                    f.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
    digest = sha256_file(part)
    try:
        check_hash(entry, digest)
    except WeightsMismatchError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest
