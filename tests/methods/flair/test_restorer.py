"""FLAIR sampler and restorer pipeline with a small stand-in eps network (no checkpoints)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import max_abs
from vfr_bench.interface import ClipMeta
from vfr_bench.methods import build_method
from vfr_bench.methods.flair import operators, schedules
from vfr_bench.methods.flair.restorer import FlairConfig, FlairRestorer
from vfr_bench.methods.flair.sampler import sample_window


class StandInUNet(nn.Module):
    """Same call signature as the FLAIR UNets; eps from a fixed conv of [condition, x_t]."""

    def __init__(self, out_channels=3):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(6, out_channels, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.1)
            self.conv.bias.zero_()
        self.calls = []

    def forward(self, x, timesteps, low_res_input, num_frames, rnn_input=None,
                enable_cross_frames=True, vsrpp_weights=None):
        self.calls.append((num_frames, timesteps.dtype, float(timesteps[0])))
        cond = low_res_input.flatten(0, 1)
        # sr3 time input s = sqrt(alphabar): the oracle eps of x0 = cond, plus a small
        # x_t-dependent error (so seeds matter) that moves x0 by at most 0.05
        s = timesteps.to(x.dtype).view(-1, 1, 1, 1)
        err = 0.05 * s * torch.tanh(self.conv(torch.cat([cond, x], 1)))
        return (x - s * cond) / (1 - s**2).sqrt() + err


def _restorer(seed=0, steps=2, size=128, task="auto"):
    r = FlairRestorer("flair", FlairConfig(task=task, seed=seed, steps=steps, size=size,
                                           enhance=False), "x8-bicubic")
    r.attach({"net": StandInUNet()})
    return r


def _clip(t=12, h=16):
    """Smooth frames in [0.25, 0.75] at h x h (LQ of x8 at 128: the pseudo-inverse stays in range)."""
    g = torch.Generator().manual_seed(3)
    phase = torch.rand(t, 3, 1, 1, generator=g) * 6.28
    yy, xx = torch.meshgrid(torch.linspace(0, 3.14, h), torch.linspace(0, 3.14, h), indexing="ij")
    return 0.5 + 0.25 * torch.sin(xx + phase) * torch.cos(0.7 * yy)


def _meta(degradation="x8-bicubic", size=128):
    return ClipMeta("c0", 25.0, (size, size), None, degradation)


def test_x8_pipeline_two_windows_seeded():
    lq = _clip()
    r = _restorer()
    out = r.restore(lq, _meta())
    assert out.shape == (12, 3, 128, 128) and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    # windows of 10 and 5 frames, 2 steps each; sr3 gets float32 sqrt(alphabar)
    assert [c[0] for c in r.net.calls] == [10, 10, 5, 5]
    assert all(c[1] == torch.float32 for c in r.net.calls)
    assert torch.equal(out, _restorer().restore(lq, _meta()))
    assert max_abs(out, _restorer(seed=1).restore(lq, _meta())) >= 1 / 255 - 1e-7  # >= one 8-bit level


def test_x8_output_is_data_consistent():
    """gamma=1 and no enhancement: the last x0 is exactly projected, so A(output) = y up to the
    final clamp to [-1,1] and the 8-bit truncation (< 1/255 per pixel before A)."""
    lq = _clip()
    r = _restorer()
    out = r.restore(lq, _meta())
    op = operators.BicubicSR(8, 128)
    y = lq.double() * 2 - 1
    err = max_abs(op.A(out.double() * 2 - 1), y)
    assert err < 2 / 255 + 1e-6, err  # truncation error <= 1/255 in [0,1]; A has unit row sums
    # without truncation and clamping the residual is float32 round-off only
    sched = schedules.make_schedule("sr3", w=0.85, rho=0.85, noise_level=0.0, zeta=-1, num_steps=2)
    cond, _ = r.condition(lq[:10], type("T", (), {"family": "sr3"})())
    g = torch.Generator().manual_seed(0)
    x = sample_window(lambda x, t: r.net(x, sched.model_time_input(t, 10), cond[None], 10)[:, :3],
                      sched, op, cond, y[:10].float(), g)
    assert bool((x.abs() < 1).all())  # the final clamp is inactive on this clip
    assert max_abs(op.A(x.double()), y[:10]) < 1e-5  # float32 round-off only


def test_overlap_frames_imposed_at_every_step():
    lq = _clip()
    sched = schedules.make_schedule("sr3", w=0.85, rho=0.85, noise_level=0.0, zeta=-1, num_steps=3)
    op = operators.BicubicSR(8, 128)
    net = StandInUNet()
    cond = torch.nn.functional.interpolate(lq[:5], size=(128, 128), mode="bilinear") * 2 - 1
    tail = torch.full((3, 3, 128, 128), 0.25)
    seen = []
    out = sample_window(lambda x, t: net(x, sched.model_time_input(t, 5), cond[None], 5),
                        sched, op, cond, lq[:5] * 2 - 1, torch.Generator().manual_seed(0),
                        prev_tail=tail, on_step=lambda t, x0: seen.append((t, x0[:3].clone())))
    assert [t for t, _ in seen] == [2, 1, 0]
    assert all(torch.equal(x0, tail) for _, x0 in seen)
    assert torch.equal(out[:3], tail)  # t=0: x = x0


def test_operator_matching():
    assert build_method("flair").task is None and build_method("flair").required_weights() == []
    r = build_method("flair", degradation="x8-bicubic")  # the task is fixed at construction
    assert "no operator" in r.applicable("blind")
    assert r.applicable("x8-bicubic") is None and r.task == "x8-bicubic"
    assert "does not match" in r.applicable("x16-bicubic") and r.task == "x8-bicubic"  # a pure check
    assert r.required_weights() == ["flair-x8-bicubic", "codeformer", "retinaface-resnet50", "parsenet"]
    plain = FlairRestorer("flair", FlairConfig(enhance=False), "x8-bicubic")
    assert plain.applicable("x8-bicubic") is None
    assert plain.required_weights() == ["flair-x8-bicubic", "parsenet"]  # RFE background weights
    blur = FlairRestorer("flair", FlairConfig(enhance=False), "x4-gaussian")
    assert blur.applicable("x4-gaussian") is None and blur.required_weights() == ["flair-gaussian"]
    fixed = _restorer(task="x16-bicubic")
    assert "does not match" in fixed.applicable("x8-bicubic")
    with pytest.raises(ValueError, match="no operator"):
        _restorer().restore(_clip(), _meta("blind"))
    with pytest.raises(ValueError, match="16x16"):
        _restorer().restore(_clip(h=32), _meta())


def test_enhancement_is_the_default_as_in_the_official_demos():
    assert FlairConfig().enhance is True


class _ShiftFace(nn.Module):
    """CodeFormer stand-in: brightens the crop (a visible, known enhancement)."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))
        self.batches = []

    def forward(self, x, w=None, adain=None):
        self.batches.append(x.shape[0])
        return (x + 0.5, None, None)


class _AllFace(nn.Module):
    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 19, *x.shape[-2:], dtype=x.dtype)
        logits[:, 1] = 1
        return logits, None


def _x0_at(t_seen, r, lq, monkeypatch):
    """Run ``r.restore`` and return each window's x0 (after DC, enhancement, overlap) at step t."""
    from vfr_bench.methods.flair import restorer as restorer_module
    orig, got = restorer_module.sample_window, []

    def recording(*args, **kwargs):
        kwargs["on_step"] = lambda t, x0: got.append(x0.clone()) if t == t_seen else None
        return orig(*args, **kwargs)

    monkeypatch.setattr(restorer_module, "sample_window", recording)
    r.restore(lq, _meta())
    return got


def test_no_face_frames_are_counted_kept_and_windows_stay_in_sync(monkeypatch):
    """Frames 4 and 10 have no face: their x0 at an enhanced step equals the run without the
    enhancement (the stand-in UNet works per frame), every other frame's x0 is enhanced, the
    detector runs once per window, and the count reaches ``last_stats``."""
    from vfr_bench.face_geometry import FFHQ_512
    from vfr_bench.methods.flair.enhance import FaceEnhancer
    lq = _clip()
    grey = [4, 10]
    lq[grey] = 0.5
    seen = []

    def landmarks(frames):  # frames: 0..255 condition frames of one window
        seen.append(frames.shape[0])
        flat = frames.flatten(1).std(1) < 1e-3
        return [None if f else FFHQ_512 / 4 for f in flat]

    ref = _x0_at(5, _restorer(steps=6), lq, monkeypatch)  # t = 5 >= tau: the enhanced step
    r = _restorer(steps=6)
    cf = _ShiftFace()
    r.enhancer = FaceEnhancer(cf, _AllFace(), landmarks)  # stand-ins for the enhancement's networks
    got = _x0_at(5, r, lq, monkeypatch)
    assert seen == [10, 5]  # once per window, not per step
    assert cf.batches == [9, 4]  # faces only, at t = 5, in both windows
    assert r.last_stats["no_face_frames"] == grey
    assert r.clip_stats() == {"no_face_frames": len(grey), "no_face_frame_ids": grey}  # kept in the result
    # clip frames of the window positions compared (window 2's first 3 are the overwrite)
    frames = [list(range(10)), [10, 11]]
    for w, (a, b) in enumerate(zip(got, ref)):
        d = (a - b).abs().flatten(1).amax(1)[-len(frames[w]):]
        for f, v in zip(frames[w], d.tolist()):
            assert (v == 0) if f in grey else (v > 0.01), (f, v)


def test_bench_selection_on_sample_and_on_celebv_x8_built_from_it(sample_split, tmp_path):
    """`bench --method flair --split sample`: not applicable (blind degradation); on a celebv-x8
    split built from sample it is selected with task x8-bicubic (and needs that UNet's file)."""
    from vfr_bench import weights as W
    from vfr_bench.bench import BenchOptions, run_bench, select_methods
    from vfr_bench.datasets.build import degrade
    from vfr_bench.datasets.splits import read_split
    lines = []
    assert run_bench(BenchOptions(methods=["flair"], split="sample", out=tmp_path / "res",
                                  progress=False, wandb="off"), log=lines.append) == 0
    text = "\n".join(map(str, lines))
    assert "flair" in text and "not applicable to split sample" in text and "no operator" in text
    assert not (tmp_path / "res" / "flair").exists()
    degrade("celebv-x8", sample_split.root, tmp_path / "x8", progress=False)
    x8 = read_split(tmp_path / "x8")
    restorers, skipped = select_methods(["all"], x8, {})
    assert "flair" in skipped and "flair_x8_bicubic.pt" in skipped["flair"]  # selected, weights absent
    for name in ("flair-x8-bicubic", "codeformer", "retinaface-resnet50", "parsenet"):
        path = W.path_of(W.get(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # presence is all selection checks
    restorers, skipped = select_methods(["flair"], x8, {})
    assert [r.method_name for r in restorers] == ["flair"] and restorers[0].task == "x8-bicubic"
