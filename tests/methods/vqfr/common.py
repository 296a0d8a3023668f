"""Helpers for the VQFR tests: official constructor options -> our kwargs, hooks, comparisons."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from tests.helpers import excess_over_storage  # noqa: F401 (re-exported for the VQFR tests)
from vfr_bench.fill import fill_state_dict
from vfr_bench.methods.vqfr.postprocess import dec_to_rgb01


def v1_kwargs(official: dict) -> dict:
    """Official ``VQFRv1`` constructor options -> ``VQFRv1`` kwargs.

    Asserts that the options our class fixes (level layout, quantizer type, warping
    at every level with the level number as conditioning downscale rate) have the
    values it hard-codes.
    """
    mults = official["channel_multipliers"]
    n = len(mults)
    top = f"Level_{2 ** (n - 1)}"
    assert official["proj_patch_size"] == official["align_from_patch"] == 2 ** (n - 1)
    assert official["resolution_scale_rates"] == [1] + [2] * (n - 1)
    assert official["quant_level"] == [top]
    assert official["inpfeat_extraction_opt"]["in_dim"] == 3
    cond = official["inpfeat_extraction_opt"]["out_dim"]
    align = official["align_opt"]
    assert list(align) == [f"Level_{2 ** i}" for i in reversed(range(n))]
    groups = {opt["deformable_groups"] for opt in align.values()}
    assert len(groups) == 1
    for name, opt in align.items():
        assert opt["cond_channels"] == cond and opt["cond_downscale_rate"] == int(name.split("_")[1])
    (qname, q), = official["quantizer_opt"].items()
    assert qname == top and q["type"] == "L2VectorQuantizerKmeans"
    assert q["in_dim"] == official["base_channels"] * mults[-1]
    return dict(base_channels=official["base_channels"], channel_multipliers=tuple(mults),
                encoder_num_blocks=official["encoder_num_blocks"], decoder_num_blocks=official["decoder_num_blocks"],
                inpfeat_dim=cond, num_code=q["num_code"], code_dim=q["code_dim"], deformable_groups=groups.pop())


def v2_kwargs(official: dict) -> dict:
    """Official ``VQFRv2`` constructor options -> ``VQFRv2`` kwargs (asserting the fixed ones)."""
    q = official["quantizer_opt"]
    assert official["code_selection_mode"] == "Predict"
    assert q["type"] == "L2VectorQuantizer" and q["code_dim"] == official["code_dim"]
    assert q["spatial_size"] == [16, 16]  # 512 input / 32
    assert official["align_opt"]["cond_channels"] == official["inpfeat_dim"]
    keep = ("base_channels", "num_enc_blocks", "use_enc_attention", "num_dec_blocks", "use_dec_attention",
            "code_dim", "inpfeat_dim")
    return dict(**{k: official[k] for k in keep}, channel_multipliers=tuple(official["channel_multipliers"]),
                num_code=q["num_code"], deformable_groups=official["align_opt"]["deformable_groups"])


# golden name -> (module path, "input" or "output", index into a tuple or None)
HookSpec = dict[str, tuple[str, str, "int | None"]]


def run_frames(model: torch.nn.Module, x: np.ndarray, dtype: torch.dtype, hooks: HookSpec,
               call: Callable[[torch.nn.Module, torch.Tensor], dict]) -> dict[str, np.ndarray]:
    """Fill the weights in ``dtype``, run the frames of ``x`` one at a time, collect outputs and hooks.

    Every op of VQFR is per-sample, so frame-by-frame equals the batched call (to GEMM
    blocking, ~1e-15) at a fraction of the peak memory.

    Args:
        model: the network (any dtype; converted in place).
        x: [B,3,H,W] float32 network input in [-1,1].
        dtype: computation dtype.
        hooks: intermediates to capture.
        call: ``call(model, frame) -> {name: tensor}`` (batch dim first).

    Returns:
        name -> numpy array, frames concatenated along the first axis.
    """
    model.to(dtype).eval()
    model.load_state_dict(fill_state_dict(model.state_dict(), dtype), strict=True)
    modules = dict(model.named_modules())
    caught: dict[str, list[np.ndarray]] = {}
    handles = []

    def keep(name, value, index):
        value = value if index is None else value[index]
        caught.setdefault(name, []).append(value.detach().cpu().numpy().copy())

    for name, (path, where, index) in hooks.items():
        if where == "input":
            handles.append(modules[path].register_forward_pre_hook(
                lambda m, args, name=name, index=index: keep(name, args[0], index)))
        else:
            handles.append(modules[path].register_forward_hook(
                lambda m, args, out, name=name, index=index: keep(name, out, index)))
    try:
        with torch.no_grad():
            for i in range(x.shape[0]):
                frame = torch.from_numpy(x[i:i + 1]).to(dtype)
                out = call(model, frame)
                for name, value in out.items():
                    caught.setdefault(name, []).append(value.cpu().numpy())
                del out, frame
    finally:
        for h in handles:
            h.remove()
    return {name: np.concatenate(parts) for name, parts in caught.items()}


def max_abs_np(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def demo_u8(dec: np.ndarray) -> np.ndarray:
    """The demo's saved image of a network output: [B,3,H,W] -> [B,H,W,3] uint8 RGB.

    ``dec_to_rgb01`` (our method code), then x255 and round half to even as BasicSR's
    ``tensor2img`` does.
    """
    rgb01 = dec_to_rgb01(torch.from_numpy(dec)).numpy().transpose(0, 2, 3, 1)
    return np.round(rgb01 * 255.0).astype(np.uint8)


def u8_report(ours: np.ndarray, golden: np.ndarray) -> tuple[int, int]:
    """(max level difference, number of differing values) of two uint8 images."""
    diff = np.abs(ours.astype(np.int16) - golden.astype(np.int16))
    return int(diff.max()), int((diff > 0).sum())


def float_keys(golden: dict, skip: Sequence[str] = ("input",)) -> list[str]:
    return [k for k, v in golden.items() if v.dtype.kind == "f" and k not in skip]
