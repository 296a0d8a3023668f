"""GMFlow optical flow, the flow network inside KEEP.

GMFlow: "GMFlow: Learning Optical Flow via Global Matching" (Xu, Zhang, Cai, Rezatofighi,
Tao, CVPR 2022), official code https://github.com/haofeixu/gmflow (commit b5123431, the
submodule pinned by KEEP). KEEP (Feng, Li, Loy, ECCV 2024, https://github.com/jnjaby/KEEP)
runs it with one scale, 2x2 attention windows, global matching and global propagation, and
stores its weights inside the KEEP checkpoint under ``flownet.model.*``.

Parameter names follow the official modules so that state dicts load unchanged. Facts kept
from the official code on purpose:

* the flow propagation key is ``k_proj(q_proj(feature))`` (the query is projected twice),
  an upstream quirk the released weights were trained with;
* the sine position embedding is computed on one attention window and added to every
  window of both images;
* the two images run as one batch through the transformer and swap roles after every block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GMFlow", "GMFlowResult", "KeepFlowNet", "sine_position_embedding"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- CNN backbone
class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm; a 1x1 conv + norm shortcut when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.norm1 = nn.InstanceNorm2d(out_ch)
        self.norm2 = nn.InstanceNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride),
                                            nn.InstanceNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return F.relu(x + y)


class CNNEncoder(nn.Module):
    """ResNet-like feature extractor to 1/8 resolution (stages 64, 96, 128 channels)."""

    def __init__(self, output_dim: int = 128):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)  # 1/2
        self.norm1 = nn.InstanceNorm2d(64)
        self.layer1 = nn.Sequential(ResidualBlock(64, 64, 1), ResidualBlock(64, 64))  # 1/2
        self.layer2 = nn.Sequential(ResidualBlock(64, 96, 2), ResidualBlock(96, 96))  # 1/4
        self.layer3 = nn.Sequential(ResidualBlock(96, 128, 2), ResidualBlock(128, 128))  # 1/8
        self.conv2 = nn.Conv2d(128, output_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.conv2(x)


# --------------------------------------------------------------------------- position, windows
def sine_position_embedding(h: int, w: int, channels: int, *, dtype: torch.dtype,
                            device: torch.device | None = None) -> torch.Tensor:
    """DETR-style normalised sine embedding of an h x w grid, y half first.

    The official code computes it in float32; here it follows ``dtype`` (the goldens use
    float64, and in float32 both agree).

    Returns:
        [1, channels, h, w] tensor.
    """
    num_feats = channels // 2
    scale, eps = 2 * math.pi, 1e-6
    y = torch.arange(1, h + 1, dtype=dtype, device=device)  # cumsum of ones
    x = torch.arange(1, w + 1, dtype=dtype, device=device)
    y = y / (y[-1:] + eps) * scale
    x = x / (x[-1:] + eps) * scale
    dim_t = torch.arange(num_feats, dtype=dtype, device=device)
    dim_t = 10000 ** (2 * (dim_t // 2) / num_feats)

    def encode(v: torch.Tensor) -> torch.Tensor:  # [n] -> [n, num_feats], sin/cos interleaved
        p = v[:, None] / dim_t
        return torch.stack((p[:, 0::2].sin(), p[:, 1::2].cos()), dim=2).flatten(1)

    pos_y = encode(y)[:, None, :].expand(h, w, num_feats)
    pos_x = encode(x)[None, :, :].expand(h, w, num_feats)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)[None]


def split_windows(x: torch.Tensor, splits: int) -> torch.Tensor:
    """[B, H, W, C] -> [B*splits*splits, H/splits, W/splits, C], windows row-major."""
    b, h, w, c = x.shape
    x = x.view(b, splits, h // splits, splits, w // splits, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b * splits * splits, h // splits, w // splits, c)


def merge_windows(x: torch.Tensor, splits: int) -> torch.Tensor:
    """Inverse of :func:`split_windows`."""
    bk, hw, ww, c = x.shape
    b = bk // (splits * splits)
    x = x.view(b, splits, splits, hw, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, splits * hw, splits * ww, c)


def shifted_window_mask(h: int, w: int, splits: int, *, dtype: torch.dtype,
                        device: torch.device | None = None) -> torch.Tensor:
    """Swin mask for windows shifted by half a window: -100 between tokens of different regions.

    Returns:
        [splits*splits, L, L] additive mask, L = (h/splits)*(w/splits).
    """
    wh, ww = h // splits, w // splits
    sh, sw = wh // 2, ww // 2
    labels = torch.zeros(1, h, w, 1, dtype=dtype, device=device)
    count = 0
    for hs in (slice(0, -wh), slice(-wh, -sh), slice(-sh, None)):
        for ws in (slice(0, -ww), slice(-ww, -sw), slice(-sw, None)):
            labels[:, hs, ws, :] = count
            count += 1
    labels = split_windows(labels, splits).view(-1, wh * ww)
    diff = labels[:, None, :] - labels[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, h: int, w: int,
                     splits: int, shift_mask: torch.Tensor | None) -> torch.Tensor:
    """Single-head attention inside splits x splits windows; shifted by half a window when a mask is given.

    Args:
        q, k, v: [B, h*w, C] projected tokens (row-major).
        shift_mask: None for plain windows, else the mask of :func:`shifted_window_mask`.

    Returns:
        [B, h*w, C].
    """
    b, _, c = q.shape
    wh, ww = h // splits, w // splits
    shift = (wh // 2, ww // 2)
    tiles = []
    for t in (q, k, v):
        t = t.view(b, h, w, c)
        if shift_mask is not None:
            t = torch.roll(t, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        tiles.append(split_windows(t, splits).reshape(-1, wh * ww, c))
    qw, kw, vw = tiles
    scores = torch.matmul(qw, kw.transpose(1, 2)) / (c ** 0.5)
    if shift_mask is not None:
        scores = (scores.view(b, splits * splits, wh * ww, wh * ww) + shift_mask).flatten(0, 1)
    out = torch.matmul(torch.softmax(scores, dim=-1), vw)
    out = merge_windows(out.view(-1, wh, ww, c), splits)
    if shift_mask is not None:
        out = torch.roll(out, shifts=shift, dims=(1, 2))
    return out.reshape(b, h * w, c)


# --------------------------------------------------------------------------- transformer
class TransformerLayer(nn.Module):
    """Single-head (window) attention, merge + LayerNorm; optionally an FFN on [source, message]."""

    def __init__(self, dim: int = 128, with_ffn: bool = True, ffn_expansion: int = 4):
        super().__init__()
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.merge = nn.Linear(dim, dim, bias=False)
        self.norm1 = nn.LayerNorm(dim)
        self.with_ffn = with_ffn
        if with_ffn:
            hidden = 2 * dim * ffn_expansion
            self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden, bias=False), nn.GELU(),
                                     nn.Linear(hidden, dim, bias=False))
            self.norm2 = nn.LayerNorm(dim)

    def forward(self, source: torch.Tensor, target: torch.Tensor, h: int, w: int, splits: int,
                shift_mask: torch.Tensor | None) -> torch.Tensor:
        message = window_attention(self.q_proj(source), self.k_proj(target), self.v_proj(target),
                                   h, w, splits, shift_mask)
        message = self.norm1(self.merge(message))
        if self.with_ffn:
            message = self.norm2(self.mlp(torch.cat([source, message], dim=-1)))
        return source + message


class TransformerBlock(nn.Module):
    """Self-attention (no FFN) then cross-attention with FFN."""

    def __init__(self, dim: int = 128, shifted: bool = False):
        super().__init__()
        self.shifted = shifted
        self.self_attn = TransformerLayer(dim, with_ffn=False)
        self.cross_attn_ffn = TransformerLayer(dim, with_ffn=True)

    def forward(self, source, target, h, w, splits, shift_mask):
        mask = shift_mask if self.shifted else None
        source = self.self_attn(source, source, h, w, splits, mask)
        return self.cross_attn_ffn(source, target, h, w, splits, mask)


class FeatureTransformer(nn.Module):
    """6 blocks; odd blocks use shifted windows. Both images form one batch and swap roles per block."""

    def __init__(self, num_layers: int = 6, dim: int = 128):
        super().__init__()
        self.layers = nn.ModuleList([TransformerBlock(dim, shifted=i % 2 == 1) for i in range(num_layers)])

    def forward(self, feature0: torch.Tensor, feature1: torch.Tensor, splits: int):
        b, c, h, w = feature0.shape
        shift_mask = shifted_window_mask(h, w, splits, dtype=feature0.dtype, device=feature0.device)
        f0 = feature0.flatten(2).transpose(1, 2)
        f1 = feature1.flatten(2).transpose(1, 2)
        source, target = torch.cat((f0, f1)), torch.cat((f1, f0))
        for layer in self.layers:
            source = layer(source, target, h, w, splits, shift_mask)
            target = torch.cat(source.chunk(2)[::-1])
        f0, f1 = source.chunk(2)
        as_map = lambda t: t.transpose(1, 2).reshape(b, c, h, w)  # noqa: E731
        return as_map(f0), as_map(f1)


class FeatureFlowAttention(nn.Module):
    """Global flow propagation: self-attention on feature0 whose values are the flow."""

    def __init__(self, dim: int = 128):
        super().__init__()
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)

    def forward(self, feature0: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        b, c, h, w = feature0.shape
        query = self.q_proj(feature0.flatten(2).transpose(1, 2))
        key = self.k_proj(query)  # official quirk: the key projects the projected query
        value = flow.flatten(2).transpose(1, 2)  # [B, HW, 2]
        prob = torch.softmax(torch.matmul(query, key.transpose(1, 2)) / (c ** 0.5), dim=-1)
        return torch.matmul(prob, value).transpose(1, 2).reshape(b, 2, h, w)


# --------------------------------------------------------------------------- matching, upsampling
def pixel_grid(b: int, h: int, w: int, *, dtype: torch.dtype, device=None) -> torch.Tensor:
    """[B, 2, H, W] integer pixel coordinates, channel 0 = x."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=dtype, device=device),
                            torch.arange(w, dtype=dtype, device=device), indexing="ij")
    return torch.stack((xs, ys))[None].expand(b, 2, h, w)


def global_matching_flow(feature0: torch.Tensor, feature1: torch.Tensor) -> torch.Tensor:
    """Softmax over all positions of feature1; flow = expected coordinate - own coordinate.

    Returns:
        [B, 2, H, W] flow in feature-map pixels.
    """
    b, c, h, w = feature0.shape
    corr = torch.matmul(feature0.flatten(2).transpose(1, 2), feature1.flatten(2)) / (c ** 0.5)
    grid = pixel_grid(b, h, w, dtype=feature0.dtype, device=feature0.device)
    prob = torch.softmax(corr, dim=-1)
    match = torch.matmul(prob, grid.flatten(2).transpose(1, 2))  # [B, HW, 2]
    return match.transpose(1, 2).reshape(b, 2, h, w) - grid


@dataclass
class GMFlowResult:
    """Flow and the intermediates the conformance tests compare.

    Attributes:
        flow: [B,2,H,W] full-resolution flow in pixels (channel 0 = x).
        flow_lowres: [B,2,H/8,W/8] after propagation, before convex upsampling.
        global_match_flow: [B,2,H/8,W/8] global matching result entering propagation.
        backbone_feature0: [B,128,H/8,W/8] CNN features of img0, before the position embedding.
        transformer_feature0: [B,128,H/8,W/8] transformer output for img0.
    """

    flow: torch.Tensor
    flow_lowres: torch.Tensor
    global_match_flow: torch.Tensor
    backbone_feature0: torch.Tensor
    transformer_feature0: torch.Tensor


class GMFlow(nn.Module):
    """GMFlow with one scale, global matching and global propagation, x8 convex upsampling.

    Input: two RGB images in [0, 255]; the flow maps img0 pixels into img1
    (img1 sampled at p + flow(p) aligns with img0).
    """

    def __init__(self, feature_channels: int = 128, num_transformer_layers: int = 6,
                 upsample_factor: int = 8, attn_splits: int = 2):
        super().__init__()
        self.upsample_factor = upsample_factor
        self.attn_splits = attn_splits
        self.feature_channels = feature_channels
        self.backbone = CNNEncoder(feature_channels)
        self.transformer = FeatureTransformer(num_transformer_layers, feature_channels)
        self.feature_flow_attn = FeatureFlowAttention(feature_channels)
        self.upsampler = nn.Sequential(nn.Conv2d(2 + feature_channels, 256, 3, 1, 1), nn.ReLU(),
                                       nn.Conv2d(256, upsample_factor ** 2 * 9, 1))

    def upsample_flow(self, flow: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """Convex upsampling: each output pixel is a softmax-weighted mix of the 3x3 coarse neighbours."""
        b, _, h, w = flow.shape
        k = self.upsample_factor
        mask = self.upsampler(torch.cat((flow, feature), dim=1)).view(b, 1, 9, k, k, h, w)
        mask = torch.softmax(mask, dim=2)
        neighbours = F.unfold(k * flow, [3, 3], padding=1).view(b, 2, 9, 1, 1, h, w)
        up = (mask * neighbours).sum(dim=2)  # [B, 2, k, k, H, W]
        return up.permute(0, 1, 4, 2, 5, 3).reshape(b, 2, k * h, k * w)

    def estimate(self, img0: torch.Tensor, img1: torch.Tensor) -> GMFlowResult:
        """Flow from img0 to img1 with intermediates.

        Args:
            img0, img1: [B,3,H,W] float RGB in [0,255]; H and W multiples of 8 * attn_splits (512 in KEEP).
        """
        mean = torch.tensor(IMAGENET_MEAN, dtype=img0.dtype, device=img0.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=img0.dtype, device=img0.device).view(1, 3, 1, 1)
        img0 = (img0 / 255.0 - mean) / std
        img1 = (img1 / 255.0 - mean) / std

        b = img0.shape[0]
        feats = self.backbone(torch.cat((img0, img1)))
        backbone0, backbone1 = feats[:b], feats[b:]
        _, c, h, w = backbone0.shape
        s = self.attn_splits
        pos = sine_position_embedding(h // s, w // s, c, dtype=feats.dtype, device=feats.device)
        pos = pos.repeat(1, 1, s, s)  # the same window embedding in every window
        feature0, feature1 = self.transformer(backbone0 + pos, backbone1 + pos, s)

        match_flow = global_matching_flow(feature0, feature1)
        flow = self.feature_flow_attn(feature0, match_flow)
        return GMFlowResult(flow=self.upsample_flow(flow, feature0), flow_lowres=flow,
                            global_match_flow=match_flow, backbone_feature0=backbone0,
                            transformer_feature0=feature0)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        """[B,2,H,W] flow from img0 to img1; inputs RGB in [0,255]."""
        return self.estimate(img0, img1).flow


class KeepFlowNet(nn.Module):
    """GMFlow behind KEEP's [-1,1] interface (KEEP ``basicsr/archs/gmflow_arch.py`` FlowGenerator)."""

    def __init__(self):
        super().__init__()
        self.model = GMFlow()

    def estimate(self, img0: torch.Tensor, img1: torch.Tensor) -> GMFlowResult:
        """Args: img0, img1: [B,3,H,W] float RGB in [-1,1]."""
        return self.model.estimate((img0 + 1) / 2 * 255, (img1 + 1) / 2 * 255)  # [-1,1] -> [0,255]

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        """[B,2,H,W] flow from img0 to img1 in pixels; inputs [B,3,H,W] RGB in [-1,1]."""
        return self.estimate(img0, img1).flow
