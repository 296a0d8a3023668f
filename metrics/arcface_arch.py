"""ArcFace IR-SE50: the identity network of IDS[arcface].

The improved-residual ResNet-50 with squeeze-excitation of ArcFace (Deng et al.,
CVPR 2019) in the layout of facexlib's ``recognition/arcface_arch.py`` (``Backbone(50,
0.6, 'ir_se')``, itself from TreB1eN/InsightFace_Pytorch), so
``recognition_arcface_ir_se50.pth`` loads with strict=True. Network only: no I/O,
no weight loading, no device choice.

Input [B,3,112,112] float RGB in [-1,1]; output [B,512] L2-normalised embedding.
"""
from __future__ import annotations

import torch
from torch import nn

# (in_channels, depth, units) per stage; the first unit of each stage has stride 2.
IR50_STAGES = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))


class SqueezeExcite(nn.Module):
    """Channel gating: x * sigmoid(fc2(relu(fc1(avgpool(x)))))."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIRSE(nn.Module):
    """BN-conv3x3-PReLU-conv3x3(stride)-BN-SE residual, plus an identity or 1x1-conv shortcut."""

    def __init__(self, in_channels: int, depth: int, stride: int):
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channels, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth), SqueezeExcite(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class ArcFaceIRSE50(nn.Module):
    """ArcFace IR-SE50 embedding network (facexlib's key layout).

    Args:
        drop_ratio: dropout before the embedding layer (inactive in eval).
    """

    def __init__(self, drop_ratio: float = 0.6):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        # registered before the body, as facexlib's Backbone: the checkpoint's key order
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(drop_ratio), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512))
        units = []
        for cin, depth, n in IR50_STAGES:
            units.append(BottleneckIRSE(cin, depth, 2))
            units += [BottleneckIRSE(depth, depth, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B,3,112,112] float RGB in [-1,1] -> [B,512] unit-norm embeddings."""
        e = self.output_layer(self.body(self.input_layer(x)))
        return e / e.norm(dim=1, keepdim=True)
