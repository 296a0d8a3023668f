"""Built test splits on disk: manifest, clips, identity hash.

A split folder holds ``manifest.json`` and, per clip, folders of frames (``lq/``
at the degraded resolution, ``gt/``, optional ``mask/``). The manifest records
the recipe, seed, each clip's sampled parameters and the sha256 of every file;
the split's identity in results is :func:`manifest_hash`; its display name is its folder's
name (two splits built from one recipe into different folders are different splits, and two
folders of the same name holding different manifests are told apart by their hash).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from vfr_bench import paths
from vfr_bench.registry import UnknownNameError, unknown

FRAME_EXTS = (".png", ".jpg", ".jpeg")
# Fields that describe how a split was made but not what it holds; excluded from its hash.
_NOT_IDENTITY = ("created_with",)


@dataclass(frozen=True)
class ClipEntry:
    """One clip of a split. Paths are absolute; ``gt`` is None in a real-footage split."""
    id: str
    n_frames: int
    fps: float
    lq: Path
    gt: Optional[Path]  # None on splits without ground truth (real footage)
    mask: Optional[Path] = None


class SplitError(ValueError):
    """A split folder that cannot be read (missing, no manifest, corrupted manifest)."""


@dataclass(frozen=True)
class Split:
    """A built split.

    Attributes:
        name: display name, the split folder's name (``vfhq-mild``).
        root: the split folder.
        manifest: the parsed ``manifest.json``.
        manifest_sha256: the split's identity (:func:`manifest_hash`).
        clips: its clips, in manifest order.
    """
    name: str
    root: Path
    manifest: dict
    manifest_sha256: str
    clips: tuple[ClipEntry, ...]

    @property
    def recipe(self) -> str:
        """Name of the recipe the split was built with (``vfhq-mild``; ``sample`` for the sample)."""
        return (self.manifest.get("recipe") or {}).get("name") or self.manifest.get("name", "")

    @property
    def degradation(self) -> str:
        """The degradation operator the split declares (``blind`` or a FLAIR operator name)."""
        return self.manifest.get("degradation", "blind")

    @property
    def has_gt(self) -> bool:
        """False for a real-footage split (manifest ``gt: none``, clips hold LQ only): only GT-free
        metrics apply."""
        return self.manifest.get("gt") != "none" and all(c.gt is not None for c in self.clips)

    @property
    def track(self) -> str:
        """``real`` (no GT: GT-free metrics only) or ``synthetic`` (degraded from GT)."""
        return "synthetic" if self.has_gt else "real"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTS)


def manifest_hash(manifest: dict) -> str:
    """sha256 of the canonical JSON of the manifest's identity fields."""
    ident = {k: v for k, v in manifest.items() if k not in _NOT_IDENTITY}
    return sha256_bytes(json.dumps(ident, sort_keys=True, separators=(",", ":")).encode())


def write_manifest(root: Path, manifest: dict) -> dict:
    """Add the sha256 of every clip file to ``manifest`` and write it atomically."""
    root = Path(root)
    for clip in manifest["clips"]:
        files = {}
        for key in ("lq", "gt", "mask"):
            if clip.get(key):
                for f in frame_files(root / clip[key]):
                    files[f.relative_to(root).as_posix()] = sha256_bytes(f.read_bytes())
        clip["files"] = files
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, root / "manifest.json")
    return manifest


def make_split_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` to build a split in before it is moved into place.

    ``tempfile.mkdtemp`` makes it 0700; a split is data to share, so its mode follows the
    umask like any folder the user creates (0755 under the usual umask 022).
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)
    return tmp


def replace_folder(new: Path, out: Path) -> None:
    """Move the finished folder ``new`` to ``out`` (a split, a study export).

    An existing ``out`` is renamed aside first and deleted only once ``new`` is in place, so a
    kill at any moment leaves the old or the new folder (the old one at worst under a hidden
    ``.NAME.old-PID`` name), never neither.
    """
    old = None
    if out.exists() or out.is_symlink():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()


def read_split(root: Path) -> Split:
    """Load a split folder written by :func:`write_manifest`; its name is the folder's name.

    Raises:
        SplitError: no such folder, no ``manifest.json``, or a manifest that cannot be read.
    """
    root = Path(root)
    name = Path(os.path.abspath(root)).name
    if not root.is_dir():
        raise SplitError(f"no split folder {root}: give the path of a built split folder (one with "
                         f"manifest.json) or a built split name (see: vfr-bench splits)")
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise SplitError(f"{root} has no manifest.json, so it is not a built split; build one with "
                         f"vfr-bench degrade --recipe RECIPE --src HQ_DIR --out {root}")
    try:
        manifest = json.loads(mpath.read_text())
        clips = tuple(ClipEntry(str(c["id"]), int(c["n_frames"]), float(c.get("fps", 25)), root / c["lq"],
                                root / c["gt"] if c.get("gt") else None,
                                root / c["mask"] if c.get("mask") else None)
                      for c in manifest["clips"])
        ident = manifest_hash(manifest)
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as e:
        why = f"missing {e}" if isinstance(e, KeyError) else str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SplitError(f"{mpath} is corrupted ({why}); rebuild the split with vfr-bench degrade "
                         f"(same recipe, source and seed give the same bytes)") from None
    return Split(name, root, manifest, ident, clips)


def built_split_dirs() -> list[Path]:
    """Folders of ``$VFR_BENCH_HOME/splits`` that hold a ``manifest.json`` (built splits)."""
    d = paths.splits_dir()
    return sorted(p.parent for p in d.glob("*/manifest.json")) if d.is_dir() else []


def built_splits() -> list[str]:
    """Split names ``--split`` accepts: the built ones, and ``sample`` (built on first use)."""
    return sorted({p.name for p in built_split_dirs()} | {"sample", "sample-real"})


def load_split(name: str) -> Split:
    """A split by name (``sample`` and ``sample-real`` are built on first use) or by folder path.

    Raises:
        UnknownNameError: no such split; the message lists the built ones.
        SplitError: the folder is not a readable split.
    """
    if os.sep in name or (os.altsep and os.altsep in name) or name in (".", "..") or Path(name).is_dir():
        return read_split(Path(name))
    root = paths.splits_dir() / name
    if name == "sample" and not (root / "manifest.json").is_file():
        from vfr_bench.datasets.sample import build_sample
        print(f"building the sample split in {root} (once)")
        build_sample(root)
    if name == "sample-real" and not (root / "manifest.json").is_file():
        from vfr_bench.datasets.sample_real import build_sample_real
        print(f"building the sample-real split in {root} (once)")
        build_sample_real(root)
    if not root.is_dir():
        e = unknown("split", name, built_splits())
        raise UnknownNameError(f"{e} (built splits are the folders of {paths.splits_dir()}); "
                               f"or give the path of a split folder, e.g. --split ./{name}")
    return read_split(root)
