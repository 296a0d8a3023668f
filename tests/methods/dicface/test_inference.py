"""DicFace window inference: which frames each output sees, and cached == official-cost path."""
from __future__ import annotations

import pytest
import torch

from vfr_bench.methods.dicface.inference import WindowSettings, restore_cached, restore_naive
from tests.methods.dicface.test_windows import CENTER, OFFICIAL_10

SCALE = 1000.0


class FrameIdNet:
    """Stand-in network with DicFace's stage API whose output names the frames it saw.

    Frame i of the clip is a constant image of value i. Each window's transformer tokens carry
    the ids of its 5 frames; the Dirichlet mean maps them back exactly (alpha sums to SCALE);
    the decoder appends the id found in the kept frame's own skip feature.
    """

    frame_length = 5
    connect_list = ["own"]

    def encode(self, x):
        ids = x[:, 0, 0, 0].reshape(-1, 1, 1, 1)
        return ids, {"own": ids.clone()}

    def fuse_scales(self, enc_latent, skips):
        return enc_latent

    def transform(self, lq_feat):
        clips = lq_feat.reshape(-1, self.frame_length)                  # [B, T] frame ids
        return clips.repeat_interleave(self.frame_length, 0)[None]      # [1, B*T, T]

    def concentration(self, tokens):
        a = tokens.permute(1, 0, 2) + 1                                 # [N, 1, T] > 0
        return torch.cat([a, SCALE - a.sum(-1, keepdim=True)], -1)

    def mix(self, weights):
        return weights

    def decode(self, latent, skips, w):
        seen = torch.round(latent[:, 0, :-1] * SCALE - 1)
        return torch.cat([seen, skips["own"].reshape(-1, 1)], 1)       # [N, T+1]

    def __call__(self, x, w=0.0, mix_fn=None):
        enc_latent, skips = self.encode(x)
        lq_feat = self.fuse_scales(enc_latent, skips)
        alpha = self.concentration(self.transform(lq_feat))
        return self.decode(self.mix(mix_fn(alpha)), skips, w), lq_feat, alpha + 1e-6


def _id_clip(n):
    return torch.arange(n, dtype=torch.float64).view(n, 1, 1, 1).expand(n, 3, 2, 2)


def _expected(mode, n):
    if n in (OFFICIAL_10 if mode == "official" else CENTER):
        table = (OFFICIAL_10 if mode == "official" else CENTER)[n]
    elif mode == "official":  # forward-looking for max_length 10
        table = [tuple(min(s + j, n - 1) for j in range(5)) for s in range(n)]
    else:
        table = [tuple(min(max(s + j - 2, 0), n - 1) for j in range(5)) for s in range(n)]
    return torch.tensor([list(f) + [s] for s, f in enumerate(table)], dtype=torch.float64)


@pytest.mark.parametrize("n", [1, 2, 3, 6, 13])
@pytest.mark.parametrize("mode", ["official", "center"])
@pytest.mark.parametrize("restore", [restore_cached, restore_naive])
def test_each_output_sees_its_window(restore, mode, n):
    settings = WindowSettings(window=mode, max_length=10, mixture="mean", chunk=4)
    got = restore(FrameIdNet(), _id_clip(n), settings, clip_id="c")
    assert torch.equal(got, _expected(mode, n))


def _tiny_model():
    """A random-weight DicFace at 64x64 (2x2 tokens), same block layout, ~0.9M parameters."""
    from vfr_bench.methods.dicface.arch import DicFace

    torch.manual_seed(0)
    model = DicFace(img_size=64, nf=32, ch_mult=(1, 1, 1, 1, 1, 1), res_blocks=1,
                    attn_resolutions=(2,), codebook_size=64, emb_dim=32, dim_embed=64, n_head=4,
                    n_layers=2)
    with torch.no_grad():  # non-zero position embeddings so order matters
        model.position_emb.normal_()
        model.position_emb_temporal.normal_()
    return model.eval()


@pytest.fixture(scope="module")
def tiny_model():
    pytest.importorskip("vfr_bench.methods.codeformer.vqgan_arch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convs: threading only adds contention on a shared CPU
    yield _tiny_model()
    torch.set_num_threads(threads)


@pytest.mark.parametrize("mode,max_length,mixture", [
    ("official", 10, "mean"), ("official", 10, "sample"), ("center", 10, "sample"),
])
def test_cached_equals_naive(tiny_model, mode, max_length, mixture):
    torch.manual_seed(1)
    clip = torch.rand(12, 3, 64, 64) * 2 - 1
    settings = WindowSettings(window=mode, max_length=max_length, mixture=mixture, seed=7, chunk=5)
    cached = restore_cached(tiny_model, clip, settings, clip_id="clip-a")
    naive = restore_naive(tiny_model, clip, settings, clip_id="clip-a")
    assert cached.shape == clip.shape
    scale = float(naive.abs().max())
    assert float((cached - naive).abs().max()) <= 1e-5 * scale
    if mixture == "sample":  # the seed matters: another clip id gives other draws
        other = restore_cached(tiny_model, clip, settings, clip_id="clip-b")
        assert float((other - cached).abs().max()) > 1e-3 * scale


def test_frames_outside_window_do_not_matter(tiny_model):
    """Output frame 0 (official, max_length 10) reads frames 0..4 only."""
    torch.manual_seed(2)
    clip = torch.rand(8, 3, 64, 64) * 2 - 1
    settings = WindowSettings(mixture="mean")
    a = restore_cached(tiny_model, clip, settings)
    clip[6] = 0.0
    b = restore_cached(tiny_model, clip, settings)
    assert torch.equal(a[:2], b[:2])   # windows [0..4], [1..5]
    assert not torch.allclose(a[2], b[2])  # window [2..6]


class CountingNet(FrameIdNet):
    """FrameIdNet that records which frames go through the encoder and the decoder."""

    def __init__(self):
        self.encoded, self.decoded_batches, self.transformed = [], [], 0

    def encode(self, x):
        self.encoded += x[:, 0, 0, 0].long().tolist()
        return super().encode(x)

    def transform(self, lq_feat):
        self.transformed += lq_feat.shape[0]
        return super().transform(lq_feat)

    def decode(self, latent, skips, w):
        self.decoded_batches.append(latent.shape[0])
        return super().decode(latent, skips, w)


@pytest.mark.parametrize("mode", ["official", "center"])
def test_cached_path_encodes_each_frame_once_and_decodes_only_kept_frames(mode):
    n, chunk = 23, 4
    net = CountingNet()
    restore_cached(net, _id_clip(n), WindowSettings(window=mode, mixture="mean", chunk=chunk))
    assert net.encoded == list(range(n))            # every frame once, in order
    assert sum(net.decoded_batches) == n and max(net.decoded_batches) <= chunk
    assert net.transformed == 5 * n                  # one 5-frame window per output frame
    naive = CountingNet()
    restore_naive(naive, _id_clip(n), WindowSettings(window=mode, mixture="mean"))
    per_window = 10 if mode == "official" else 5     # the official cost, max_length 10
    assert len(naive.encoded) == per_window * n and sum(naive.decoded_batches) == per_window * n
