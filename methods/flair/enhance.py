"""FLAIR's enhancement module: CodeFormer on aligned face crops of the x0-prediction, blended back.

FLAIR (Zou et al., WACV 2025; https://github.com/wustl-cig/FLAIR, ``scripts/video_sample.py``
``aux_model`` and ``guided_diffusion/gaussian_diffusion.py`` ``p_sample``, with
``facelib/utils/face_restoration_helper.py``). Per window, once (the condition frames do not
change across steps): RetinaFace landmarks on the condition frames, a 5-point partial affine
(``cv2.estimateAffinePartial2D``, LMEDS) to the FFHQ 512 template. At every step t >= tau:

1. crop each frame's face from x0: 0..255, ``cv2.warpAffine`` INTER_CUBIC, 512x512, constant
   border (135, 133, 132) (facexlib's BGR grey, applied to RGB data as the official code does);
2. CodeFormer ``net(crop, w=1.0, adain=True)[0]`` (Zhou et al., NeurIPS 2022);
3. ParseNet on the (unclamped) CodeFormer output -> ``face_mask.face_blend_mask``;
4. the clamped face and the mask warped back with the inverse affine (INTER_CUBIC);
5. x_face = x0 (1 - M) + face M; the sampler then mixes x0 <- w_t x0 + (1 - w_t) x_face.

The official code drops frames without a detected face from the matrix list and then zips it
against the window's frames, so frames and matrices fall out of step. Here such a frame keeps
its x0 (no enhancement) and is counted; the others keep their own matrices. The inverse warp
goes to the frame size (the official output size is the crop size, 512, the same at 512).
The CodeFormer crop of x_t that the official code also makes is unused by CodeFormer and
skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import cv2
import numpy as np
import torch

from vfr_bench.face_geometry import FFHQ_512

from .face_mask import face_blend_mask

CROP = 512
CODEFORMER_W = 1.0  # the fidelity weight of the official aux_model
CROP_BORDER = (135, 133, 132)  # facexlib's BGR grey, given to cv2 on RGB data (official)
#: frames [T,3,H,W] RGB 0..255 -> per frame [5,2] landmarks or None
LandmarkFn = Callable[[torch.Tensor], list]


@dataclass
class WindowFaces:
    """Face alignment of one window's frames.

    Attributes:
        matrices: per frame, the [2,3] float64 frame -> 512 crop affine, or None (no face).
    """
    matrices: list

    @property
    def found(self) -> list[int]:
        """Positions (in the window) of the frames with a face."""
        return [i for i, m in enumerate(self.matrices) if m is not None]

    @property
    def missing(self) -> list[int]:
        """Positions of the frames without a face (they are not enhanced)."""
        return [i for i, m in enumerate(self.matrices) if m is None]


def template_affine(landmarks: np.ndarray, template: np.ndarray = FFHQ_512) -> Optional[np.ndarray]:
    """[2,3] partial affine (rotation, uniform scale, translation) of 5 landmarks onto the
    template, ``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)`` as the official helper;
    None if OpenCV finds none."""
    m = cv2.estimateAffinePartial2D(np.asarray(landmarks, np.float32),
                                    np.asarray(template, np.float32), method=cv2.LMEDS)[0]
    return None if m is None else m.astype(np.float64)


def _to_255(x: torch.Tensor) -> np.ndarray:
    """[N,3,H,W] [-1,1] -> [N,H,W,3] float32 0..255 numpy (clamped like the official helper)."""
    return (((x.float() + 1) / 2).clamp(0, 1) * 255).permute(0, 2, 3, 1).cpu().numpy()


def _from_255(x: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """[N,H,W,3] 0..255 -> [N,3,H,W] in [-1,1] (clamped), dtype/device of ``like``."""
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).to(like)
    return (t / 255 * 2 - 1).clamp(-1, 1)


def crop_faces(frames: torch.Tensor, matrices: list) -> torch.Tensor:
    """Aligned 512 face crops (``get_crop_face_from_affine_matrices``).

    Args:
        frames: [N,3,H,W] in [-1,1] RGB (only frames with a face).
        matrices: N [2,3] frame -> crop affines.
    Returns:
        [N,3,512,512] in [-1,1], dtype/device of ``frames``.
    """
    imgs = _to_255(frames)
    crops = np.stack([cv2.warpAffine(img, m, (CROP, CROP), flags=cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=CROP_BORDER)
                      for img, m in zip(imgs, matrices)])
    return _from_255(crops, frames)


def paste_faces(faces: torch.Tensor, masks: torch.Tensor, matrices: list,
                size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp restored crops and their blend masks back into the frames (``inverse_faces``).

    Args:
        faces: [N,3,512,512] restored crops in [-1,1] (clamped here).
        masks: [N,1,512,512] float64 blend masks in [0,1].
        matrices: N [2,3] frame -> crop affines.
        size: (H, W) of the frames.
    Returns:
        faces [N,3,H,W] in [-1,1] and masks [N,1,H,W] float32 (INTER_CUBIC, zero outside;
        not clamped, as officially), on the device and in the dtype of ``faces`` / float32.
    """
    h, w = size
    imgs, ms = _to_255(faces), masks[:, 0].double().cpu().numpy()
    inv = [cv2.invertAffineTransform(m) for m in matrices]
    back = np.stack([cv2.warpAffine(f, a, (w, h), flags=cv2.INTER_CUBIC).astype(np.float32)
                     for f, a in zip(imgs, inv)])
    mask = np.stack([cv2.warpAffine(m, a, (w, h), flags=cv2.INTER_CUBIC).astype(np.float32)
                     for m, a in zip(ms, inv)])
    return _from_255(back, faces), torch.from_numpy(mask)[:, None].to(faces.device)


class FaceEnhancer(torch.nn.Module):
    """The enhancement module of one FLAIR run (a module so that ``.to(device)`` moves its nets).

    Args:
        codeformer: CodeFormer network (``net(x, w, adain) -> (out, ...)``), or any module
            with that call (tests inject stand-ins).
        parsenet: ParseNet (``net(x) -> (parse_logits [N,19,H,W], ...)``).
        landmarks: detector callable (``LandmarkFn``), e.g. ``face_nets.RetinaFaceLandmarks``;
            tests may inject known landmarks.
    """

    def __init__(self, codeformer: torch.nn.Module, parsenet: torch.nn.Module,
                 landmarks: LandmarkFn):
        super().__init__()
        self.codeformer, self.parsenet, self.landmarks = codeformer, parsenet, landmarks

    @torch.no_grad()
    def locate(self, cond: torch.Tensor) -> WindowFaces:
        """Landmarks and alignment of a window's condition frames (once per window).

        Args:
            cond: [T,3,H,W] condition frames in [-1,1] RGB.
        """
        lms = self.landmarks(((cond.float() + 1) / 2).clamp(0, 1) * 255)
        if len(lms) != cond.shape[0]:
            raise RuntimeError(f"detector returned {len(lms)} results for {cond.shape[0]} frames")
        return WindowFaces([None if lm is None else template_affine(lm) for lm in lms])

    @torch.no_grad()
    def forward(self, x0: torch.Tensor, faces: WindowFaces) -> torch.Tensor:
        """x0 with the CodeFormer face blended in where a face was found.

        Args:
            x0: [T,3,H,W] x0-prediction in [-1,1] RGB.
            faces: the window's alignment from :meth:`locate`.
        Returns:
            [T,3,H,W] in [-1,1]; frames without a face are x0 unchanged.
        """
        idx = faces.found
        if not idx:
            return x0
        mats = [faces.matrices[i] for i in idx]
        p = next(self.codeformer.parameters())
        crops = crop_faces(x0[idx], mats).to(p)
        restored = self.codeformer(crops, w=CODEFORMER_W, adain=True)[0]
        q = next(self.parsenet.parameters())
        parse = self.parsenet(restored.to(q))[0].argmax(1)
        mask = face_blend_mask(parse)
        back, m = paste_faces(restored, mask, mats, tuple(x0.shape[-2:]))
        back, m = back.to(x0), m.to(x0)
        out = x0.clone()
        out[idx] = (x0[idx] * (1 - m) + back * m).clamp(-1, 1)
        return out


@torch.no_grad()
def rfe_weights(parsenet: torch.nn.Module, cond: torch.Tensor, background: float) -> torch.Tensor:
    """FLAIR's x8/x16 RFE ``vsrpp_weights``: ``background`` where ParseNet's argmax on the
    condition frames is class 0, 1 elsewhere (``video_sample.py``: 0.93 for x8, 0.98 for x16).

    Args:
        parsenet: ParseNet.
        cond: [T,3,H,W] condition frames in [-1,1] RGB.
    Returns:
        [1,T,1,H,W] weights in the dtype of ``cond``.
    """
    p = next(parsenet.parameters())
    bg = (parsenet(cond.to(p))[0].argmax(1, keepdim=True) == 0).to(cond)
    return (bg * background + (1 - bg) * 1.0)[None]
