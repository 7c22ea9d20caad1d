"""Colour handling for original-colour transfer (Gatys et al. 2017, "Controlling perceptual factors")."""

from __future__ import annotations

import torch
from torch import Tensor

# BT.601 YUV; the inverse is computed so the round trip is exact to float precision.
_RGB_TO_YUV = torch.tensor([[0.299, 0.587, 0.114],
                            [-0.14713, -0.28886, 0.436],
                            [0.615, -0.51499, -0.10001]], dtype=torch.float64)
_YUV_TO_RGB = torch.linalg.inv(_RGB_TO_YUV)


def _apply(matrix: Tensor, x: Tensor) -> Tensor:
    m = matrix.to(device=x.device, dtype=x.dtype)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def rgb_to_yuv(rgb: Tensor) -> Tensor:
    """``(..., 3, H, W)`` RGB in [0, 1] to YUV (Y in [0, 1], U and V centred on 0)."""
    return _apply(_RGB_TO_YUV, rgb)


def yuv_to_rgb(yuv: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_yuv` (not clamped)."""
    return _apply(_YUV_TO_RGB, yuv)


def luminance(rgb: Tensor) -> Tensor:
    """``(..., 3, H, W)`` RGB to ``(..., 1, H, W)`` luma Y."""
    return rgb_to_yuv(rgb)[..., :1, :, :]


def transfer_chroma(result: Tensor, content: Tensor) -> Tensor:
    """The result's luminance with the content's chroma (U, V), clamped to [0, 1].

    Both ``(..., 3, H, W)`` of the same size; this is the cheap original-colours method.
    """
    y = rgb_to_yuv(result)[..., :1, :, :]
    uv = rgb_to_yuv(content)[..., 1:, :, :]
    return yuv_to_rgb(torch.cat([y, uv], dim=-3)).clamp(0, 1)


def match_mean_std(source: Tensor, reference: Tensor) -> Tensor:
    """Shift and scale ``source`` so its mean and standard deviation equal ``reference``'s, clamped to [0, 1].

    Gatys et al. 2017 match the style's luminance to the content's this way before luminance-only transfer.
    """
    s_mean, s_std = source.mean(), source.std().clamp_min(1e-6)
    return ((source - s_mean) / s_std * reference.std() + reference.mean()).clamp(0, 1)
