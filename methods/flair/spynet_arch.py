"""SPyNet optical flow as embedded in the FLAIR video UNets.

SPyNet: Ranjan & Black, "Optical Flow Estimation using a Spatial Pyramid Network", CVPR
2017, in the variant of mmediting 0.12 (``mmedit.models.backbones.sr_backbones.
basicvsr_net.SPyNet``, https://github.com/open-mmlab/mmediting): six pyramid levels of
five 7x7 convs (8-32-64-32-16-2, ReLU except the last), ImageNet mean/std kept as
persistent buffers. FLAIR (Zou et al., WACV 2025, https://github.com/wustl-cig/FLAIR)
uses it inside its recurrent feature enhancement; the weights live in the FLAIR
checkpoints (no separate file).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SPyNet", "flow_warp"]


def flow_warp(x: torch.Tensor, flow: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Backward-warp ``x`` with a pixel-unit flow (mmedit ``flow_warp``).

    Args:
        x: ``[N,C,H,W]`` features or images.
        flow: ``[N,H,W,2]`` displacement in pixels, last dim (dx, dy).
        padding_mode: ``grid_sample`` padding ('zeros' or 'border').

    Returns:
        ``[N,C,H,W]`` bilinear samples at ``(x+dx, y+dy)`` (align_corners=True).
    """
    if x.shape[-2:] != flow.shape[1:3]:
        raise ValueError(f"flow_warp: feature size {tuple(x.shape[-2:])} != flow size "
                         f"{tuple(flow.shape[1:3])}")
    h, w = x.shape[-2:]
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device),
                            indexing="ij")
    grid = torch.stack((gx, gy), dim=2).to(x.dtype) + flow  # [N,H,W,2] in pixels
    gxn = 2.0 * grid[..., 0] / max(w - 1, 1) - 1.0
    gyn = 2.0 * grid[..., 1] / max(h - 1, 1) - 1.0
    return F.grid_sample(x, torch.stack((gxn, gyn), dim=3), mode="bilinear",
                         padding_mode=padding_mode, align_corners=True)


class ConvModule(nn.Module):
    """Conv2d followed by an optional ReLU (mmcv ``ConvModule`` without norm; key ``conv``)."""

    def __init__(self, cin: int, cout: int, relu: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=7, stride=1, padding=3)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.relu(x) if self.relu else x


class SPyNetBasicModule(nn.Module):
    """One pyramid level: ``[N,8,h,w]`` (ref, warped supp, upsampled flow) -> flow residue."""

    def __init__(self):
        super().__init__()
        chans = (8, 32, 64, 32, 16, 2)
        self.basic_module = nn.Sequential(*[
            ConvModule(chans[i], chans[i + 1], relu=i < 4) for i in range(5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


class SPyNet(nn.Module):
    """Coarse-to-fine flow from ``ref`` to ``supp``.

    Forward: ``ref``, ``supp`` ``[N,3,H,W]`` RGB in [0,1] -> flow ``[N,2,H,W]`` in pixels
    (channel 0 = x, 1 = y) such that ``flow_warp(supp, flow)`` approximates ``ref``.
    Inputs are resized (bilinear) to a multiple of 32 and the flow back.
    """

    def __init__(self):
        super().__init__()
        self.basic_module = nn.ModuleList([SPyNetBasicModule() for _ in range(6)])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _pyramid_flow(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        n, _, h, w = ref.shape
        # Official: (x - mean) / std promotes to the buffer dtype. Cast to the conv dtype so the
        # fp16 layout of sr3 (SPyNet convs in float16, buffers in float32) runs; a no-op in
        # float32/float64.
        conv_dtype = self.basic_module[0].basic_module[0].conv.weight.dtype
        refs = [((ref - self.mean) / self.std).to(conv_dtype)]
        supps = [((supp - self.mean) / self.std).to(conv_dtype)]
        for _ in range(5):
            refs.append(F.avg_pool2d(refs[-1], kernel_size=2, stride=2, count_include_pad=False))
            supps.append(F.avg_pool2d(supps[-1], kernel_size=2, stride=2,
                                      count_include_pad=False))
        refs, supps = refs[::-1], supps[::-1]
        flow = refs[0].new_zeros(n, 2, h // 32, w // 32)
        for level, module in enumerate(self.basic_module):
            if level == 0:
                flow_up = flow
            else:
                flow_up = F.interpolate(flow, scale_factor=2, mode="bilinear",
                                        align_corners=True) * 2.0
            warped = flow_warp(supps[level], flow_up.permute(0, 2, 3, 1), padding_mode="border")
            flow = flow_up + module(torch.cat([refs[level], warped, flow_up], dim=1))
        return flow

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        h, w = ref.shape[2:4]
        w_up = w if w % 32 == 0 else 32 * (w // 32 + 1)
        h_up = h if h % 32 == 0 else 32 * (h // 32 + 1)
        ref = F.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
        flow = F.interpolate(self._pyramid_flow(ref, supp), size=(h, w), mode="bilinear",
                             align_corners=False)
        scale = flow.new_tensor([w / w_up, h / h_up]).view(1, 2, 1, 1)
        return flow * scale
