"""JPEG compression as a factor (CResMD's third), given as a quality: ``z = (102 - quality) / 92``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from cugan_lightning.degradations.factors.base import _TOLERANCE, COMPRESSION, Factor, register
from cugan_lightning.degradations.jpeg import jpeg_device
from cugan_lightning.degradations.noise import jpeg_compress

__all__ = ["QUALITY_REF", "Jpeg"]

QUALITY_REF = 102.0
"""``z_jpeg = (102 - quality) / 92`` (as in CResMD; docs/degradations.md)."""


@register
class Jpeg(Factor):
    """JPEG quality ``quality_min..quality_max`` (10..100), or 0 for no compression. On the codec's linear scale
    a quality ``q`` is ``102 - q`` (0 for none), so ``z = (102 - q) / (102 - quality_min)``: quality 100 is
    ``z = 2 / 92``, the mildest compression; quality 10, ``z = 1``. Training draws a whole quality whose label
    counts down from the best one, so the Beta shape weighs mild compression as it weighs mild blur."""

    name = "jpeg"
    unit = "JPEG quality"
    label = "JPEG quality (0: none)"
    key = "q"
    batch_key = "jpeg_quality"
    stage, rank = COMPRESSION, 0
    default_max, default_step = 92.0, 1.0
    classical = "none"
    estimate = "quantisation tables, learned"

    def __init__(self, quality_min: float = 10, quality_max: float = 100) -> None:
        low, high = float(quality_min), float(quality_max)
        if not 1 <= low <= high <= 100 or not low.is_integer() or not high.is_integer():
            raise ValueError(
                f"jpeg qualities need whole numbers 1 <= quality_min <= quality_max <= 100, got {low:g}, {high:g}"
            )
        self.quality_min, self.quality_max = int(low), int(high)
        self.max_level, self.step = QUALITY_REF - low, 1.0

    @classmethod
    def from_codec(cls, max_level: float) -> Jpeg:
        factor = cls.__new__(cls)  # a codec's maximum need not be a whole quality
        factor.quality_min, factor.quality_max, factor.max_level, factor.step = (
            QUALITY_REF - max_level, 100, float(max_level), 1.0,
        )  # fmt: skip
        return factor

    def __repr__(self) -> str:
        return f"Jpeg(quality_min={self.quality_min:g}, quality_max={self.quality_max:g})"

    @property
    def max_label(self) -> int:
        return int(self.quality_max - self.quality_min)

    def quality_range(self) -> tuple[float, float]:
        """The qualities this factor conditions on, ``(lowest, 100)``; 0 (no compression) is allowed too."""
        return QUALITY_REF - self.max_level, 100.0

    def to_internal(self, level: Tensor, validate: bool = True) -> Tensor:
        if validate:
            low, high = self.quality_range()
            bad = torch.isnan(level) | (
                (level != 0) & ((level < low - _TOLERANCE) | (level > high + _TOLERANCE))
            )
            if bool(bad.any()):
                raise ValueError(f"jpeg quality {float(level[bad][0]):g} is outside {self.describe()}")
        return torch.where(level == 0, torch.zeros_like(level), QUALITY_REF - level)

    def from_internal(self, internal: Tensor) -> Tensor:
        return torch.where(internal <= _TOLERANCE, torch.zeros_like(internal), QUALITY_REF - internal)

    def describe(self) -> str:
        low, high = self.quality_range()
        return f"{low:g}..{high:g} or 0 (JPEG quality; 0: no compression)"

    def slider(self) -> tuple[float, float, float]:
        return 0.0, 100.0, 1.0

    def snap(self, value: float) -> float:
        """A quality between 0 and the lowest one becomes the lowest; one above 100 (an estimate between
        quality 100 and none on the codec's linear scale) becomes the nearer of them: over 101, none (0)."""
        low, high = self.quality_range()
        if 0 < value < low:
            return low
        if value > high:
            return 0.0 if value > (high + QUALITY_REF) / 2 else high
        return float(value)

    def check_level(self, value: float) -> None:
        low, high = self.quality_range()
        if not math.isfinite(value) or (value != 0 and not low - _TOLERANCE <= value <= high + _TOLERANCE):
            raise ValueError(f"jpeg quality {value:g} is outside {self.describe()}")

    def from_unit(self, u: Tensor) -> Tensor:
        return self.quality_max - torch.round(u * self.max_label)

    def apply(
        self, x: Tensor, level: Tensor | float, generator: torch.Generator | None = None, **options
    ) -> Tensor:
        """Compress each sample at its quality (0: untouched): ``jpeg_codec="device"`` (the batched codec that
        follows libjpeg, for training) or ``"libjpeg"`` (a real file's compression, per sample on the CPU)."""
        codec = options.get("jpeg_codec", "libjpeg")
        if codec == "device":
            quality = level if isinstance(level, Tensor) else torch.as_tensor(level)
            return jpeg_device(x, quality.reshape(-1).expand(x.shape[0]))
        if codec == "libjpeg":
            return jpeg_compress(x, int(level) if isinstance(level, float) else level)
        raise ValueError(f"jpeg_codec must be 'libjpeg' or 'device', got {codec!r}")
