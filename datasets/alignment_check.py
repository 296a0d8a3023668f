"""Is a 512x512 source clip FFHQ-aligned already? Measured on a few frames, never assumed.

A 512x512 video is not necessarily a set of FFHQ-aligned crops (a talking-head video can be
512x512 with the face anywhere); taking it as aligned puts unaligned faces into the GT of a
split, and every method, trained on aligned faces, then runs off its domain. So before a
512x512 source clip is used as is, dlib's 5-point predictor (HOG detector, offline, the same
predictor :mod:`vfr_bench.align` uses) finds the eye centres on :data:`CHECK_FRAMES` evenly
spaced frames and they are compared with the eyes of the FFHQ-512 template:

* offset: mean distance of the two eye centres from the template's, px at 512;
* roll: angle of the eye line (the template's is level).

The clip counts as aligned when the median over the frames with a face is within
:data:`MAX_EYE_OFFSET_PX` and :data:`MAX_ROLL_DEG`. The thresholds: the embedded ``sample``
split, whose faces are template-aligned and then moved by up to 10 px, 3 degrees and 4% zoom
(synthetic camera motion, as temporally smoothed alignment leaves in real aligned clips),
measures at most 14.2 px and 2.9 degrees with this detector (median per clip 6.0-8.6 px); the
clip of issue #22 that was wrongly taken as aligned was 34-55 px off with tilted eyes. 20 px is
16% of the template's eye distance (126 px): above what aligned crops show, well below the
offsets of an unaligned face. The detector is fixed (not ``--detector``) because the
thresholds are calibrated for its eye centres (the mean of each eye's two corners).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

CHECK_FRAMES = 5
MAX_EYE_OFFSET_PX = 20.0
MAX_ROLL_DEG = 6.0
DETECTOR = "dlib-hog 5-point, no upsampling"


@dataclass
class AlignmentCheck:
    """What :func:`check_alignment` measured.

    Attributes:
        aligned: the frames are within both thresholds.
        frames: indices of the checked frames.
        eye_offset_px: per checked frame, mean eye-centre distance from the template (None: no face).
        roll_deg: per checked frame, angle of the eye line in degrees (None: no face).
        reason: one line saying why the clip was or was not taken as aligned.
    """
    aligned: bool
    frames: list[int]
    eye_offset_px: list
    roll_deg: list
    reason: str

    def as_dict(self) -> dict:
        return {"aligned": self.aligned, "frames": self.frames, "eye_offset_px": self.eye_offset_px,
                "roll_deg": self.roll_deg, "reason": self.reason, "detector": DETECTOR,
                "max_eye_offset_px": MAX_EYE_OFFSET_PX, "max_roll_deg": MAX_ROLL_DEG}


@functools.lru_cache(maxsize=1)
def _detector():
    from vfr_bench.align import Dlib5Detector
    return Dlib5Detector("hog", upsample=0)  # an aligned 512 face is ~250 px wide: no upsampling needed


def _round(values: np.ndarray, ndigits: int) -> list:
    return [None if not np.isfinite(v) else round(float(v), ndigits) for v in values]


def check_alignment(frames: np.ndarray, n_frames: int = CHECK_FRAMES, detector=None) -> AlignmentCheck:
    """Measure how far the faces of ``frames`` [T,512,512,3] uint8 RGB are from the FFHQ-512 template.

    Args:
        detector: frame -> [5,2] landmarks (eye centres first, as :class:`vfr_bench.align.Dlib5Detector`);
            default dlib HOG + 5-point without upsampling (the calibrated one).
    """
    from vfr_bench.align import FFHQ_512
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n_frames, len(frames))).round().astype(int))
    det = detector if detector is not None else _detector()
    # dlib reads the raw buffer: a strided view (read_frames' BGR->RGB flip) would be scanned as
    # garbage, different from run to run, so every frame is handed over C-contiguous.
    eyes = np.stack([det(np.ascontiguousarray(frames[i]))[:2] for i in idx])  # [N,2,2] eyes, image left to right
    offset = np.linalg.norm(eyes - FFHQ_512[:2], axis=2).mean(1)
    d = eyes[:, 1] - eyes[:, 0]
    t = FFHQ_512[1] - FFHQ_512[0]
    roll = np.degrees(np.arctan2(d[:, 1], d[:, 0]) - np.arctan2(t[1], t[0]))
    found = np.isfinite(offset)
    frames_list = [int(i) for i in idx]
    if not found.any():
        return AlignmentCheck(False, frames_list, _round(offset, 1), _round(roll, 1),
                              f"no face found on the {len(idx)} checked frames, so the alignment cannot be "
                              f"confirmed")
    off, rol = float(np.median(offset[found])), float(np.median(np.abs(roll[found])))
    ok = off <= MAX_EYE_OFFSET_PX and rol <= MAX_ROLL_DEG
    verdict = "within" if ok else "beyond"
    reason = (f"eyes {off:.1f} px from the FFHQ-512 template, eye line {rol:.1f} deg (median of "
              f"{int(found.sum())} checked frames): {verdict} {MAX_EYE_OFFSET_PX:g} px / {MAX_ROLL_DEG:g} deg")
    return AlignmentCheck(ok, frames_list, _round(offset, 1), _round(roll, 1), reason)
