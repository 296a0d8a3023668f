"""FLAIR video UNet of the x4 Gaussian-blur / JPEG models (official ``guided_diffusion.unet_new.UNetModel``).

FLAIR (Zou et al., WACV 2025, https://github.com/wustl-cig/FLAIR) extends the guided-diffusion
UNet (Dhariwal & Nichol) with temporal layers: a 3x3x3 temporal ResBlock after every
spatial ResBlock, sliding-window (5 frames) TemporalAttention after every spatial
AttentionBlock and in the middle block, and recurrent feature enhancement
(BasicVSR++-style, max_residue_magnitude 10) at the ``rnn_resolutions`` downsample rates.
One top-level SPyNet computes the flows once per forward, at ``image_size / rate``.

Official configuration (gaussian and jpeg checkpoints, 413,483,634 parameters)::

    UNetNew(image_size=512, in_channels=6, model_channels=128, out_channels=6,
            num_res_blocks=2, attention_resolutions=(16, 32, 64), rnn_resolutions=(1, 2),
            channel_mult=(0.5, 1, 1, 2, 2, 4, 4), num_head_channels=64,
            resblock_updown=True, use_scale_shift_norm=True, temporal_block=True,
            use_checkpoint=True)

Inputs: ``x_t`` ``[B*T,3,H,W]`` and the condition ``[B,T,3,H,W]`` (area-upsampled LQ) in
[-1,1], concatenated as ``[x_t, condition]``; the integer original timestep, embedded as
guided-diffusion ``[cos, sin]``. Output ``[B*T,6,H,W]``: eps, then the variance channels.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from .layers_arch import (PerFrame, ResBlock, clip_norm, maybe_checkpoint,
                          timestep_embedding, zero_module)
from .propagation_arch import BasicVSRPP, flows_between_frames
from .spynet_arch import SPyNet
from .temporal_arch import TemporalAttention, TemporalWrapper

__all__ = ["UNetNew", "UNET_NEW_CONFIG"]

#: constructor arguments of the official gaussian/jpeg models (``scripts/video_sample.py``)
UNET_NEW_CONFIG = dict(image_size=512, in_channels=6, model_channels=128, out_channels=6,
                       num_res_blocks=2, attention_resolutions=(16, 32, 64),
                       rnn_resolutions=(1, 2), channel_mult=(0.5, 1, 1, 2, 2, 4, 4),
                       num_head_channels=64, resblock_updown=True, use_scale_shift_norm=True,
                       temporal_block=True, use_checkpoint=True)


class SpatialAttention(nn.Module):
    """Per-frame self-attention over pixels (official ``AttentionBlock``; with ``emb_channels``
    the middle ``AttentionbottleBlock``, which adds ``Linear(SiLU(emb))`` before the output
    projection and is always checkpointed).

    Forward: ``x [B,T,C,H,W]`` (and ``emb [B*T,E]`` for the bottleneck) -> same shape.
    The norm is clip-wide; heads of ``head_channels``, scale ``1/sqrt(head_channels)``.
    The attention follows the official ``QKVAttentionLegacy`` operation for operation:
    the scale split as ``head_channels ** -1/4`` on q and on k, the softmax in float32
    whatever the input dtype (fp16, bf16 autocast, and float64 too), cast back.
    """

    def __init__(self, channels: int, head_channels: int, *, emb_channels: Optional[int] = None,
                 use_checkpoint: bool = False):
        super().__init__()
        if emb_channels is not None:
            self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, channels))
        self.num_heads = channels // head_channels
        self.use_checkpoint = use_checkpoint
        self.norm = clip_norm(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor, emb: Optional[torch.Tensor] = None) -> torch.Tensor:
        return maybe_checkpoint(self._forward, x, emb, enabled=self.use_checkpoint)

    def _forward(self, x: torch.Tensor, emb: Optional[torch.Tensor]) -> torch.Tensor:
        b, t, c, hh, ww = x.shape
        qkv = self.qkv(self.norm(x).reshape(b * t, c, hh * ww))  # [N, 3C, L]
        n, _, length = qkv.shape
        # legacy head order: heads split before q/k/v -> [N*heads, 3*d, L]
        q, k, v = qkv.reshape(n * self.num_heads, -1, length).chunk(3, dim=1)
        scale = 1 / math.sqrt(math.sqrt(q.shape[1]))  # on q and k: more stable in fp16
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)  # [N*heads, L, L]
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        h = torch.einsum("bts,bcs->bct", weight, v).reshape(n, c, length)
        if hasattr(self, "emb_layers"):
            h = h + self.emb_layers(emb).to(h.dtype).unsqueeze(-1)
        h = self.proj_out(h)
        return x + h.reshape(b, t, c, hh, ww)


class UNetLevel(nn.Sequential):
    """Layers of one UNet step; each gets the arguments its kind needs (``TimestepEmbedSequential``)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, flows: dict, vsrpp_weights,
                enable_cross_frames: bool) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialAttention):
                x = layer(x, emb)
            elif isinstance(layer, TemporalWrapper):
                inner = layer.wrapped_module
                if isinstance(inner, BasicVSRPP):
                    x = layer(x, *flows[x.shape[-1]], vsrpp_weights,
                              enable_cross_frames=enable_cross_frames)
                elif isinstance(inner, ResBlock):
                    x = layer(x, emb, enable_cross_frames=enable_cross_frames)
                else:
                    x = layer(x, enable_cross_frames=enable_cross_frames)
            else:
                x = layer(x)
        return x


class UNetNew(nn.Module):
    """unet_new video UNet; see the module docstring for the official configuration."""

    def __init__(self, *, image_size: int = 512, in_channels: int = 6, model_channels: int = 128,
                 out_channels: int = 6, num_res_blocks: int = 2,
                 attention_resolutions: Sequence[int] = (16, 32, 64),
                 rnn_resolutions: Sequence[int] = (1, 2),
                 channel_mult: Sequence[float] = (0.5, 1, 1, 2, 2, 4, 4), dropout: float = 0.0,
                 num_head_channels: int = 64, resblock_updown: bool = True,
                 use_scale_shift_norm: bool = True, temporal_block: bool = True,
                 use_checkpoint: bool = True):
        super().__init__()
        if not resblock_updown:
            raise ValueError("UNetNew: only resblock_updown=True (the FLAIR models) is supported")
        self.image_size = image_size
        self.model_channels = model_channels
        self.rnn_resolutions = tuple(rnn_resolutions)
        #: dtype of the torso; None: the input dtype. float16 after convert_to_fp16().
        self.torso_dtype: Optional[torch.dtype] = None
        emb_dim = model_channels * 4
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(),
                                        nn.Linear(emb_dim, emb_dim))
        self.spynet = SPyNet()

        def resblock(cin, cout=None, **kw):
            return ResBlock(cin, emb_dim, cout, dropout=dropout, use_checkpoint=use_checkpoint,
                            use_scale_shift_norm=use_scale_shift_norm, **kw)

        def temporal_layers(ch, ds):
            """Layers following the spatial ResBlock at downsample rate ds."""
            layers = []
            if temporal_block:
                layers.append(TemporalWrapper(resblock(ch, dims=3)))
            if ds in attention_resolutions:
                layers.append(SpatialAttention(ch, num_head_channels,
                                               use_checkpoint=use_checkpoint))
                if temporal_block:
                    layers.append(TemporalWrapper(TemporalAttention(
                        ch, 5, num_head_channels, use_checkpoint=use_checkpoint)))
            if ds in rnn_resolutions and temporal_block:
                layers.append(TemporalWrapper(BasicVSRPP(
                    ch, max_residue_magnitude=10, use_checkpoint=use_checkpoint,
                    checkpoint_whole=True)))
            return layers

        ch = input_ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList(
            [UNetLevel(PerFrame(nn.Conv2d(in_channels, ch, 3, padding=1)))])
        chans = [ch]
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                out = int(mult * model_channels)
                layers = [resblock(ch, out)]
                ch = out
                layers += temporal_layers(ch, ds)
                self.input_blocks.append(UNetLevel(*layers))
                chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(UNetLevel(resblock(ch, ch, down=True)))
                chans.append(ch)
                ds *= 2
        mid = [resblock(ch)]
        if temporal_block:
            mid.append(TemporalWrapper(resblock(ch, dims=3)))
        mid.append(SpatialAttention(ch, num_head_channels, emb_channels=emb_dim,
                                    use_checkpoint=True))
        if temporal_block:
            mid.append(TemporalWrapper(TemporalAttention(ch, 5, num_head_channels,
                                                         use_checkpoint=use_checkpoint)))
        mid.append(resblock(ch))
        if temporal_block:
            mid.append(TemporalWrapper(resblock(ch, dims=3)))
        self.middle_block = UNetLevel(*mid)
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                out = int(model_channels * mult)
                layers = [resblock(ch + chans.pop(), out)]
                ch = out
                layers += temporal_layers(ch, ds)
                if level and i == num_res_blocks:
                    layers.append(resblock(ch, ch, up=True))
                    ds //= 2
                self.output_blocks.append(UNetLevel(*layers))
        self.out = nn.Sequential(clip_norm(ch), nn.SiLU(),
                                 zero_module(PerFrame(nn.Conv2d(input_ch, out_channels, 3,
                                                                padding=1))))

    def flow_sizes(self) -> list:
        """Feature widths at which RFE runs: ``image_size // rate``."""
        return [self.image_size // s for s in self.rnn_resolutions]

    def compute_flows(self, rnn_input: torch.Tensor) -> dict:
        """``{width: (flows_forward, flows_backward)}`` from ``rnn_input`` ``[B,T,3,H,W]`` in [-1,1],
        resized bicubic (no antialias) to each RFE size when it differs."""
        flows = {}
        for res in self.flow_sizes():
            x = rnn_input
            if x.shape[-1] != res:
                x = F.interpolate(x.flatten(0, 1), (res, res), mode="bicubic").unflatten(
                    0, x.shape[:2])
            flows[res] = flows_between_frames(self.spynet, x)
        return flows

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, low_res_input: torch.Tensor,
                num_frames: int, rnn_input: Optional[torch.Tensor] = None,
                enable_cross_frames: bool = True,
                vsrpp_weights: Union[None, float, torch.Tensor] = None) -> torch.Tensor:
        """Model output (eps and variance channels).

        Args:
            x: ``[B*T,3,H,W]`` noisy frames x_t in [-1,1]; H = W = ``image_size``.
            timesteps: ``[B*T]`` integer timesteps of the original (unspaced) schedule.
            low_res_input: ``[B,T,3,H,W]`` condition in [-1,1].
            num_frames: T.
            rnn_input: ``[B,T,3,H,W]`` frames for SPyNet in [-1,1]; default the condition.
            enable_cross_frames: False skips every temporal layer.
            vsrpp_weights: RFE weight: None, float or ``[B,T,1,H,W]``.

        Returns:
            ``[B*T,out_channels,H,W]`` in the dtype of ``x``.
        """
        if x.shape[-1] != self.image_size and self.rnn_resolutions:
            raise ValueError(f"UNetNew was built for {self.image_size}px frames (its RFE flow "
                             f"sizes follow image_size), got {x.shape[-1]}px")
        h = torch.cat([x.unflatten(0, (-1, num_frames)), low_res_input.to(x.dtype)], dim=2)
        if rnn_input is None:
            rnn_input = low_res_input
        flows = self.compute_flows(rnn_input) if self.rnn_resolutions else {}
        emb_dtype = self.time_embed[0].weight.dtype
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels,
                                                 sin_first=False, dtype=emb_dtype))
        in_dtype = h.dtype
        h = h.to(self.torso_dtype or in_dtype)
        args = (emb, flows, vsrpp_weights, enable_cross_frames)
        skips = []
        for block in self.input_blocks:
            h = block(h, *args)
            skips.append(h)
        h = self.middle_block(h, *args)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=2), *args)
        return self.out(h.to(in_dtype)).flatten(0, 1)

    def convert_to_fp16(self) -> None:
        """Official fp16 layout: float16 convs (incl. deformable) in the torso and
        TemporalAttention q/k/v; norms, embeddings, SPyNet and ``out`` stay float32."""
        from .fp16 import convert_torso_to_fp16
        convert_torso_to_fp16(self, (self.input_blocks, self.middle_block, self.output_blocks))
        self.torso_dtype = torch.float16
