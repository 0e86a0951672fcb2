"""Levels that vary over the image (docs/degradations.md, "Spatial levels"): smooth random level maps for
training, the blur and noise they describe applied on the device, and maps encoded into a condition map.

A level map is ``(B, H, W)`` in physical units. Blur with a varying sigma is approximated by blending, per pixel,
the two images blurred at the neighbouring sigmas of a grid (``step`` pixels apart); noise scales per pixel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from cugan_lightning.degradations.codec import LevelCodec
from cugan_lightning.degradations.factors import blur_map, degrade_levels, known_factors, lookup, noise_map

__all__ = ["SpatialLevels", "blur_map", "degrade_map", "encode_map", "noise_map"]

MAP_FACTORS = tuple(name for name in known_factors() if lookup(name).supports_map)
"""The factors whose level can vary over an image (blur, poisson, noise); JPEG and motion keep one per image."""


def degrade_map(
    gt: Tensor,
    levels: Mapping[str, Tensor],
    generator: torch.Generator | None = None,
    quantize_values: bool = True,
    jpeg_codec: str = "device",
    bits: int = 8,
) -> Tensor:
    """Degrade ``gt`` ``(B, C, H, W)`` with level maps: ``levels["blur"]`` and ``levels["noise"]`` ``(B, H, W)``,
    and ``levels["jpeg"]`` one quality per image ``(B,)`` (0: none), in the order of :func:`degrade` (the factor
    pipeline, :func:`degrade_levels`, with the device's JPEG codec by default)."""
    return degrade_levels(gt, levels, generator, quantize_values, jpeg_codec=jpeg_codec, bits=bits)


def encode_map(codec: LevelCodec, levels: Mapping[str, Tensor | float], validate: bool = True) -> Tensor:
    """Level maps ``(B, H, W)`` (or one value per image ``(B,)`` / a number) by factor name -> the condition map
    ``(B, D, H, W)`` in [0, 1] through ``codec``; at least one entry must be a map."""
    maps = [v for v in levels.values() if isinstance(v, Tensor) and v.dim() == 3]
    if not maps:
        raise ValueError("encode_map needs at least one level map (B, H, W)")
    batch, height, width = maps[0].shape
    columns = {}
    for name, value in levels.items():
        value = torch.as_tensor(value, dtype=torch.float32, device=maps[0].device)
        if value.dim() == 1:
            value = value[:, None, None]
        columns[name] = value.expand(batch, height, width).reshape(-1)
    z = codec.encode(columns, validate=validate)  # (B * H * W, D)
    return z.reshape(batch, height, width, codec.cond_dim).permute(0, 3, 1, 2).contiguous()


@dataclass(frozen=True)
class SpatialLevels:
    """Smooth random level maps for training (``degradation.spatial``).

    With probability ``p`` a sample's active blur and noise levels vary over its patch: each goes from the level the
    sampler drew to a second level drawn uniformly in ``0..max``, along a random field (``grid x grid`` uniform
    control values, bilinearly upsampled) sharpened by a random logistic slope between 1 and ``max_slope``, so
    both gentle gradients and near-step edges occur. Other samples keep constant maps. A factor the sampler left
    at 0 stays 0 everywhere; JPEG keeps one quality per patch.
    """

    p: float = 0.5
    grid: int = 3
    max_slope: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.p) <= 1.0:
            raise ValueError(f"degradation.spatial.p is a probability in [0, 1], got {self.p}")
        if isinstance(self.grid, bool) or not isinstance(self.grid, int) or self.grid < 2:
            raise ValueError(f"degradation.spatial.grid must be a whole number >= 2, got {self.grid!r}")
        if not float(self.max_slope) >= 1.0:
            raise ValueError(f"degradation.spatial.max_slope must be >= 1, got {self.max_slope}")

    def sample_maps(
        self,
        levels: Mapping[str, Tensor],
        size: tuple[int, int],
        maxima: Mapping[str, float],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        """Level maps ``(B, H, W)`` for blur and noise from the sampled levels ``(B,)``; other factors as given.

        A fixed number of draws per call (whatever the outcome) keeps the generator's stream aligned."""
        batch = next(iter(levels.values())).shape[0]
        device = next(iter(levels.values())).device
        draw = dict(generator=generator, dtype=torch.float32, device=generator.device)
        out: dict[str, Tensor] = dict(levels)
        for name in MAP_FACTORS:
            if name not in levels:  # factors the codec lacks draw nothing, so the stream stays aligned
                continue
            varies = torch.rand(batch, **draw) < self.p
            second = torch.rand(batch, **draw) * float(maxima[name])
            field = torch.rand(batch, 1, self.grid, self.grid, **draw)
            slope = torch.exp(torch.rand(batch, 1, 1, 1, **draw) * math.log(self.max_slope))
            field = F.interpolate(field, size=size, mode="bilinear", align_corners=True)
            field = torch.sigmoid((field - 0.5) * slope)[:, 0].to(device)
            first = levels[name].to(device=device, dtype=torch.float32)
            varies, second = varies.to(device) & (first > 0), second.to(device)
            target = torch.where(varies, second, first)
            out[name] = first[:, None, None] + (target - first)[:, None, None] * field
        return out
