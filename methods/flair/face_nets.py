"""The face detector and face parser of FLAIR's enhancement module, and batched detection.

FLAIR (Zou et al., WACV 2025; https://github.com/wustl-cig/FLAIR,
``guided_diffusion/facelib/utils/face_restoration_helper.py`` ``FaceRestoreHelper``) uses
CodeFormer's facelib: RetinaFace-ResNet50 (``detection_Resnet50_Final.pth``) and ParseNet
(``parsing_parsenet.pth``, in/out size 512, 19 classes). The architectures come from facexlib
(same keys; Deng et al., "RetinaFace", CVPR 2020; Chen et al., "PSFR-GAN", CVPR 2021 for
ParseNet); their weights come from our registry, never from facexlib's download helpers, and
the ResNet-50 backbone is built without pretrained torchvision weights.

Detection follows ``get_crop_face`` + ``RetinaFace.batched_detect_faces`` of the official
code: the 512 condition frames in [-1,1] become 0..255 **RGB** while the detector subtracts
its BGR-ordered mean (104, 117, 123) -- a quirk kept here --, score > 0.5, NMS 0.4 (facexlib
``py_cpu_nms``), faces with eye distance < 0.1 px dropped, largest (clipped) box kept.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from vfr_bench import weights as weight_registry
from vfr_bench.checkpoint import load_checkpoint

DETECT_MEAN = (104.0, 117.0, 123.0)  # BGR mean, subtracted from RGB data (official quirk)
CONF_THRESHOLD = 0.5
NMS_THRESHOLD = 0.4
EYE_DIST_THRESHOLD = 0.1
PARSENET_ARGS = dict(in_size=512, out_size=512, parsing_ch=19)


def build_retinaface() -> torch.nn.Module:
    """RetinaFace-ResNet50 as FaceRestoreHelper builds it (random init, no download)."""
    from facexlib.detection.retinaface import RetinaFace
    # facexlib builds torchvision's resnet50(pretrained=False): nothing is downloaded
    return RetinaFace(network_name="resnet50", half=False, phase="test",
                      device=torch.device("cpu")).eval()


def build_parsenet() -> torch.nn.Module:
    """ParseNet(in_size=512, out_size=512, parsing_ch=19) (random init)."""
    from facexlib.parsing.parsenet import ParseNet
    return ParseNet(**PARSENET_ARGS).eval()


def load_retinaface_into(net: torch.nn.Module) -> None:
    """``detection_Resnet50_Final.pth`` into a built RetinaFace (a leading ``module.`` stripped), strict."""
    state = load_checkpoint(weight_registry.locate("retinaface-resnet50"))
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)


def load_parsenet_into(net: torch.nn.Module) -> None:
    """``parsing_parsenet.pth`` (bare state dict) into a built ParseNet, strict."""
    state = load_checkpoint(weight_registry.locate("parsenet"))
    net.load_state_dict(state, strict=True)


def _largest(boxes: np.ndarray, h: int, w: int) -> int:
    """Index of the largest box after clipping to the frame (``get_largest_face``, first on ties)."""
    x0, x1 = boxes[:, 0].clip(0, w), boxes[:, 2].clip(0, w)
    y0, y1 = boxes[:, 1].clip(0, h), boxes[:, 3].clip(0, h)
    return int(np.argmax((x1 - x0) * (y1 - y0)))


class RetinaFaceLandmarks(torch.nn.Module):
    """Frames -> 5 landmarks of the largest face per frame (None where none).

    A module only so that ``.to(device)`` moves the detector with the restorer.

    Args:
        net: a RetinaFace-ResNet50 (``build_retinaface`` + ``load_retinaface_into``).
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> list[Optional[np.ndarray]]:
        """Detect on a batch of frames.

        Args:
            frames: [T,3,H,W] float RGB in 0..255 (the official detector input).
        Returns:
            T entries: [5,2] float32 landmarks (left eye, right eye, nose, mouth corners) of
            the largest face, or None.
        """
        from facexlib.detection.retinaface_utils import (PriorBox, batched_decode,
                                                         batched_decode_landm, py_cpu_nms)
        p = next(self.net.parameters())
        x = frames.to(p)
        h, w = x.shape[-2:]
        x = x - torch.tensor(DETECT_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        loc, conf, landm = self.net(x)
        var = self.net.cfg["variance"]
        priors = PriorBox(self.net.cfg, image_size=(h, w)).forward().to(x)[None]
        boxes = batched_decode(loc, priors, var) * torch.tensor([w, h] * 2).to(x)
        lms = batched_decode_landm(landm, priors, var) * torch.tensor([w, h] * 5).to(x)
        scores = conf[:, :, 1]
        out: list[Optional[np.ndarray]] = []
        for b, lm, s in zip(boxes, lms, scores):
            keep = s > CONF_THRESHOLD
            if not bool(keep.any()):
                out.append(None)
                continue
            dets = torch.cat([b[keep], s[keep, None]], 1).float().cpu().numpy()
            lm = lm[keep].float().cpu().numpy()
            order = py_cpu_nms(dets, NMS_THRESHOLD)
            dets, lm = dets[order], lm[order]
            eye = np.hypot(lm[:, 0] - lm[:, 2], lm[:, 1] - lm[:, 3])
            ok = eye >= EYE_DIST_THRESHOLD
            if not ok.any():
                out.append(None)
                continue
            dets, lm = dets[ok], lm[ok]
            out.append(lm[_largest(dets, h, w)].reshape(5, 2).astype(np.float32))
        return out
