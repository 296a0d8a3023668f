"""Loading FLAIR UNet checkpoints (bare state dicts, strict).

FLAIR (Zou et al., WACV 2025, https://github.com/wustl-cig/FLAIR): the sr3 UNet shares one
SPyNet among its six RFE modules, so its state dict holds six copies of the SPyNet
entries (``downs.1``, ``downs.3``, ``ups.9``, ``ups.10``, ``ups.12``, ``ups.13``
``.vsrpp.wrapped_module.spynet.*``). The official ``load_state_dict`` copies every prefix
into the same module in state-dict order, so the last one, ``ups.13.…``, is what the
network uses. :func:`load_unet_state_dict` makes that explicit: every copy is replaced by
the last one before a strict load, so the result does not hinge on load order.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

__all__ = ["shared_module_prefixes", "load_unet_state_dict"]


def shared_module_prefixes(model: nn.Module) -> list[list[str]]:
    """Prefixes (``"a.b."``) of every module instance reachable under several names, in
    state-dict order; modules nested in a shared module are not listed separately."""
    names: dict[int, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):  # registration order
        if name and m.state_dict():  # stateless modules (shared Identity) do not matter
            names.setdefault(id(m), []).append(name + ".")
    shared = [v for v in names.values() if len(v) > 1]
    all_prefixes = {p for v in shared for p in v}

    def nested(prefix: str) -> bool:
        parent = prefix[:-1].rpartition(".")[0]
        while parent:
            if parent + "." in all_prefixes:
                return True
            parent = parent.rpartition(".")[0]
        return False

    return [v for v in shared if not nested(v[0])]


def load_unet_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                         assign: bool = False) -> None:
    """Strict load where every shared module takes the values of its LAST copy in state-dict
    order (what the official loader ends up with).

    Args:
        model: a FLAIR UNet (``UNetSR3`` or ``UNetNew``).
        state_dict: the checkpoint's state dict (official key names).
        assign: passed to ``load_state_dict`` (use the given tensors, e.g. into a model
            built on the ``meta`` device).

    Raises:
        RuntimeError: missing or unexpected keys or shape mismatch (``strict=True``).
    """
    sd = dict(state_dict)
    for prefixes in shared_module_prefixes(model):
        last = prefixes[-1]
        for key in [k for k in sd if k.startswith(last)]:
            suffix = key[len(last):]
            for p in prefixes[:-1]:
                if p + suffix in sd:
                    sd[p + suffix] = sd[key]
    model.load_state_dict(sd, strict=True, assign=assign)
