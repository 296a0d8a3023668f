"""``vfr-bench degrade``: build a split from a recipe and HQ clips; ``--verify`` re-hashes it.

Every clip is processed independently with the generator seeded by (seed, clip id) and
torch limited to one thread, so the bytes do not depend on clip order, worker count or
machine load. Per clip: read the HQ frames, align them to the FFHQ 512 template when they
are not aligned already (given annotation landmarks, else a detector; see
:mod:`vfr_bench.align`), sample the recipe's parameters, render LQ (and mask), write PNGs.
Frames are taken as aligned as they are only when the source is a built split, ``--aligned``
says so, or they are 512x512 and pass :mod:`~vfr_bench.datasets.alignment_check`; each clip's
manifest entry records how that was decided. A clip that cannot be used is listed under
``skipped`` with the reason; when no clip is usable nothing is written.
"""
from __future__ import annotations

import contextlib
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

from vfr_bench.datasets import degradations as D
from vfr_bench.datasets.recipes import Recipe, load_recipe, render, sample_params
from vfr_bench.datasets.sources import HQClip, SourceError, list_clips, read_annotation
from vfr_bench.datasets.splits import (SplitError, frame_files, make_split_dir, read_split, replace_folder,
                                       sha256_bytes, write_manifest)
from vfr_bench.results import NotWritableError, check_writable

FACE = 512


class DegradeError(RuntimeError):
    """The split cannot be built as asked (output exists or is not writable, no source, no usable
    clip); the message says what to do."""


@contextlib.contextmanager
def _one_thread():
    n, nc = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
        cv2.setNumThreads(nc)


def _write_frames(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        img = f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f"{i:05d}.png"), img)


class _NotAligned(ValueError):
    """A 512x512 clip that could not be confirmed aligned and had no face to align it with."""


def _align(clip: HQClip, frames: np.ndarray, detector: str, aligned: bool = False) -> tuple[np.ndarray, dict]:
    """FFHQ-512 crops of a clip and what was done, with how it was decided (recorded in the manifest)."""
    from vfr_bench import align as A
    from vfr_bench.datasets.alignment_check import check_alignment
    size = frames.shape[1:3]
    as_is = {"backend": "none", "note": "frames taken as FFHQ-aligned 512 crops"}
    if aligned:
        if size != (FACE, FACE):
            raise ValueError(f"--aligned, but its frames are {size[1]}x{size[0]}, not FFHQ-aligned "
                             f"{FACE}x{FACE} crops")
        return frames, {**as_is, "decided_by": "--aligned"}
    if clip.aligned:
        return frames, {**as_is, "decided_by": "source is a built split (aligned when it was built)"}
    landmarks, check = None, None
    if clip.annotation is not None:
        decided = f"annotation {clip.annotation.name}"
        landmarks, _ = read_annotation(clip.annotation)
        if len(landmarks) != len(frames):
            raise ValueError(f"annotation {clip.annotation.name} has {len(landmarks)} frames, "
                             f"the clip {len(frames)}")
    elif size == (FACE, FACE):
        check = check_alignment(frames)
        if check.aligned:
            return frames, {**as_is, "decided_by": "landmark check", "check": check.as_dict()}
        decided = "landmark check"
    else:
        decided = f"frame size {size[1]}x{size[0]} is not {FACE}x{FACE}"
    try:
        res = A.align_clip(frames, landmarks, detector=detector)
    except A.NoFaceError:
        if check is not None:
            raise _NotAligned(f"512x512 frames that could not be confirmed FFHQ-aligned ({check.reason}) and "
                              f"no face was found to align them; pass --aligned if they are aligned crops") from None
        raise
    out = {"backend": res.backend, "decided_by": decided, "smoothing_sigma": A.SMOOTH_SIGMA,
           "matrices": np.round(res.matrices, 6).tolist()}
    if check is not None:
        out["check"] = check.as_dict()
    return res.faces, out


def process_clip(recipe: Recipe, seed: int, clip: HQClip, root: Path, detector: str = "auto",
                 aligned: bool = False) -> dict:
    """Degrade one clip into ``root/clips/<id>/``; returns its manifest entry or
    ``{"id", "skipped": reason}``. Real-footage recipes align only (:mod:`.real`)."""
    from vfr_bench.datasets import real
    if real.is_real(recipe):
        return real.process_real_clip(recipe, seed, clip, root, detector)
    try:
        # C-contiguous: dlib (the landmark check, the HOG aligner) ignores numpy strides.
        frames = np.ascontiguousarray(clip.read())
    except Exception as e:
        return {"id": clip.id, "skipped": f"unreadable: {e}"}
    try:
        with _one_thread():
            hq, alignment = _align(clip, frames, detector, aligned)
            gen = D.clip_generator(seed, clip.id)
            params = sample_params(recipe, clip.id, len(hq), gen=gen)
            lq, mask = render(recipe, params, hq, gen)
    except Exception as e:
        from vfr_bench.align import NoFaceError
        reason = ("no face found in any frame" if isinstance(e, NoFaceError) else str(e) if isinstance(e, _NotAligned)
                  else f"{type(e).__name__}: {e}")
        return {"id": clip.id, "skipped": reason}
    base = f"clips/{clip.id}"
    _write_frames(root / base / "gt", hq)
    _write_frames(root / base / "lq", lq)
    entry = {"id": clip.id, "n_frames": len(hq), "fps": clip.fps, "gt": f"{base}/gt", "lq": f"{base}/lq",
             "params": params, "alignment": alignment}
    if mask is not None:
        _write_frames(root / base / "mask", np.repeat((mask * 255).astype(np.uint8)[None], len(hq), 0))
        entry["mask"] = f"{base}/mask"
    return entry


def _mp_context():
    """Workers fork from a clean server process that imported this module once (no torch or
    OpenMP threads inherited, and no re-import per pool); plain spawn where there is no fork."""
    import multiprocessing as mp
    if "forkserver" in mp.get_all_start_methods():
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return get_context("spawn")


def _run(args):
    return process_clip(*args)


@dataclass
class DegradeResult:
    root: Path
    manifest: dict

    @property
    def skipped(self) -> list[dict]:
        return self.manifest["skipped"]


def degrade(recipe: str | Recipe, src: str | Path, out: str | Path, seed: Optional[int] = None,
            workers: int = 1, overwrite: bool = False, progress: bool = True,
            detector: str = "auto", aligned: bool = False) -> DegradeResult:
    """Build a split; see the module docstring.

    Args:
        aligned: take every source clip as FFHQ-aligned 512x512 crops (no landmark check).

    Raises:
        UnknownNameError: unknown recipe or source split.
        DegradeError: ``out`` is a non-empty folder and ``overwrite`` is False, ``out`` cannot be
            written, ``src`` does not exist, or no clip is usable (nothing is written then).
    """
    from vfr_bench import __version__
    from vfr_bench.datasets import real
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    seed = recipe.seed if seed is None else int(seed)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise DegradeError(f"{out} exists and is not empty; pass --overwrite to replace it")
    try:
        check_writable(out.parent)
        if out.is_dir():
            check_writable(out)
        clips, src_desc = list_clips(src)
    except (NotWritableError, SourceError, SplitError) as e:
        raise DegradeError(str(e)) from None
    if not clips:
        raise DegradeError(f"no clips in {src} (expected frame folders or mp4/mov/mkv/avi files)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_split_dir(out.parent, f".{out.name}-")
    jobs = [(recipe, seed, c, tmp, detector, aligned) for c in clips]
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc=f"degrade {recipe.name}", unit="clip", disable=not progress)
        if workers > 1:
            with ProcessPoolExecutor(workers, mp_context=_mp_context()) as ex:
                results = []
                for r in ex.map(_run, jobs):
                    results.append(r)
                    bar.update()
        else:
            results = []
            for j in jobs:
                results.append(_run(j))
                bar.update()
        bar.close()
        entries = [r for r in results if "skipped" not in r]
        skipped = [{"id": r["id"], "reason": r["skipped"]} for r in results if "skipped" in r]
        if not entries:
            shown = "; ".join(f"{s['id']}: {s['reason']}" for s in skipped[:3])
            more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            raise DegradeError(f"no usable clip in {src}, nothing written; all {len(skipped)} skipped: "
                               f"{shown}{more}")
        backends = sorted({e["alignment"]["backend"] for e in entries})
        manifest = write_manifest(tmp, {
            "name": recipe.name, "version": recipe.version, "seed": seed,
            "degradation": recipe.degradation, "source": recipe.source, "recipe": recipe.as_dict(),
            "hq_source": src_desc, "alignment": backends, "aligned_flag": aligned,
            "clips": entries, "skipped": skipped,
            **real.manifest_fields(recipe),
            "created_with": {"vfr_bench": __version__, "src": str(src), "workers": workers}})
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DegradeResult(out, manifest)


def verify(root: str | Path) -> list[str]:
    """Re-hash every file of a built split; returns the mismatches (empty when intact).

    Raises:
        SplitError: no such folder, or its manifest is missing or corrupted.
    """
    split = read_split(Path(root))
    problems = []
    for clip in split.manifest["clips"]:
        listed = clip.get("files", {})
        for rel, digest in sorted(listed.items()):
            f = split.root / rel
            if not f.is_file():
                problems.append(f"{rel}: missing")
            elif sha256_bytes(f.read_bytes()) != digest:
                problems.append(f"{rel}: sha256 differs from the manifest")
        for key in ("lq", "gt", "mask"):
            if clip.get(key) and (split.root / clip[key]).is_dir():
                for f in frame_files(split.root / clip[key]):
                    if f.relative_to(split.root).as_posix() not in listed:
                        problems.append(f"{f.relative_to(split.root).as_posix()}: not in the manifest")
    return problems
