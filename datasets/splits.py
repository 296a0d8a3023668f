"""Built test splits on disk: manifest, clips, identity hash.

A split folder holds ``manifest.json`` and, per clip, folders of frames (``lq/``
at the degraded resolution, ``gt/``, optional ``mask/``). The manifest records
the recipe, seed, each clip's sampled parameters and the sha256 of every file;
the split's identity in results is :func:`manifest_hash`.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from vfr_bench import paths
from vfr_bench.registry import unknown

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
    gt: Optional[Path]
    mask: Optional[Path] = None


@dataclass(frozen=True)
class Split:
    name: str
    root: Path
    manifest: dict
    manifest_sha256: str
    clips: tuple[ClipEntry, ...]

    @property
    def degradation(self) -> str:
        """The degradation operator the split declares (``blind`` or a FLAIR operator name)."""
        return self.manifest.get("degradation", "blind")

    @property
    def has_gt(self) -> bool:
        """False for a real-footage split (manifest ``gt: none``): its clips hold LQ only."""
        return self.manifest.get("gt") != "none"

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


def read_split(root: Path) -> Split:
    """Load a split folder written by :func:`write_manifest`."""
    root = Path(root)
    manifest = json.loads((root / "manifest.json").read_text())
    clips = tuple(ClipEntry(c["id"], int(c["n_frames"]), float(c.get("fps", 25)), root / c["lq"],
                            root / c["gt"] if c.get("gt") else None,
                            root / c["mask"] if c.get("mask") else None)
                  for c in manifest["clips"])
    return Split(manifest["name"], root, manifest, manifest_hash(manifest), clips)


def built_splits() -> list[str]:
    d = paths.splits_dir()
    names = {p.parent.name for p in d.glob("*/manifest.json")} if d.is_dir() else set()
    return sorted(names | {"sample", "sample-real"})


def load_split(name: str) -> Split:
    """A split by name (``sample`` and ``sample-real`` are built on first use) or by folder path.

    Raises:
        UnknownNameError: no such split; the message lists the built ones.
    """
    if os.sep in name or Path(name).is_dir():
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
    if not (root / "manifest.json").is_file():
        raise unknown("split", name, built_splits())
    return read_split(root)
