"""State dict of an official VQFR checkpoint (v1 ``VQFR_v1-33a1fac5.pth``, v2 ``VQFR_v2.pth``).

Loading rule of the official demo (``vqfr/demo_util.py`` in
https://github.com/TencentARC/VQFR): take ``params_ema`` when present, else ``params``;
the BasicSR test loader also strips a leading ``module.`` (DataParallel) from the keys.
No other key remapping: the keys equal our modules' names. No file I/O here; the caller
passes the object returned by ``torch.load``.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

__all__ = ["vqfr_state_dict"]

_PREFIX = "module."


def vqfr_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The network state dict inside a loaded VQFR checkpoint, ready for ``strict=True``.

    Args:
        checkpoint: the object ``torch.load`` returned for an official checkpoint.

    Returns:
        key -> tensor, ``params_ema`` preferred over ``params``, leading ``module.``
        removed from every key that has it.

    Raises:
        KeyError: neither ``params_ema`` nor ``params`` is in the checkpoint.
    """
    for name in ("params_ema", "params"):
        if name in checkpoint:
            params = checkpoint[name]
            break
    else:
        raise KeyError(f"VQFR checkpoint has neither 'params_ema' nor 'params' "
                       f"(top-level keys: {sorted(map(str, checkpoint))}); is it an official VQFR .pth?")
    return {(k[len(_PREFIX):] if k.startswith(_PREFIX) else k): v for k, v in params.items()}
