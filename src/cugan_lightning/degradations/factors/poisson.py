"""Poisson (shot, photon-count) noise as a factor: the noise of low-light and medical images, whose variance
grows with the signal (docs/degradations.md, "Factors").

The level is the noise sigma at full-scale white on the 0..255 scale: a pixel of value ``x`` in [0, 1] becomes
``Poisson(x * peak) / peak`` photon counts with ``peak = (255 / level)^2``, so its variance on the 0..255 scale is
``level^2 * x`` (``level^2`` at white, 0 at black). Level 0 is no noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cugan_lightning.degradations.blur import check_image, per_sample
from cugan_lightning.degradations.factors.base import SENSOR, Factor, check_map, register

__all__ = ["Poisson", "poisson_noise"]


def poisson_noise(x: Tensor, level: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Shot noise on ``x`` ``(B, C, H, W)`` in [0, 1] with a level (sigma at white, 0..255 scale) that broadcasts
    against ``(B, 1, H, W)``: one per sample ``(B, 1, 1, 1)`` or one per pixel. Counts are drawn with
    ``torch.poisson`` from ``generator`` (on its device) and moved to x's device; where the level is 0 the pixel
    comes back unchanged. No clipping is needed: counts are >= 0."""
    level = level.to(device=x.device, dtype=x.dtype)
    positive = level > 0
    peak = (255.0 / torch.where(positive, level, torch.ones_like(level))) ** 2
    rate = (x.clamp(min=0) * peak).expand_as(x)
    draw_device = generator.device if generator is not None else x.device
    counts = torch.poisson(rate.to(draw_device), generator=generator).to(x.device)
    return torch.where(positive, counts / peak, x)


@register
class Poisson(Factor):
    """Poisson noise: its sigma at full-scale white on the 0..255 scale, 0..25 in steps of 1, ``z = level / 25``
    (variance ``level^2 * x`` for a pixel ``x`` in [0, 1]); applied in the sensor stage before Gaussian noise."""

    name = "poisson"
    unit = "shot-noise sigma at white on the 0-255 scale"
    label = "Poisson σ at white (0-255)"
    key = "p"
    stage, rank = SENSOR, 0
    default_max, default_step = 25.0, 1.0
    supports_map = True
    scales_with_size = True  # averaging s x s pixels divides it by s, as for Gaussian noise
    classical = "none"  # the classical denoisers here assume Gaussian noise of one sigma
    estimate = "learned"

    def apply(
        self, x: Tensor, level: Tensor | float, generator: torch.Generator | None = None, **options
    ) -> Tensor:
        check_image(x)
        if not isinstance(level, Tensor) and float(level) == 0:
            return x.clone()
        level = per_sample(level, x.shape[0], "poisson level", x.device)
        return poisson_noise(x, level.view(-1, 1, 1, 1), generator)

    def apply_map(self, x: Tensor, level: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_image(x)
        return poisson_noise(x, check_map(level, x, "poisson level")[:, None], generator)
