"""DicFace network: CodeFormer VQGAN + spatio-temporal transformer predicting Dirichlet mixtures.

DicFace (Chen et al., "DicFace: Dirichlet-Constrained Variational Codebook Learning for
Temporally Coherent Video Face Restoration", ICCV 2025; official repo
fudan-generative-vision/DicFace, class ``TemporalCodeFormerDirDistMultiScale`` in
``basicsr/archs/dir_dist_codeformer_multiscale_arch.py``). Own re-implementation on the shared
CodeFormer blocks (``vfr_bench.methods.codeformer``) with the official state-dict keys, so the
official checkpoints (``params_ema``) load with strict=True.

Pipeline per 5-frame clip (frames are b-major, then t, in the batch axis):
encoder (skip features kept at 32/64/128/256) -> ``MultiScaleFuse`` -> tokens -> 9 x
(spatial layer over the 256 tokens of a frame, temporal layer over the 5 frames of a token)
-> LayerNorm + Linear(no bias) logits -> alpha = softplus + 1e-2 -> mixture weights on the
codebook simplex -> weights @ codebook -> generator with SFT fusion of the encoder skips.
There is no nearest-neighbour quantisation at inference.

The stages are separate methods (``encode``, ``transform``, ``concentration``, ``mix``,
``decode``) so that window inference can encode each frame once and decode only kept frames.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfr_bench.methods.codeformer.transformer_arch import FuseSFTBlock, TransformerSALayer
from vfr_bench.methods.codeformer.vqgan_arch import (
    AttnBlock, Downsample, ResBlock, Upsample, VQAutoEncoder,
)

from .mixture import dirichlet_sample
from .multiscale_arch import MultiScaleFuse

Skips = dict[str, Tensor]  # feature size as a string ('32', '64', ...) -> [N,C,s,s]


def to_temporal(tokens: Tensor, frame_length: int) -> Tensor:
    """Spatial layout -> temporal layout for attention across the frames of each token.

    Args:
        tokens: [HW, B*T, C] (batch b-major, then t).
        frame_length: T.

    Returns:
        [T, B*HW, C] (new batch b-major, then token), as the official
        ``rearrange('d (b t) c -> t (b d) c')``.
    """
    hw, bt, c = tokens.shape
    b = bt // frame_length
    return tokens.view(hw, b, frame_length, c).permute(2, 1, 0, 3).reshape(frame_length, b * hw, c)


def from_temporal(tokens: Tensor, batch: int) -> Tensor:
    """Inverse of ``to_temporal``: [T, B*HW, C] -> [HW, B*T, C]."""
    t, bhw, c = tokens.shape
    hw = bhw // batch
    return tokens.view(t, batch, hw, c).permute(2, 1, 0, 3).reshape(hw, batch * t, c)


class DicFace(VQAutoEncoder):
    """DicFace for all three tasks (BFR, colourisation, inpainting share the constructor).

    Defaults are the official network (116,187,075 parameters, 632 state-dict entries).
    Smaller settings (e.g. ``img_size=64, attn_resolutions=(2,)``) keep the same block
    layout for fast tests.

    Args:
        img_size: input size (512).
        nf, ch_mult, res_blocks, attn_resolutions, codebook_size, emb_dim: the VQGAN.
        dim_embed: transformer width (512); the MLP is 2 * dim_embed wide.
        n_head: attention heads (8).
        n_layers: spatial/temporal layer pairs (9).
        frame_length: T, fixed (5); ``position_emb_temporal`` is [T, dim_embed].
        connect_list: feature sizes fused into the generator; default the four sizes
            img_size/16 .. img_size/2 ('32', '64', '128', '256').
    """

    def __init__(self, img_size: int = 512, nf: int = 64,
                 ch_mult: Sequence[int] = (1, 2, 2, 4, 4, 8), res_blocks: int = 2,
                 attn_resolutions: Sequence[int] = (16,), codebook_size: int = 1024,
                 emb_dim: int = 256, dim_embed: int = 512, n_head: int = 8, n_layers: int = 9,
                 frame_length: int = 5, connect_list: Optional[Sequence[str]] = None):
        super().__init__(img_size, nf, ch_mult, res_blocks, attn_resolutions, codebook_size, emb_dim)
        latent = img_size // 2 ** (len(ch_mult) - 1)
        self.latent_size = latent
        self.frame_length = frame_length
        self.codebook_size = codebook_size
        if connect_list is None:
            connect_list = [str(img_size // f) for f in (16, 8, 4, 2)]
        self.connect_list = [str(s) for s in connect_list]

        self.skip_blocks, channels = _encoder_skip_taps(self.encoder.blocks, img_size)
        self.fuse_blocks = _generator_fuse_taps(self.generator.blocks, latent)
        self.multiscale_sizes = (str(4 * latent), str(2 * latent))
        self.kept_sizes = sorted(set(self.connect_list) | set(self.multiscale_sizes), key=int)

        # Frozen in the official code (requires_grad only matters for training).
        self.position_emb = nn.Parameter(torch.zeros(latent * latent, dim_embed), requires_grad=False)
        self.position_emb_temporal = nn.Parameter(torch.zeros(frame_length, dim_embed))
        self.feat_emb = nn.Linear(emb_dim, dim_embed)
        self.multiscale = MultiScaleFuse(channels[self.multiscale_sizes[0]],
                                         channels[self.multiscale_sizes[1]], emb_dim, emb_dim)
        self.ft_layers = nn.ModuleList(  # spatial: attention over the tokens of one frame
            TransformerSALayer(dim_embed, n_head, 2 * dim_embed, dropout=0.1) for _ in range(n_layers))
        self.dir_dist_layers = nn.ModuleList(  # temporal: attention over the frames of one token
            TransformerSALayer(dim_embed, n_head, 2 * dim_embed, dropout=0.1) for _ in range(n_layers))
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(dim_embed),
                                            nn.Linear(dim_embed, codebook_size, bias=False))
        self.fuse_convs_dict = nn.ModuleDict(
            {s: FuseSFTBlock(channels[s], channels[s]) for s in self.connect_list})

    # ---------------------------------------------------------------- stages
    def encode(self, x: Tensor) -> tuple[Tensor, Skips]:
        """Encoder pass; per frame, so frames can be encoded once and cached.

        Args:
            x: [N,3,H,W] float RGB in [-1,1].

        Returns:
            (enc_latent [N,emb_dim,h,w], skips {size: [N,C,s,s]} for ``kept_sizes``).
        """
        taps = {self.skip_blocks[s]: s for s in self.kept_sizes}
        latent, feats = self.encoder(x, keep=taps.keys())
        return latent, {s: feats[i] for i, s in taps.items()}

    def fuse_scales(self, enc_latent: Tensor, skips: Skips) -> Tensor:
        """``MultiScaleFuse`` -> lq_feat [N,emb_dim,h,w] (per frame)."""
        return self.multiscale(skips[self.multiscale_sizes[0]], skips[self.multiscale_sizes[1]],
                               enc_latent)

    def transform(self, lq_feat: Tensor) -> Tensor:
        """Interleaved spatial/temporal transformer over 5-frame clips.

        Args:
            lq_feat: [B*T,emb_dim,h,w], T = frame_length consecutive frames per clip.

        Returns:
            [h*w, B*T, dim_embed] tokens (sequence first, token index row*w + col).
        """
        bt = lq_feat.shape[0]
        if bt % self.frame_length:
            raise ValueError(f"DicFace needs clips of {self.frame_length} frames, got a batch of {bt}")
        batch = bt // self.frame_length
        tokens = self.feat_emb(lq_feat.flatten(2).permute(2, 0, 1))
        pos_space = self.position_emb.unsqueeze(1)
        pos_time = self.position_emb_temporal.unsqueeze(1)
        for spatial, temporal in zip(self.ft_layers, self.dir_dist_layers):
            tokens = spatial(tokens, query_pos=pos_space)
            tokens = from_temporal(temporal(to_temporal(tokens, self.frame_length), query_pos=pos_time),
                                   batch)
        return tokens

    def concentration(self, tokens: Tensor) -> Tensor:
        """Dirichlet concentration alpha = softplus(logits) + 1e-2.

        Args:
            tokens: [HW,N,dim_embed].

        Returns:
            [N,HW,codebook_size] alpha (> 0.01).
        """
        return F.softplus(self.idx_pred_layer(tokens).permute(1, 0, 2)) + 1e-2

    def mix(self, weights: Tensor) -> Tensor:
        """Codebook mixture: [N,HW,K] weights -> [N,emb_dim,h,w] generator input."""
        n = weights.shape[0]
        codebook = self.quantize.embedding.weight
        feat = weights.reshape(-1, self.codebook_size) @ codebook
        return feat.view(n, self.latent_size, self.latent_size, -1).permute(0, 3, 1, 2)

    def decode(self, latent: Tensor, skips: Skips, w: float) -> Tensor:
        """Generator with SFT fusion of the encoder skips (skipped entirely when w <= 0).

        Args:
            latent: [N,emb_dim,h,w] mixed codebook feature.
            skips: encoder features of the same N frames (at least ``connect_list``).
            w: fidelity weight; the official scripts use 1.0.

        Returns:
            [N,3,H,W] raw output, nominally [-1,1], not clamped.
        """
        fuse = None
        if w > 0:
            fuse = {self.fuse_blocks[s]: _fusion(self.fuse_convs_dict[s], skips[s], w)
                    for s in self.connect_list}
        return self.generator(latent, fuse=fuse)

    def forward(self, x: Tensor, w: float = 0.0,
                mix_fn: Optional[Callable[[Tensor], Tensor]] = None):
        """Official forward.

        Args:
            x: [B*T,3,H,W] float RGB in [-1,1], b-major then t.
            w: fidelity weight. Official default 0 turns OFF all fusions; the official
                inference scripts call ``net(x, w=1.0)``.
            mix_fn: alpha [N,HW,K] -> weights; default an unseeded Dirichlet draw from the
                global generator, as the official code does even at inference.

        Returns:
            (out [B*T,3,H,W], lq_feat [B*T,emb_dim,h,w], alpha + 1e-6 [B*T,HW,K]).
        """
        enc_latent, skips = self.encode(x)
        lq_feat = self.fuse_scales(enc_latent, skips)
        alpha = self.concentration(self.transform(lq_feat))
        weights = (mix_fn or dirichlet_sample)(alpha)
        out = self.decode(self.mix(weights), skips, w)
        return out, lq_feat, alpha + 1e-6


def _fusion(block: FuseSFTBlock, skip: Tensor, w: float) -> Callable[[Tensor], Tensor]:
    return lambda dec: block(skip, dec, w)


def _out_channels(block: nn.Module) -> int:
    if isinstance(block, ResBlock):
        return block.out_channels
    if isinstance(block, AttnBlock):
        return block.in_channels
    if isinstance(block, nn.Conv2d):
        return block.out_channels
    raise TypeError(f"no channel count for {type(block).__name__}")


def _encoder_skip_taps(blocks: nn.ModuleList, img_size: int) -> tuple[dict[str, int], dict[str, int]]:
    """Encoder tap points: the block just before each Downsample, keyed by feature size.

    For the official 512 encoder: {'512': 2, '256': 5, '128': 8, '64': 11, '32': 14}
    (CodeFormer's ``fuse_encoder_block``). Also returns the channels there.
    """
    taps, channels, res = {}, {}, img_size
    for i, block in enumerate(blocks):
        if isinstance(block, Downsample):
            taps[str(res)], channels[str(res)] = i - 1, _out_channels(blocks[i - 1])
            res //= 2
    return taps, channels


def _generator_fuse_taps(blocks: nn.ModuleList, latent: int) -> dict[str, int]:
    """Generator fusion points: the first block after each Upsample, keyed by feature size.

    For the official generator: {'32': 9, '64': 12, '128': 15, '256': 18, '512': 21}.
    """
    taps, res = {}, latent
    for i, block in enumerate(blocks):
        if isinstance(block, Upsample):
            res *= 2
            taps[str(res)] = i + 1
    return taps
