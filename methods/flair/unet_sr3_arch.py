"""FLAIR video UNet of the x8/x16 bicubic models (official ``guided_diffusion.sr3.UNet``).

FLAIR (Zou et al., WACV 2025, https://github.com/wustl-cig/FLAIR) extends the SR3-style
UNet (Saharia et al.; WaveGrad noise-level embedding) with temporal layers: every
ResnetBlocWithAttn carries a gated temporal 3-D ResBlock (kernel (3,1,1)), gated
temporal self-attention at the ``attn_res`` feature sizes and in the two middle blocks,
and gated recurrent feature enhancement (BasicVSR++-style, one shared SPyNet) at the
``vsrpp_res`` sizes. Sizes are counted from the constructor ``image_size``.

Official configuration (x8 and x16 checkpoints, 236,097,007 parameters)::

    UNetSR3(image_size=512, in_channel=6, out_channel=3, inner_channel=64, norm_groups=16,
            channel_mults=(1, 2, 4, 8, 16), attn_res=(64, 32), vsrpp_res=(512, 256),
            res_blocks=1, num_frames=7, head_dim=64, use_checkpoint=True)

Inputs: ``x_t`` ``[B*T,3,H,W]`` and the condition ``[B,T,3,H,W]`` (bicubic upsampled LQ) in
[-1,1], concatenated as ``[condition, x_t]``; the time input is the continuous
``sqrt(alphabar)`` of the spaced schedule, embedded as ``[sin, cos]``. Output: eps
``[B*T,3,H,W]``.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from .layers_arch import (AcrossFrames, GroupNorm32, PerFrame, ResBlock, maybe_checkpoint,
                          timestep_embedding)
from .propagation_arch import BasicVSRPP
from .spynet_arch import SPyNet
from .temporal_arch import GatedTemporalWrapper, TemporalAttention

__all__ = ["UNetSR3", "SR3_CONFIG"]

#: constructor arguments of the official x8/x16 bicubic models (``scripts/video_sample.py``)
SR3_CONFIG = dict(image_size=512, in_channel=6, out_channel=3, inner_channel=64,
                  norm_groups=16, channel_mults=(1, 2, 4, 8, 16), attn_res=(64, 32),
                  vsrpp_res=(512, 256), res_blocks=1, dropout=0.0, cross_frame_module=True,
                  temporal_attn=True, spatial_attn=False, use_checkpoint=True, num_frames=7,
                  head_dim=64)


class NoiseLevelEncoding(nn.Module):
    """WaveGrad positional encoding ``[sin, cos]`` of a continuous noise level ``[N] -> [N, dim]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, noise_level: torch.Tensor) -> torch.Tensor:
        return timestep_embedding(noise_level, self.dim, sin_first=True, dtype=noise_level.dtype)


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class Upsample(nn.Module):
    """Nearest x2 then 3x3 conv, on ``[N,C,H,W]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


class Downsample(nn.Module):
    """Strided 3x3 conv, on ``[N,C,H,W]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Block(nn.Module):
    """Clip-wide GroupNorm, Swish, (dropout), per-frame 3x3 conv."""

    def __init__(self, dim: int, dim_out: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.block = nn.Sequential(
            AcrossFrames(GroupNorm32(groups, dim)), Swish(),
            nn.Dropout(dropout) if dropout != 0 else nn.Identity(),
            PerFrame(nn.Conv2d(dim, dim_out, 3, padding=1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class FeatureWiseAffine(nn.Module):
    """Adds ``Linear(emb)`` per frame and channel: ``x [B,T,C,H,W]``, ``emb [B*T,E]``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.noise_func = nn.Sequential(nn.Linear(in_channels, out_channels))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        return x + self.noise_func(emb).to(x.dtype).view(b, t, -1, 1, 1)


class ResnetBlock(nn.Module):
    """SR3 residual block: two Blocks with the noise-level embedding added in between."""

    def __init__(self, dim: int, dim_out: int, emb_dim: int, *, dropout: float,
                 norm_groups: int, use_checkpoint: bool):
        super().__init__()
        self.noise_func = FeatureWiseAffine(emb_dim, dim_out)
        self.block1 = Block(dim, dim_out, groups=norm_groups)
        self.block2 = Block(dim_out, dim_out, groups=norm_groups, dropout=dropout)
        self.res_conv = (PerFrame(nn.Conv2d(dim, dim_out, 1)) if dim != dim_out
                         else nn.Identity())
        self.use_checkpoint = use_checkpoint

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return maybe_checkpoint(self._forward, x, emb, enabled=self.use_checkpoint)

    def _forward(self, x, emb):
        h = self.block2(self.noise_func(self.block1(x), emb))
        return h + self.res_conv(x)


class FlowRFE(BasicVSRPP):
    """sr3 RFE: computes its flows from the rnn input resized to the feature size.

    Forward: ``hidden [n,T,C,h,w]``, ``lqs [n,T,3,H,W]`` in [-1,1] (resized bilinear with
    antialias to h,w when needed; h,w >= 64), ``weight`` as in :class:`BasicVSRPP`.
    ``flow_cache``: a dict shared by the RFE modules of one UNet call; the official code
    recomputes the same flows in every module (same shared SPyNet, same input), here
    each size is computed once.
    """

    def forward(self, hidden: torch.Tensor, lqs: torch.Tensor,
                weight: Union[None, float, torch.Tensor] = None,
                flow_cache: Optional[dict] = None) -> torch.Tensor:
        n, t, _, h, w = hidden.shape
        if lqs.shape[-2:] != (h, w):
            lqs = torch.nn.functional.interpolate(
                lqs.flatten(0, 1), size=(h, w), mode="bilinear", align_corners=False,
                antialias=True).unflatten(0, (n, t))
        if h < 64 or w < 64:
            raise ValueError(f"FLAIR RFE needs features of at least 64x64, got {h}x{w}; "
                             "use larger frames")
        if flow_cache is None:
            flow_cache = {}
        if (h, w) not in flow_cache:
            flow_cache[(h, w)] = self.compute_flow(lqs)
        flows_forward, flows_backward = flow_cache[(h, w)]
        return super().forward(hidden, flows_forward, flows_backward, weight)


class ResnetBlocWithAttn(nn.Module):
    """ResnetBlock followed by the gated temporal layers present at its resolution."""

    def __init__(self, dim: int, dim_out: int, *, emb_dim: int, norm_groups: int,
                 dropout: float, conv_3d: bool, temporal_attn: bool, vsrpp: bool,
                 num_frames: int, head_dim: int, shared_spynet: Optional[SPyNet],
                 use_checkpoint: bool):
        super().__init__()
        self.res_block = ResnetBlock(dim, dim_out, emb_dim, dropout=dropout,
                                     norm_groups=norm_groups, use_checkpoint=use_checkpoint)
        if conv_3d:
            self.conv_3d = GatedTemporalWrapper(
                ResBlock(dim_out, emb_dim, dims=3, kernel_size=(3, 1, 1), padding=(1, 0, 0),
                         use_checkpoint=use_checkpoint),
                dim_out, emb_dim)
        if temporal_attn:
            self.temp_attn = GatedTemporalWrapper(
                TemporalAttention(dim_out, num_frames, head_dim, use_checkpoint=use_checkpoint),
                dim_out, emb_dim)
        if vsrpp:
            self.vsrpp = GatedTemporalWrapper(
                FlowRFE(dim_out, max_residue_magnitude=5, spynet=shared_spynet,
                        use_checkpoint=use_checkpoint),
                dim_out, emb_dim)

    def forward(self, x: torch.Tensor, lqs: torch.Tensor, emb: torch.Tensor,
                enable_cross_frames: bool = True, vsrpp_weights=None,
                flow_cache: Optional[dict] = None) -> torch.Tensor:
        x = self.res_block(x, emb)
        if hasattr(self, "conv_3d"):
            x = self.conv_3d(x, emb, emb, enable_cross_frames=enable_cross_frames)
        if hasattr(self, "temp_attn"):
            x = self.temp_attn(x, emb, enable_cross_frames=enable_cross_frames)
        if hasattr(self, "vsrpp"):
            x = self.vsrpp(x, emb, lqs, vsrpp_weights, flow_cache,
                           enable_cross_frames=enable_cross_frames)
        return x


class UNetSR3(nn.Module):
    """sr3 video UNet; see the module docstring for the official configuration.

    ``spatial_attn`` (spatial self-attention) is not supported: no FLAIR checkpoint uses it.
    """

    def __init__(self, *, image_size: int = 512, in_channel: int = 6, out_channel: int = 3,
                 inner_channel: int = 64, norm_groups: int = 16,
                 channel_mults: Sequence[int] = (1, 2, 4, 8, 16),
                 attn_res: Sequence[int] = (64, 32), vsrpp_res: Sequence[int] = (512, 256),
                 res_blocks: int = 1, dropout: float = 0.0, cross_frame_module: bool = True,
                 temporal_attn: bool = True, spatial_attn: bool = False,
                 use_checkpoint: bool = True, num_frames: int = 7, head_dim: int = 64):
        super().__init__()
        if spatial_attn:
            raise ValueError("UNetSR3: spatial_attn=True is not supported (no FLAIR model uses it)")
        emb_dim = inner_channel
        self.noise_level_mlp = nn.Sequential(
            NoiseLevelEncoding(inner_channel), nn.Linear(inner_channel, inner_channel * 4),
            Swish(), nn.Linear(inner_channel * 4, inner_channel))
        #: dtype of the torso (downs/mid/ups); None: the input dtype. float16 after convert_to_fp16().
        self.torso_dtype: Optional[torch.dtype] = None
        shared_spynet = SPyNet() if len(vsrpp_res) > 0 and cross_frame_module else None

        def bloc(dim, dim_out, res, mid=False):
            return ResnetBlocWithAttn(
                dim, dim_out, emb_dim=emb_dim, norm_groups=norm_groups, dropout=dropout,
                conv_3d=cross_frame_module,
                temporal_attn=cross_frame_module and temporal_attn and (mid or res in attn_res),
                vsrpp=cross_frame_module and not mid and res in vsrpp_res,
                num_frames=num_frames, head_dim=head_dim, shared_spynet=shared_spynet,
                use_checkpoint=use_checkpoint)

        pre_channel = inner_channel
        feat_channels = [pre_channel]
        now_res = image_size
        downs: list = [PerFrame(nn.Conv2d(in_channel, inner_channel, kernel_size=3, padding=1))]
        for ind, mult in enumerate(channel_mults):
            channel_mult = inner_channel * mult
            for _ in range(res_blocks):
                downs.append(bloc(pre_channel, channel_mult, now_res))
                feat_channels.append(channel_mult)
                pre_channel = channel_mult
            if ind != len(channel_mults) - 1:
                downs.append(PerFrame(Downsample(pre_channel)))
                feat_channels.append(pre_channel)
                now_res //= 2
        self.downs = nn.ModuleList(downs)
        self.mid = nn.ModuleList([bloc(pre_channel, pre_channel, now_res, mid=True)
                                  for _ in range(2)])
        ups: list = []
        for ind in reversed(range(len(channel_mults))):
            channel_mult = inner_channel * channel_mults[ind]
            for _ in range(res_blocks + 1):
                ups.append(bloc(pre_channel + feat_channels.pop(), channel_mult, now_res))
                pre_channel = channel_mult
            if ind > 0:
                ups.append(PerFrame(Upsample(pre_channel)))
                now_res *= 2
        self.ups = nn.ModuleList(ups)
        self.final_conv = Block(pre_channel, out_channel, groups=norm_groups)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, low_res_input: torch.Tensor,
                num_frames: int, rnn_input: Optional[torch.Tensor] = None,
                enable_cross_frames: bool = True,
                vsrpp_weights: Union[None, float, torch.Tensor] = None) -> torch.Tensor:
        """eps prediction.

        Args:
            x: ``[B*T,3,H,W]`` noisy frames x_t in [-1,1] (frames of a clip consecutive).
            timesteps: ``[B*T]`` continuous noise level sqrt(alphabar) of the spaced schedule.
            low_res_input: ``[B,T,3,H,W]`` condition (bicubic-upsampled LQ) in [-1,1].
            num_frames: T.
            rnn_input: ``[B,T,3,H',W']`` frames for SPyNet in [-1,1]; default the condition.
            enable_cross_frames: False skips every temporal layer.
            vsrpp_weights: RFE weight: None, float, or ``[B,T,1,H,W]``.

        Returns:
            ``[B*T,out_channel,H,W]`` in the dtype of ``x``.
        """
        if rnn_input is None:
            rnn_input = low_res_input
        h = x.unflatten(0, (-1, num_frames))
        h = torch.cat((low_res_input.to(h.dtype), h), dim=2)
        mlp_dtype = self.noise_level_mlp[1].weight.dtype
        emb = self.noise_level_mlp(timesteps.to(mlp_dtype))
        in_dtype = h.dtype
        torso = self.torso_dtype or in_dtype
        h = h.to(torso)
        rnn_input = rnn_input.to(torso)
        kw = dict(enable_cross_frames=enable_cross_frames, vsrpp_weights=vsrpp_weights,
                  flow_cache={})  # flows per feature size, shared by the RFE modules
        feats = []
        for layer in self.downs:
            h = layer(h, rnn_input, emb, **kw) if isinstance(layer, ResnetBlocWithAttn) else layer(h)
            feats.append(h)
        for layer in self.mid:
            h = layer(h, rnn_input, emb, **kw)
        for layer in self.ups:
            if isinstance(layer, ResnetBlocWithAttn):
                h = layer(torch.cat((h, feats.pop()), dim=2), rnn_input, emb, **kw)
            else:
                h = layer(h)
        h = h.to(in_dtype)
        return self.final_conv(h).flatten(0, 1)

    def convert_to_fp16(self) -> None:
        """Official fp16 layout: float16 convs (incl. deformable, SPyNet) in downs/mid/ups and
        TemporalAttention q/k/v; norms, embeddings, gates and final_conv stay float32."""
        from .fp16 import convert_torso_to_fp16
        convert_torso_to_fp16(self, (self.downs, self.mid, self.ups))
        self.torso_dtype = torch.float16
