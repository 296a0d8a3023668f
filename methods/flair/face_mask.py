"""FLAIR's blending mask for pasting the enhanced face back (ParseNet post-processing), batched.

FLAIR (Zou et al., WACV 2025; https://github.com/wustl-cig/FLAIR,
``guided_diffusion/facelib/utils/face_restoration_helper.py``, ``inverse_faces``) parses the
CodeFormer output crop with ParseNet, sets classes 1..13 (skin, brows, eyes, glasses, ears,
earring, nose, mouth, lips) to 255 and the rest (background, neck, necklace, cloth, hair, hat)
to 0, blurs twice with cv2.GaussianBlur((101, 101), sigma=26), zeroes a 10-pixel border and
divides by 255. Here that runs in torch on a batch of parse maps; cv2's float64 Gaussian
kernel and its default BORDER_REFLECT_101 are reproduced (torch 'reflect' padding).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

FACE_CLASSES = tuple(range(1, 14))
BLUR_SIZE = 101
BLUR_SIGMA = 26.0
BORDER = 10


def gaussian_kernel_1d(size: int, sigma: float, dtype=torch.float64, device=None) -> torch.Tensor:
    """cv2.getGaussianKernel(size, sigma): exp(-(i - (size-1)/2)^2 / (2 sigma^2)), sum 1."""
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype)


def gaussian_blur(x: torch.Tensor, size: int = BLUR_SIZE, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur with reflect-101 borders, like cv2.GaussianBlur on a float image.

    Args:
        x: [N,1,H,W] float, H and W > size // 2.
    """
    k = gaussian_kernel_1d(size, sigma, x.dtype, x.device)
    p = size // 2
    x = F.conv2d(F.pad(x, (p, p, 0, 0), mode="reflect"), k.view(1, 1, 1, size))
    return F.conv2d(F.pad(x, (0, 0, p, p), mode="reflect"), k.view(1, 1, size, 1))


def face_blend_mask(parse: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    """Soft face mask from a ParseNet label map.

    Args:
        parse: [N,H,W] integer labels (argmax over ParseNet's 19 classes) of 512x512 crops.
        dtype: computation dtype (float64 matches the official numpy float64 path).
    Returns:
        [N,1,H,W] mask in [0,1] (1 = take the enhanced face), border of 10 pixels zero.
    """
    face = (parse >= FACE_CLASSES[0]) & (parse <= FACE_CLASSES[-1])
    mask = face.to(dtype).unsqueeze(1) * 255
    mask = gaussian_blur(gaussian_blur(mask))
    mask[..., :BORDER, :] = 0
    mask[..., -BORDER:, :] = 0
    mask[..., :, :BORDER] = 0
    mask[..., :, -BORDER:] = 0
    return mask / 255
