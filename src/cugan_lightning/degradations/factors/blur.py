"""Isotropic Gaussian blur as a factor (the paper's first; section 4.1), and its level per pixel."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from cugan_lightning.degradations.blur import check_image, gaussian_blur
from cugan_lightning.degradations.factors.base import OPTICS, Factor, check_map, register

__all__ = ["Blur", "blur_map"]


def blur_map(x: Tensor, sigma: Tensor, step: float = 0.25) -> Tensor:
    """Blur ``x`` ``(B, C, H, W)`` with a sigma per pixel ``(B, H, W)`` (pixels, >= 0): each pixel is the blend of
    ``x`` blurred at the two grid sigmas ``k * step`` around its own, weighted linearly. Where the map is
    constant at a grid sigma the result is exactly that blur."""
    check_image(x)
    sigma = check_map(sigma, x, "blur sigma")
    position = (sigma / step).clamp(min=0)[:, None]  # (B, 1, H, W) in grid steps
    out = torch.zeros_like(x)
    for k in range(int(math.floor(float(position.max()))) + 2):
        weight = (1.0 - (position - k).abs()).clamp(min=0)
        if bool((weight > 0).any()):
            out = out + weight * gaussian_blur(x, k * step)
    return out


@register
class Blur(Factor):
    """Gaussian blur: the sigma of an isotropic 21x21 kernel in pixels, 0..4 in steps of 0.1, ``z = sigma / 4``."""

    name = "blur"
    unit = "Gaussian blur sigma in pixels"
    label = "blur σ (pixels)"
    key = "b"
    batch_key = "blur_sigma"
    stage, rank = OPTICS, 0
    default_max, default_step = 4.0, 0.1
    supports_map = True
    scales_with_size = True
    classical = "deblur"  # Wiener, Richardson-Lucy (evaluation/classical.py)
    estimate = "learned"

    def apply(
        self, x: Tensor, level: Tensor | float, generator: torch.Generator | None = None, **options
    ) -> Tensor:
        return gaussian_blur(x, level)

    def apply_map(self, x: Tensor, level: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return blur_map(x, level)
