"""FLAIR (Zou et al., "Flair: A Conditional Diffusion Framework with Applications to Face
Video Restoration", WACV 2025; official code https://github.com/wustl-cig/FLAIR).

Networks only: ``unet_sr3_arch.UNetSR3`` (x8/x16 bicubic models), ``unet_new_arch.UNetNew``
(x4 Gaussian-blur/JPEG models), their temporal layers (``temporal_arch``), recurrent feature
enhancement (``propagation_arch``), SPyNet (``spynet_arch``), the official fp16 layout
(``fp16``) and checkpoint loading (``checkpoint``). Import the submodules directly; this
package import loads nothing.
"""
