"""Reading checkpoint files as data, never as code.

A ``.pth`` file is a pickle, and unpickling can call any Python function the file names:
``torch.load(weights_only=False)`` (torch's default before 2.6) runs it. Every checkpoint
vfr-bench reads goes through :func:`load_checkpoint`, which uses torch's restricted
unpickler (``weights_only=True``: tensors, storages, containers and plain Python values
only, the zip and the legacy format alike) and turns a refusal into one error naming the
file. That unpickler had bypasses before torch 2.6 (CVE-2025-32434) and 2.10
(CVE-2026-24747), hence the ``torch>=2.10`` floor in setup.cfg. TorchScript archives
(``torch.jit.load``, the FVD I3D) are not pickles of Python objects and are not read here.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Sequence, Union

_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


class CheckpointError(ValueError):
    """A checkpoint holds Python objects (refused, so nothing in it runs) or cannot be read."""


def _replace_hint(path: Path) -> str:
    from vfr_bench import weights
    for entry in weights.REGISTRY:
        if entry.filename == path.name and not entry.package:
            return f"replace it with the official file from {entry.url} (see: vfr-bench weights list)"
    return "replace it with the official file (see: vfr-bench weights list)"


def load_checkpoint(path: Union[str, Path], allowed: Sequence = ()) -> object:
    """``torch.load(path, map_location="cpu", weights_only=True)``, with a clear refusal.

    Args:
        allowed: extra globals the restricted unpickler may rebuild (``torch.serialization.
            safe_globals``), e.g. numpy arrays in basicsr's FID statistics; never code.

    Returns:
        What the file holds: a state dict or a dict of them (tensors on the CPU).

    Raises:
        CheckpointError: the file names a Python object (a class, a function: loading
            it would run code), or it is truncated or not a PyTorch file. The message
            names the file and says to replace it.
        FileNotFoundError: no file at ``path``.
    """
    import torch
    path = Path(path)
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:
        found = _GLOBAL.search(str(e))
        why = (f"it contains Python objects ({found.group(1)}), not a plain tensor checkpoint"
               if found else "it is not a plain tensor checkpoint (damaged, or another format)")
        raise CheckpointError(f"{path} refused: {why}; {_replace_hint(path)}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        detail = str(e).split(". ")[0].strip() or type(e).__name__
        raise CheckpointError(f"{path} cannot be read as a PyTorch checkpoint ({detail}: truncated "
                              f"or not a checkpoint); {_replace_hint(path)}") from None
