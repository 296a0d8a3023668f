"""sr3 checkpoints hold one copy of the shared SPyNet per RFE module; the last one wins."""
from __future__ import annotations

import torch

from vfr_bench.fill import fill_state_dict
from vfr_bench.methods.flair.checkpoint import load_unet_state_dict, shared_module_prefixes
from vfr_bench.methods.flair.unet_sr3_arch import UNetSR3


def _small_sr3() -> UNetSR3:
    # RFE at both levels of a two-level UNet: 6 copies of the SPyNet, like the official model
    return UNetSR3(image_size=64, inner_channel=32, norm_groups=8, channel_mults=(1, 2),
                   attn_res=(), vsrpp_res=(64, 32), head_dim=32, num_frames=3)


def test_last_spynet_copy_wins():
    model = _small_sr3()
    (prefixes,) = shared_module_prefixes(model)
    assert len(prefixes) == 6
    filled = fill_state_dict(model.state_dict(), dtype=torch.float32)
    key = "basic_module.0.basic_module.0.conv.weight"
    copies = [filled[p + key] for p in prefixes]
    assert not any(torch.equal(copies[-1], c) for c in copies[:-1])  # fill differs per copy

    load_unet_state_dict(model, filled)
    spynet = model.downs[1].vsrpp.wrapped_module.spynet
    assert all(b.vsrpp.wrapped_module.spynet is spynet
               for b in model.modules() if hasattr(b, "vsrpp"))
    last = prefixes[-1]
    for k, v in spynet.state_dict().items():
        assert torch.equal(v, filled[last + k]), k
    # every other entry is taken as given
    loaded = model.state_dict()
    for k, v in filled.items():
        if not any(k.startswith(p) for p in prefixes):
            assert torch.equal(loaded[k], v), k


def test_plain_load_state_dict_agrees():
    """The official loader (plain strict load_state_dict) ends with the same SPyNet."""
    a, b = _small_sr3(), _small_sr3()
    filled = fill_state_dict(a.state_dict(), dtype=torch.float32)
    load_unet_state_dict(a, filled)
    b.load_state_dict(filled, strict=True)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
