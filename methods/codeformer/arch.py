"""CodeFormer network: VQGAN encoder, code-prediction transformer, codebook, fused generator.

Zhou, Chan, Li, Loy, "Towards Robust Blind Face Restoration with Codebook Lookup
Transformer", NeurIPS 2022; official code: github.com/sczhou/CodeFormer
(`basicsr/archs/codeformer_arch.py`). Own re-implementation; the state dict matches the
official one key for key and in order, so `codeformer.pth["params_ema"]` loads strictly.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
from torch import Tensor, nn

from .transformer_arch import FuseSFTBlock, TransformerSALayer
from .vqgan_arch import ENCODER_SKIP_BLOCK, GENERATOR_FUSE_BLOCK, VQAutoEncoder

__all__ = ["CodeFormer", "FUSE_CHANNELS", "calc_mean_std", "adaptive_instance_normalization"]

# Channels of the VQGAN feature at each size (encoder skip = generator fusion point).
FUSE_CHANNELS: dict[str, int] = {"16": 512, "32": 256, "64": 256, "128": 128, "256": 128, "512": 64}


def calc_mean_std(feat: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and std (unbiased variance + eps, then sqrt).

    Args:
        feat: [B,C,H,W].

    Returns:
        (mean, std), each [B,C,1,1].
    """
    b, c = feat.shape[:2]
    flat = feat.reshape(b, c, -1)
    std = (flat.var(dim=2) + eps).sqrt().view(b, c, 1, 1)
    mean = flat.mean(dim=2).view(b, c, 1, 1)
    return mean, std


def adaptive_instance_normalization(content: Tensor, style: Tensor) -> Tensor:
    """Give `content` the per-channel mean and std of `style` (AdaIN).

    CodeFormer's inference uses it to carry the colour/illumination statistics of the
    degraded input's latent over to the codebook features.

    Args:
        content: [B,C,H,W] feature to renormalise (the quantised feature).
        style: [B,C,H,W] feature whose statistics to take (the LQ encoder latent).

    Returns:
        [B,C,H,W].
    """
    style_mean, style_std = calc_mean_std(style)
    content_mean, content_std = calc_mean_std(content)
    return (content - content_mean) / content_std * style_std + style_mean


class CodeFormer(VQAutoEncoder):
    """CodeFormer with the official defaults (512 input, 16x16 tokens, 1024 codes).

    Args:
        dim_embd: transformer width.
        n_head: attention heads.
        n_layers: transformer layers.
        codebook_size: number of codes.
        latent_size: number of tokens (16*16).
        connect_list: feature sizes with encoder->generator SFT fusion.
    """

    def __init__(self, dim_embd: int = 512, n_head: int = 8, n_layers: int = 9,
                 codebook_size: int = 1024, latent_size: int = 256,
                 connect_list: Sequence[str] = ("32", "64", "128", "256")):
        super().__init__(img_size=512, nf=64, ch_mult=(1, 2, 2, 4, 4, 8), res_blocks=2,
                         attn_resolutions=(16,), codebook_size=codebook_size, emb_dim=256)
        self.connect_list = [str(s) for s in connect_list]
        self.position_emb = nn.Parameter(torch.zeros(latent_size, dim_embd))
        self.feat_emb = nn.Linear(256, dim_embd)
        self.ft_layers = nn.Sequential(*[TransformerSALayer(dim_embd, n_head, dim_mlp=2 * dim_embd)
                                         for _ in range(n_layers)])
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(dim_embd),
                                            nn.Linear(dim_embd, codebook_size, bias=False))
        self.fuse_convs_dict = nn.ModuleDict(
            {s: FuseSFTBlock(FUSE_CHANNELS[s], FUSE_CHANNELS[s]) for s in self.connect_list})

    def predict_logits(self, lq_feat: Tensor) -> Tensor:
        """Code logits of each token from the LQ latent.

        Args:
            lq_feat: [B,256,16,16] encoder latent.

        Returns:
            [B,HW,codebook_size] logits, tokens row-major (h outer, w inner).
        """
        tokens = self.feat_emb(lq_feat.flatten(2).permute(2, 0, 1))  # [HW,B,C] sequence first
        pos = self.position_emb.unsqueeze(1)                         # [HW,1,C], broadcast over B
        for layer in self.ft_layers:
            tokens = layer(tokens, query_pos=pos)
        return self.idx_pred_layer(tokens).permute(1, 0, 2)

    def forward(self, x: Tensor, w: float = 0.5, adain: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Restore a batch of aligned faces.

        Args:
            x: [B,3,512,512] float RGB in [-1,1] (B frames, processed independently).
            w: fidelity weight of the encoder->generator fusion; 0 skips it (as officially,
                `w > 0` gates the fusion), 1 is the strongest.
            adain: renormalise the codebook features to the LQ latent's channel statistics
                (the official inference script passes True).

        Returns:
            out [B,3,512,512] (nominally [-1,1], not clamped), logits [B,256,codebook_size],
            lq_feat [B,256,16,16] (encoder latent).
        """
        keep = {ENCODER_SKIP_BLOCK[s]: s for s in self.connect_list}
        lq_feat, skips = self.encoder(x, keep=keep)
        enc_feats = {keep[i]: f for i, f in skips.items()}

        logits = self.predict_logits(lq_feat)
        # Top-1 code per token (of the softmax, as officially; same as argmax of the logits).
        top_idx = torch.topk(torch.softmax(logits, dim=2), 1, dim=2)[1]
        b, c, h, w_ = lq_feat.shape
        quant_feat = self.quantize.get_codebook_feat(top_idx, shape=(b, h, w_, c))
        if adain:
            quant_feat = adaptive_instance_normalization(quant_feat, lq_feat)

        fuse = None
        if w > 0:
            fuse = {GENERATOR_FUSE_BLOCK[s]: partial(self._fuse, s, enc_feats[s], w=w)
                    for s in self.connect_list}
        out = self.generator(quant_feat, fuse=fuse)
        return out, logits, lq_feat

    def _fuse(self, size: str, enc_feat: Tensor, dec_feat: Tensor, w: float) -> Tensor:
        return self.fuse_convs_dict[size](enc_feat, dec_feat, w)
