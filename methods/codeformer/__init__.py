"""CodeFormer (Zhou et al., NeurIPS 2022; github.com/sczhou/CodeFormer).

`arch` holds the network; `vqgan_arch` and `transformer_arch` hold the building blocks
that KEEP and DicFace reuse. Nothing heavy is imported here.
"""
