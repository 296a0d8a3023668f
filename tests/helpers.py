"""Test utilities shared across the suite (import as ``from tests.helpers import ...``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def conformance_root() -> Path:
    """``$VFR_BENCH_CONFORMANCE`` or ``../shared/conformance`` beside the checkout."""
    return Path(os.environ.get("VFR_BENCH_CONFORMANCE", REPO.parent / "shared" / "conformance"))


def load_manifest(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def manifest_shapes(manifest: dict) -> dict[str, tuple[int, ...]]:
    """key -> shape, in the manifest's state-dict order."""
    return {k: tuple(e["shape"]) for k, e in manifest["state_dict"].items()}


def state_dict_shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def load_golden(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def max_abs(a, b) -> float:
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b), dtype=torch.float64)
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    return float((a - b).abs().max())


def excess_over_storage(ours, golden: np.ndarray) -> float:
    """max |ours - golden| beyond the golden's own storage rounding (half an ulp of it, in its dtype).

    Goldens are float64 results, some stored as float32, so a float64 re-implementation can
    only be compared up to that rounding (up to 9.5e-7 for values near 17.8 in float32;
    ~1e-16 relative for float64-stored goldens). Negative: within the rounding everywhere.
    """
    golden = np.asarray(golden)
    ours = np.asarray(ours, dtype=np.float64)
    assert ours.shape == golden.shape, f"shape {ours.shape} != {golden.shape}"
    half_ulp = np.spacing(np.abs(golden)).astype(np.float64) / 2
    return float((np.abs(ours - golden.astype(np.float64)) - half_ulp).max())


def make_split(root: Path, clips: dict, name: str = "tiny", degradation: str = "blind") -> Path:
    """Write a small split folder for tests.

    Args:
        clips: clip id -> (lq [T,h,w,3] uint8 RGB, gt [T,H,W,3] uint8 RGB).
    """
    import cv2
    from vfr_bench.datasets.splits import write_manifest
    entries = []
    for cid, (lq, gt) in clips.items():
        for sub, frames in (("lq", lq), ("gt", gt)):
            d = root / "clips" / cid / sub
            d.mkdir(parents=True, exist_ok=True)
            for i, f in enumerate(frames):
                cv2.imwrite(str(d / f"{i:05d}.png"), cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR))
        entries.append({"id": cid, "n_frames": len(gt), "fps": 25, "lq": f"clips/{cid}/lq",
                        "gt": f"clips/{cid}/gt"})
    write_manifest(root, {"name": name, "version": 1, "seed": 0, "degradation": degradation,
                          "clips": entries})
    return root


def run_dir(out: Path, method: str, split: str) -> Path:
    """The clip-record folder of (method, split) under a results root: ``<split>@<sha8>``."""
    found = sorted((Path(out) / method).glob(f"{split}@*"))
    assert len(found) == 1, f"expected one run folder for {method}/{split} in {out}, found {found}"
    return found[0]
