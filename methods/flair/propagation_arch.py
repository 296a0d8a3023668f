"""Recurrent feature enhancement (RFE) of FLAIR: BasicVSR++-style flow-guided propagation.

FLAIR (Zou et al., WACV 2025, https://github.com/wustl-cig/FLAIR, ``unet.BasicVSRPP`` and
``unet_new.BasicVSRPP``) adapts BasicVSR++ (Chan et al., CVPR 2022; mmediting) to refine
UNet features of a clip: one backward and one forward propagation branch, each aligning
the propagated feature with second-order flow-guided modulated deformable convolution
(``torchvision.ops.deform_conv2d``; run here through ``methods.deform_conv``, which is
faster on CPU), then a reconstruction block and a zero-initialised 1x1
conv added to the input features. FLAIR additionally scales the propagated state (and the
stored branch features) by a per-pixel weight map (its "propagation annealing").
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..deform_conv import deform_conv2d
from .layers_arch import maybe_checkpoint, zero_module
from .spynet_arch import SPyNet, flow_warp

__all__ = ["BasicVSRPP", "SecondOrderDeformableAlignment", "ResidualBlocksWithInputConv"]


class ResidualBlockNoBN(nn.Module):
    """``x + conv2(relu(conv1(x)))`` with 3x3 convs (mmedit ``ResidualBlockNoBN``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ResidualBlocksWithInputConv(nn.Module):
    """3x3 conv + LeakyReLU(0.1), then ``num_blocks`` residual blocks (mmedit layout ``main``)."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int = 1):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1),
            nn.Sequential(*[ResidualBlockNoBN(out_channels) for _ in range(num_blocks)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class SecondOrderDeformableAlignment(nn.Module):
    """Flow-guided modulated deformable alignment of two propagated features.

    Holds the deformable conv ``weight`` ``[C, 2C, 3, 3]`` and ``bias`` (the mmcv
    ``ModulatedDeformConv2d`` layout) and ``conv_offset``, which predicts from
    ``[cond_n1, feat_current, cond_n2, flow_1, flow_2]`` the offset residues (bounded by
    ``max_residue_magnitude * tanh``) and the modulation mask. The first C input channels
    (aligned with ``flow_1``) use deformable groups 0..7, the second C (``flow_2``) 8..15.
    """

    def __init__(self, in_channels: int, out_channels: int, *, deform_groups: int = 16,
                 max_residue_magnitude: float = 10):
        super().__init__()
        self.max_residue_magnitude = max_residue_magnitude
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        stdv = 1.0 / math.sqrt(in_channels * 9)
        nn.init.uniform_(self.weight, -stdv, stdv)
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * out_channels + 4, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1),
            zero_module(nn.Conv2d(out_channels, 27 * deform_groups, 3, 1, 1)))

    def forward(self, x: torch.Tensor, extra_feat: torch.Tensor, flow_1: torch.Tensor,
                flow_2: torch.Tensor) -> torch.Tensor:
        """x ``[N,2C,h,w]``, extra_feat ``[N,3C,h,w]``, flows ``[N,2,h,w]`` (dx, dy) -> ``[N,C,h,w]``."""
        out = self.conv_offset(torch.cat([extra_feat, flow_1, flow_2], dim=1))
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        offset = self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), dim=1))
        offset_1, offset_2 = torch.chunk(offset, 2, dim=1)
        # deform_conv2d offsets are (dy, dx) pairs, one per kernel tap and group
        offset_1 = offset_1 + flow_1.flip(1).repeat(1, offset_1.size(1) // 2, 1, 1)
        offset_2 = offset_2 + flow_2.flip(1).repeat(1, offset_2.size(1) // 2, 1, 1)
        offset = torch.cat([offset_1, offset_2], dim=1)
        return deform_conv2d(x, offset, self.weight, self.bias, padding=1, mask=torch.sigmoid(mask))


class BasicVSRPP(nn.Module):
    """Bidirectional flow-guided propagation over the frames of UNet features.

    Args:
        mid_channels: feature channels C.
        max_residue_magnitude: offset residue bound (5 in sr3, 10 in unet_new).
        spynet: flow network; sr3 passes one instance shared by all its RFE modules and
            computes flows inside (:meth:`compute_flow`); unet_new passes None and feeds flows.
        use_checkpoint: activation checkpointing of the alignment, backbone and
            reconstruction steps (sr3) or, with ``checkpoint_whole``, of the whole module
            (unet_new).
    """

    branches = ("backward_1", "forward_1")

    def __init__(self, mid_channels: int, max_residue_magnitude: float = 10, *,
                 spynet: Optional[SPyNet] = None, use_checkpoint: bool = False,
                 checkpoint_whole: bool = False):
        super().__init__()
        self.mid_channels = mid_channels
        self.use_checkpoint = use_checkpoint
        self.checkpoint_whole = checkpoint_whole
        if spynet is not None:
            self.spynet = spynet
        self.deform_align = nn.ModuleDict()
        self.backbone = nn.ModuleDict()
        for i, name in enumerate(self.branches):
            self.deform_align[name] = SecondOrderDeformableAlignment(
                2 * mid_channels, mid_channels, deform_groups=16,
                max_residue_magnitude=max_residue_magnitude)
            self.backbone[name] = ResidualBlocksWithInputConv((2 + i) * mid_channels,
                                                              mid_channels, 1)
        self.reconstruction = ResidualBlocksWithInputConv(3 * mid_channels, mid_channels, 1)
        self.conv_last = zero_module(nn.Conv2d(mid_channels, mid_channels, 1, 1))

    @torch.no_grad()
    def compute_flow(self, lqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flows between neighbouring frames with the held SPyNet.

        Args:
            lqs: ``[n,T,3,h,w]`` frames in [-1,1].

        Returns:
            ``(flows_forward, flows_backward)``, each ``[n,T-1,2,h,w]``:
            ``flows_backward[:, i]`` = SPyNet(ref=frame i, supp=frame i+1),
            ``flows_forward[:, i]`` = SPyNet(ref=frame i+1, supp=frame i).
        """
        return flows_between_frames(self.spynet, lqs)

    def _step(self, fn, *args):
        enabled = self.use_checkpoint and not self.checkpoint_whole
        return maybe_checkpoint(fn, *args, enabled=enabled)

    def _propagate(self, spatial: list, done: dict, flows: torch.Tensor, name: str,
                   weight: torch.Tensor) -> list:
        t = len(spatial)
        backward = name.startswith("backward")
        frames = list(range(t - 1, -1, -1)) if backward else list(range(t))
        n, _, h, w = spatial[0].shape
        dtype = spatial[0].dtype
        feat_prop = spatial[0].new_zeros(n, self.mid_channels, h, w)
        outs: list = []
        for i, idx in enumerate(frames):
            feat_current = spatial[idx]
            if i > 0:
                # backward: flow from frame idx to idx+1; forward: from idx to idx-1
                flow_n1 = flows[:, idx if backward else idx - 1].to(dtype)
                cond_n1 = flow_warp(feat_prop, flow_n1.permute(0, 2, 3, 1))
                feat_n2 = torch.zeros_like(feat_prop)
                flow_n2 = torch.zeros_like(flow_n1)
                cond_n2 = torch.zeros_like(cond_n1)
                if i > 1:  # second-order: two frames back along the propagation
                    feat_n2 = outs[-2]
                    flow_n2 = flows[:, idx + 1 if backward else idx - 2].to(dtype)
                    flow_n2 = flow_n1 + flow_warp(flow_n2, flow_n1.permute(0, 2, 3, 1))
                    cond_n2 = flow_warp(feat_n2, flow_n2.permute(0, 2, 3, 1))
                cond = torch.cat([cond_n1, feat_current, cond_n2], dim=1)
                feat_prop = torch.cat([feat_prop, feat_n2], dim=1)
                feat_prop = self._step(self.deform_align[name], feat_prop, cond, flow_n1,
                                       flow_n2)
            feat = torch.cat([feat_current] + [done[k][idx] for k in done] + [feat_prop], dim=1)
            feat_prop = feat_prop + self._step(self.backbone[name], feat)
            # Official scales in place after storing: the stored feature is scaled too.
            feat_prop = feat_prop * weight[:, idx]
            outs.append(feat_prop)
        return outs[::-1] if backward else outs

    def forward(self, hidden: torch.Tensor, flows_forward: torch.Tensor,
                flows_backward: torch.Tensor,
                weight: Union[None, float, torch.Tensor] = None) -> torch.Tensor:
        """Refine ``hidden`` ``[n,T,C,h,w]`` given flows ``[n,T-1,2,h,w]`` at its size.

        ``weight``: None (1), a float, or a map ``[n,T,1,H,W]`` (resized nearest to h,w).
        Returns ``[n,T,C,h,w]``.
        """
        return maybe_checkpoint(
            lambda x: self._forward(x, flows_forward, flows_backward, weight), hidden,
            enabled=self.use_checkpoint and self.checkpoint_whole)

    def _forward(self, hidden, flows_forward, flows_backward, weight):
        n, t, c, h, w = hidden.shape
        if weight is None or isinstance(weight, (int, float)):
            value = 1.0 if weight is None else float(weight)
            weight = hidden.new_full((n, t, 1, 1, 1), value)
        else:
            if weight.shape[-2:] != (h, w):
                weight = F.interpolate(weight.flatten(0, 1), size=(h, w),
                                       mode="nearest").unflatten(0, (n, t))
            weight = weight.to(hidden.dtype)
        spatial = list(hidden.unbind(1))
        done: dict = {}
        for name in self.branches:
            flows = flows_backward if name.startswith("backward") else flows_forward
            done[name] = self._propagate(spatial, done, flows, name, weight)
        # reconstruction of all frames at once: [n*T, 3C, h, w]
        feats = torch.stack([torch.cat([spatial[i]] + [done[k][i] for k in self.branches], 1)
                             for i in range(t)], dim=1).flatten(0, 1)
        recons = self._step(self.reconstruction, feats)
        return self.conv_last(recons).unflatten(0, (n, t)) + hidden


def flows_between_frames(spynet: SPyNet, lqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(flows_forward, flows_backward)`` ``[n,T-1,2,h,w]`` of frames ``lqs`` ``[n,T,3,h,w]`` in [-1,1].

    SPyNet sees ``((lqs + 1) / 2).clamp(0, 1)``; both directions run as one batch.
    """
    with torch.no_grad():
        x = ((lqs + 1) / 2).clamp(0, 1)
        n, t, c, h, w = x.shape
        a = x[:, :-1].reshape(-1, c, h, w)
        b = x[:, 1:].reshape(-1, c, h, w)
        flows = spynet(torch.cat([a, b]), torch.cat([b, a]))
        flows_backward, flows_forward = flows.view(2, n, t - 1, 2, h, w).unbind(0)
        return flows_forward, flows_backward
