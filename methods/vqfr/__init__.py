"""VQFR v1 and v2 (Gu et al., ECCV 2022; official code https://github.com/TencentARC/VQFR).

``vqfr_v1_arch.VQFRv1`` and ``vqfr_v2_arch.VQFRv2`` hold the networks (official
parameter names), ``blocks_arch`` their shared blocks, ``checkpoint.vqfr_state_dict``
the official checkpoint loading rule.
"""
from .checkpoint import vqfr_state_dict
from .vqfr_v1_arch import VQFRv1
from .vqfr_v2_arch import VQFRv2

__all__ = ["VQFRv1", "VQFRv2", "vqfr_state_dict"]
