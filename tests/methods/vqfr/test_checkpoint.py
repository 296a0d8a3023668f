"""The official checkpoint loading rule on tiny fake checkpoints."""
import pytest
import torch

from vfr_bench.methods.vqfr.checkpoint import vqfr_state_dict


def test_prefers_params_ema_and_strips_module_prefix():
    ema, raw = torch.ones(2), torch.zeros(2)
    ckpt = {"params": {"a.weight": raw}, "params_ema": {"module.a.weight": ema, "b.module.bias": ema}}
    sd = vqfr_state_dict(ckpt)
    assert list(sd) == ["a.weight", "b.module.bias"]  # only a leading 'module.' is removed
    assert sd["a.weight"] is ema


def test_falls_back_to_params():
    raw = torch.zeros(3)
    assert vqfr_state_dict({"params": {"module.x": raw, "y": raw}}) == {"x": raw, "y": raw}


def test_missing_params_names_keys():
    with pytest.raises(KeyError, match="neither 'params_ema' nor 'params'.*state_dict"):
        vqfr_state_dict({"state_dict": {}})
