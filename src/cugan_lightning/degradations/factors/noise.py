"""Additive white Gaussian noise as a factor (the paper's second; section 4.1), and its level per pixel."""

from __future__ import annotations

import torch
from torch import Tensor

from cugan_lightning.degradations.factors.base import SENSOR, Factor, check_map, register
from cugan_lightning.degradations.noise import add_gaussian_noise

__all__ = ["Noise", "noise_map"]


def noise_map(x: Tensor, sigma: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``x + N(0, 1) * sigma / 255`` with a sigma per pixel ``(B, H, W)`` on the 0..255 scale; the normal draws
    come from ``generator`` (on its device) in ``x``'s shape, as :func:`add_gaussian_noise` draws them."""
    sigma = check_map(sigma, x, "noise sigma")
    draw_device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=draw_device).to(x.device)
    return x + noise * (sigma[:, None] / 255.0)


@register
class Noise(Factor):
    """Gaussian noise: its sigma on the 0..255 scale, 0..50 in steps of 1, ``z = sigma / 50``."""

    name = "noise"
    unit = "sigma on the 0-255 scale"
    label = "noise σ (0-255)"
    key = "n"
    batch_key = "noise_sigma"
    stage, rank = SENSOR, 1  # after Poisson (shot) noise
    default_max, default_step = 50.0, 1.0
    supports_map = True
    scales_with_size = True
    classical = "denoise"  # BM3D, non-local means (evaluation/classical.py)
    estimate = "pca, wavelet, learned"

    def apply(
        self, x: Tensor, level: Tensor | float, generator: torch.Generator | None = None, **options
    ) -> Tensor:
        return add_gaussian_noise(x, level, generator=generator)

    def apply_map(self, x: Tensor, level: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return noise_map(x, level, generator)
