"""DicFace: Dirichlet-constrained variational codebook learning for video face restoration.

Chen et al., "DicFace: Dirichlet-Constrained Variational Codebook Learning for Temporally
Coherent Video Face Restoration", ICCV 2025; official code:
https://github.com/fudan-generative-vision/DicFace (re-implemented here, not copied).
"""
