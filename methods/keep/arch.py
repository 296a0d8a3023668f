"""KEEP network: Kalman-inspired feature propagation for video face super-resolution.

KEEP: Ruicheng Feng, Chongyi Li, Chen Change Loy, "Kalman-Inspired Feature Propagation for
Video Face Super-Resolution", ECCV 2024; official code https://github.com/jnjaby/KEEP
(``basicsr/archs/keep_arch.py``, class ``KEEP``). Own re-implementation with the official
state-dict layout (896 entries; ``KEEP-a1a14d46.pth`` loads with strict=True).

Per clip (B=1 in the official pipeline, T >= 2 frames, 512x512 RGB in [-1,1]):

1. GMFlow backward flow for every consecutive pair (frame k+1 -> frame k), once.
2. LQ encoder on all frames, keeping the skip features at 64, 32 and 16.
3. Kalman gains of all frames from the LQ latents (non-causal temporal attention inside).
4. Frame by frame: the previous output image is warped by the flow and re-encoded by
   ``hq_encoder`` (prediction); z_hat = (1-g) z_lq + g z_pred (update; frame 0: z_lq);
   a CodeFormer-style transformer predicts code indices from z_hat; the VQGAN generator
   decodes the codebook features with SFT fusion of the LQ skip features (16, 32, 64) and
   cross-frame attention to the previous frame's generator features (16, 32).

The VQGAN blocks, code transformer layer and SFT fusion are the shared CodeFormer ones.
The output depends on flow, Kalman filter and transformer only through the discrete codes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfr_bench.methods.codeformer.transformer_arch import FuseSFTBlock, TransformerSALayer
from vfr_bench.methods.codeformer.vqgan_arch import (ENCODER_SKIP_BLOCK, GENERATOR_FUSE_BLOCK, Encoder,
                                                     Generator, VectorQuantizer)

from .cross_fusion_arch import CrossFrameFusionLayer
from .gmflow_arch import GMFlowResult, KeepFlowNet
from .kalman_arch import KalmanFilter

__all__ = ["KEEP", "KeepTrace", "FEATURE_CHANNELS"]

# generator / encoder channels by feature size for the default VQGAN
FEATURE_CHANNELS = {"16": 512, "32": 256, "64": 256, "128": 128, "256": 128, "512": 64}


@dataclass
class KeepTrace:
    """Intermediates of one forward, filled when passed to :meth:`KEEP.run` (for tests/diagnosis).

    Per-frame lists hold one entry per frame (``z_prime`` and ``pred_img`` start at frame 1,
    ``cross_fuse`` entries at frame 1). Tensors keep the batch axis.
    """

    flow: Optional[GMFlowResult] = None
    lq_latent: Optional[Tensor] = None            # [B*T, 256, 16, 16]
    enc_feats: dict = field(default_factory=dict)  # size -> [B*T, C, s, s]
    uncertainty_tokens: Optional[Tensor] = None   # [B*T, 256, 256]
    gain: Optional[Tensor] = None                 # [B, T, 1, 16, 16]
    pred_img: list = field(default_factory=list)  # [B, 3, H, W] per frame >= 1
    z_prime: list = field(default_factory=list)   # [B, 256, 16, 16] per frame >= 1
    z_hat: list = field(default_factory=list)     # [B, 256, 16, 16]
    transformer_out: list = field(default_factory=list)  # [256, B, 512]
    logits: list = field(default_factory=list)    # [B, 256, 1024]
    code_idx: list = field(default_factory=list)  # [B, 256] predicted top-1 (before any forcing)
    quant_feat: list = field(default_factory=list)  # [B, 256, 16, 16]
    sft_out: dict = field(default_factory=dict)   # size -> list of [B, C, s, s]
    cross_fuse: dict = field(default_factory=dict)  # size -> list of [B, C, s, s] (frames >= 1)


class KEEP(nn.Module):
    """KEEP with the official constructor (defaults = the released checkpoint's settings).

    Args:
        img_size: frame size (512).
        nf: VQGAN base width.
        ch_mult: VQGAN width multipliers.
        res_blocks: ResBlocks per VQGAN level.
        attn_resolutions: VQGAN attention resolutions.
        codebook_size: number of codes.
        emb_dim: latent / code width.
        dim_embd: transformer width.
        n_head: transformer heads (also the Kalman uncertainty blocks' heads).
        n_layers: transformer layers.
        latent_size: tokens per frame (16*16).
        connect_list: sizes with SFT fusion of LQ encoder features.
        kalman_attn_head_dim: width per head in the uncertainty blocks.
        num_uncertainty_layers: number of uncertainty blocks.
        cond: SFT fusion weight w.
        cross_fuse_list: sizes with cross-frame fusion.
        cross_fuse_nhead: heads of the cross-frame fusion.
        cross_fuse_dim: width per head of the cross-frame fusion.
        cross_residual: residual connections in the cross-frame fusion.
    """

    def __init__(self, img_size: int = 512, nf: int = 64, ch_mult: Sequence[int] = (1, 2, 2, 4, 4, 8),
                 res_blocks: int = 2, attn_resolutions: Sequence[int] = (16,), codebook_size: int = 1024,
                 emb_dim: int = 256, dim_embd: int = 512, n_head: int = 8, n_layers: int = 9,
                 latent_size: int = 256, connect_list: Sequence[str] = ("16", "32", "64"),
                 kalman_attn_head_dim: int = 48, num_uncertainty_layers: int = 3, cond: float = 1.0,
                 cross_fuse_list: Sequence[str] = ("16", "32"), cross_fuse_nhead: int = 4,
                 cross_fuse_dim: int = 256, cross_residual: bool = True):
        super().__init__()
        self.connect_list = [str(s) for s in connect_list]
        self.cross_fuse_list = [str(s) for s in cross_fuse_list]
        self.cond = cond
        self.use_residual = cross_residual
        self.latent_size = latent_size
        self.emb_dim = emb_dim

        # registration order = official state-dict order (position_emb comes first anyway)
        self.flownet = KeepFlowNet()
        self.kalman_filter = KalmanFilter(emb_dim, n_head, kalman_attn_head_dim, num_uncertainty_layers)
        self.hq_encoder = Encoder(3, nf, emb_dim, ch_mult, res_blocks, img_size, attn_resolutions)
        self.encoder = Encoder(3, nf, emb_dim, ch_mult, res_blocks, img_size, attn_resolutions)
        self.quantize = VectorQuantizer(codebook_size, emb_dim)
        self.generator = Generator(nf, emb_dim, ch_mult, res_blocks, img_size, attn_resolutions)
        self.position_emb = nn.Parameter(torch.zeros(latent_size, dim_embd))
        self.feat_emb = nn.Linear(emb_dim, dim_embd)
        self.ft_layers = nn.Sequential(*[TransformerSALayer(dim_embd, n_head, dim_mlp=2 * dim_embd)
                                         for _ in range(n_layers)])
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(dim_embd),
                                            nn.Linear(dim_embd, codebook_size, bias=False))
        self.cross_fuse = nn.ModuleDict({
            s: CrossFrameFusionLayer(FEATURE_CHANNELS[s], cross_fuse_nhead, cross_fuse_dim)
            for s in self.cross_fuse_list})
        self.fuse_convs_dict = nn.ModuleDict({
            s: FuseSFTBlock(FEATURE_CHANNELS[s], FEATURE_CHANNELS[s]) for s in self.connect_list})

    # ------------------------------------------------------------------ pieces
    def get_flow(self, x: Tensor, trace: Optional[KeepTrace] = None,
                 max_batch_frames: Optional[int] = None) -> Tensor:
        """Backward flow of every consecutive pair (img0 = frame k+1, img1 = frame k).

        Args:
            x: [B,T,3,H,W] in [-1,1].
            max_batch_frames: pairs per GMFlow call (memory only; None = all at once).

        Returns:
            [B,T-1,2,H,W] flow in pixels: frame k sampled at p + flow(p) aligns with frame k+1.
        """
        b, t, c, h, w = x.shape
        later = x[:, 1:].reshape(-1, c, h, w)
        earlier = x[:, :-1].reshape(-1, c, h, w)
        n = later.shape[0] if max_batch_frames is None else max_batch_frames
        parts = [self.flownet.estimate(a, e) for a, e in zip(later.split(n), earlier.split(n))]
        result = GMFlowResult(*(torch.cat([getattr(p, f.name) for p in parts])
                                for f in dataclasses.fields(GMFlowResult)))
        if trace is not None:
            trace.flow = result
        return result.flow.view(b, t - 1, 2, h, w)

    def predict_codes(self, z_hat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Code-prediction transformer.

        Args:
            z_hat: [B,256,16,16] state.

        Returns:
            (transformer output [256,B,512], logits [B,256,1024], code indices [B,256] int64).
        """
        b = z_hat.shape[0]
        pos = self.position_emb.unsqueeze(1).expand(-1, b, -1)
        query = self.feat_emb(z_hat.flatten(2).permute(2, 0, 1))  # [HW, B, dim_embd], row-major tokens
        for layer in self.ft_layers:
            query = layer(query, query_pos=pos)
        logits = self.idx_pred_layer(query).permute(1, 0, 2)
        idx = torch.softmax(logits, dim=2).argmax(dim=2)  # top-1 code
        return query, logits, idx

    # ------------------------------------------------------------------ forward
    def run(self, x: Tensor, need_upscale: bool = False, flows: Optional[Tensor] = None,
            forced_code_idx: Optional[Tensor] = None, trace: Optional[KeepTrace] = None,
            max_batch_frames: Optional[int] = None) -> Tensor:
        """Restore one chunk; optionally inject flow / codes and record intermediates.

        Args:
            x: [B,T,3,H,W] float RGB in [-1,1], T >= 2 (512x512, or 128x128 with need_upscale).
            need_upscale: bilinearly upsample x4 first (the official default; the official
                inference script passes False).
            flows: [B,T-1,2,H,W] flow to use instead of running GMFlow (teacher forcing).
            forced_code_idx: [B,T,256] int64 codes to decode instead of the predicted ones.
            trace: filled with intermediates when given.
            max_batch_frames: frames (flow pairs) per LQ-encoder / GMFlow call; memory only,
                the result does not depend on it (None = the whole chunk at once, as official).

        Returns:
            [B,T,3,H,W] restored frames, nominally [-1,1], not clamped.
        """
        b, t = x.shape[:2]
        if t < 2:
            raise ValueError(f"KEEP needs at least 2 frames per forward (got {t}); duplicate a single frame")
        if need_upscale:
            x = F.interpolate(x.flatten(0, 1), scale_factor=4, mode="bilinear",
                              align_corners=False).unflatten(0, (b, t))
        _, _, c, h, w = x.shape
        if flows is None:
            flows = self.get_flow(x, trace, max_batch_frames)

        skip_blocks = {ENCODER_SKIP_BLOCK[s]: s for s in self.connect_list}
        encoded = [self.encoder(part, keep=skip_blocks)
                   for part in x.reshape(b * t, c, h, w).split(max_batch_frames or b * t)]
        lq_latent = torch.cat([e[0] for e in encoded])
        feats = {i: torch.cat([e[1][i] for e in encoded]) for i in skip_blocks}
        del encoded
        enc_feats = {s: feats[i].unflatten(0, (b, t)) for i, s in skip_blocks.items()}
        z_codes = lq_latent.unflatten(0, (b, t))  # [B,T,256,16,16]
        tokens = self.kalman_filter.uncertainty_tokens(z_codes)
        gains = self.kalman_filter.gain_from_tokens(tokens, t, *z_codes.shape[-2:])
        if trace is not None:
            trace.lq_latent, trace.uncertainty_tokens, trace.gain = lq_latent, tokens, gains
            trace.enc_feats = {s: f.flatten(0, 1) for s, f in enc_feats.items()}

        code_h = int(self.latent_size ** 0.5)
        outs: list[Tensor] = []
        cross_prev: dict[str, Tensor] = {}
        for i in range(t):
            if i == 0:
                z_hat = z_codes[:, 0]
            else:
                pred = self.kalman_filter.predict(outs[-1], flows[:, i - 1])
                z_prime = self.hq_encoder(pred)
                z_hat = self.kalman_filter.update(z_codes[:, i], z_prime, gains[:, i])
                if trace is not None:
                    trace.pred_img.append(pred)
                    trace.z_prime.append(z_prime)
            query, logits, idx = self.predict_codes(z_hat)
            if trace is not None:
                for name, value in (("z_hat", z_hat), ("transformer_out", query), ("logits", logits),
                                    ("code_idx", idx)):
                    getattr(trace, name).append(value)
            if forced_code_idx is not None:
                idx = forced_code_idx[:, i].to(idx.device)
            quant_feat = self.quantize.get_codebook_feat(idx, shape=[b, code_h, code_h, self.emb_dim])
            if trace is not None:
                trace.quant_feat.append(quant_feat)
            fuse = self._generator_fusion(i, {s: f[:, i] for s, f in enc_feats.items()}, cross_prev, trace)
            outs.append(self.generator(quant_feat, fuse=fuse))
        return torch.stack(outs, dim=1)

    def _generator_fusion(self, frame: int, enc: dict[str, Tensor], cross_prev: dict[str, Tensor],
                          trace: Optional[KeepTrace]) -> dict[int, Callable[[Tensor], Tensor]]:
        """Generator hooks of one frame: SFT with the LQ skip feature, then cross-frame fusion."""

        def hook(size: str) -> Callable[[Tensor], Tensor]:
            def fuse(x: Tensor) -> Tensor:
                if size in self.fuse_convs_dict:
                    x = self.fuse_convs_dict[size](enc[size], x, self.cond)
                    if trace is not None:
                        trace.sft_out.setdefault(size, []).append(x)
                if size in self.cross_fuse:
                    if frame > 0:
                        x = self.cross_fuse[size](x, cross_prev[size], residual=self.use_residual)
                        if trace is not None:
                            trace.cross_fuse.setdefault(size, []).append(x)
                    cross_prev[size] = x  # the fused feature is what the next frame attends to
                return x
            return fuse

        sizes = dict.fromkeys(self.connect_list + self.cross_fuse_list)
        return {GENERATOR_FUSE_BLOCK[s]: hook(s) for s in sizes}

    def forward(self, x: Tensor, need_upscale: bool = False, max_batch_frames: Optional[int] = None) -> Tensor:
        """Restore one chunk of frames.

        Args:
            x: [B,T,3,512,512] float RGB in [-1,1], T >= 2 (B = 1 in the official pipeline).
            need_upscale: upsample x4 bilinearly first (official default True; the official
                inference script and this benchmark pass False).
            max_batch_frames: frames per LQ-encoder / GMFlow call (memory only).

        Returns:
            [B,T,3,512,512], nominally [-1,1], not clamped.
        """
        return self.run(x, need_upscale=need_upscale, max_batch_frames=max_batch_frames)
