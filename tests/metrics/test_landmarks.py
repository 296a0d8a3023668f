"""Shared landmark extraction: the AWing decoding and pipeline against facexlib's own code,
the template box, and registry columns of the landmark metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vfr_bench.metrics.landmarks import awing98_landmarks, heatmap_points, template_box, to_uint8_frames


def test_template_box_scales_with_the_crop():
    assert template_box(512, 512) == (127.0, 170.0, 372.0, 415.0)
    assert template_box(256, 256) == (63.5, 85.0, 186.0, 207.5)


def test_uint8_frames_round_like_tensor2img():
    x = torch.tensor([0.0, 0.5 / 255, 1.49 / 255, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert to_uint8_frames(x)[0, 0, :, 0].tolist() == [0, 0, 1, 255]


@pytest.mark.parametrize("edge", [False, True])
def test_heatmap_decoding_matches_facexlib(edge, monkeypatch):
    """Our batched decoding equals facexlib's calculate_points image by image (incl. its edge rule)."""
    from facexlib.alignment import awing_arch
    monkeypatch.setattr(np, "float", float, raising=False)  # facexlib uses the removed np.float
    g = torch.Generator().manual_seed(3)
    hm = torch.rand(2, 98, 64, 64, generator=g)
    if edge:
        hm[0, 5, 63, 10] = 5.0  # a peak on the last row triggers facexlib's whole-image rule
        hm[1, 7, 0, 20] = 5.0   # and one on the first row
    ours = heatmap_points(hm).numpy()
    for b in range(2):
        ref = awing_arch.calculate_points(hm[b:b + 1].numpy())
        assert np.abs(ours[b] - ref[0]).max() < 1e-12


def test_awing_pipeline_matches_facexlib_get_landmarks(monkeypatch):
    """awing98_landmarks (batched, tensors) equals FAN.get_landmarks on the same uint8 frame:
    resize to 256, colour order, last hourglass, scaling back. The heatmap decoding is checked
    against facexlib's above; here facexlib's decoder is swapped for ours because it indexes
    past the heatmap when a random network peaks in the last cell."""
    import cv2
    from facexlib.alignment import awing_arch
    from facexlib.alignment.awing_arch import FAN
    monkeypatch.setattr(awing_arch, "calculate_points",
                        lambda hm: heatmap_points(torch.from_numpy(np.asarray(hm))).numpy())
    torch.manual_seed(0)
    net = FAN(num_modules=1, num_landmarks=98, device="cpu").eval()  # 1 hourglass: same pipeline, 4x faster
    img = (np.random.default_rng(0).uniform(0, 255, (512, 512, 3))).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 4)
    with torch.no_grad():
        ref = net.get_landmarks(img[..., ::-1].copy())  # facexlib takes BGR (cv2.imread)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    ours = awing98_landmarks(x, net).points[0]
    assert ours.shape == (98, 2)
    assert np.abs(ours - ref).max() < 1e-4
