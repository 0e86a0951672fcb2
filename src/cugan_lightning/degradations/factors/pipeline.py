"""The degradation pipeline over any set of factors: optics, sensor noise, 8- or 16-bit storage, compression."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from cugan_lightning.degradations.blur import check_image
from cugan_lightning.degradations.factors.base import COMPRESSION, Factor, lookup, pipeline_order
from cugan_lightning.degradations.noise import clip, quantize

__all__ = ["degrade_levels"]

Level = Tensor | float


def degrade_levels(
    gt: Tensor,
    levels: Mapping[str, Level],
    generator: torch.Generator | None = None,
    quantize_values: bool = True,
    clip_values: bool = True,
    jpeg_codec: str = "libjpeg",
    factors: Mapping[str, Factor] | None = None,
    bits: int = 8,
) -> Tensor:
    """Degrade ``gt`` ``(B, C, H, W)`` in [0, 1] by ``levels``: factor name -> a number, one level per sample
    ``(B,)``, or a level per pixel ``(B, H, W)`` (factors with ``supports_map``).

    The factors run in pipeline order whatever the mapping's order (docs/degradations.md, "Factors"): optics,
    sensor noise, then clipping and quantisation to ``bits`` (8, or 16 for 16-bit data; ``quantize_values``; ``clip_values=False`` without it
    leaves values unclipped), then compression. Every random draw comes from ``generator``, in that order; a
    factor that is not in ``levels`` draws nothing. ``factors`` gives configured instances (default: each
    factor's defaults). ``jpeg_codec``: ``"device"`` (training) or ``"libjpeg"`` (evaluation inputs).
    """
    check_image(gt, "gt")
    factors = dict(factors or {})
    lq, stored = gt, False
    for name in pipeline_order(list(levels)):
        factor = factors.get(name) or lookup(name)()
        if factor.stage == COMPRESSION and not stored:
            lq, stored = _store(lq, quantize_values, clip_values, bits), True
        level = levels[name]
        if isinstance(level, Tensor) and level.dim() == 3:
            lq = factor.apply_map(lq, level, generator)
        else:
            lq = factor.apply(lq, level, generator, jpeg_codec=jpeg_codec)
    return lq if stored else _store(lq, quantize_values, clip_values, bits)


def _store(lq: Tensor, quantize_values: bool, clip_values: bool, bits: int) -> Tensor:
    if quantize_values:
        return quantize(lq, bits)
    return clip(lq) if clip_values else lq
