"""Restoring a large image in overlapping tiles that blend without seams (pure torch)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["DEFAULT_TILE_OVERLAP", "MIN_TILE", "check_tile", "tile_spans", "tiled_forward"]

DEFAULT_TILE_OVERLAP = 32
MIN_TILE = 16


def check_tile(tile: int, overlap: int) -> tuple[int, int]:
    """Validate the tiling settings: ``tile >= 16`` and ``0 <= overlap < tile``."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < MIN_TILE:
        raise ValueError(f"tile size must be an integer >= {MIN_TILE}, got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be an integer in [0, tile size {tile}), got {overlap!r}")
    return tile, overlap


def tile_spans(size: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int]]:
    """``[start, end)`` spans covering ``0 .. size`` in tiles of about ``tile`` pixels overlapping by ``overlap``.

    Every start is a multiple of ``multiple`` (the network's downsampling factor), so each tile sees the same
    pixel grid phase as the whole image would; the last tile ends exactly at ``size``.
    """
    if size <= tile:
        return [(0, size)]
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    starts = list(range(0, size - tile, stride))
    last = (size - tile) // multiple * multiple
    if last > starts[-1]:
        starts.append(last)
    spans = [(s, s + tile) for s in starts]
    spans[-1] = (starts[-1], size)
    return spans


def _ramp(length: int, device: torch.device) -> Tensor:
    """Rising window over a shared strip of ``length`` pixels: 0 on the outer quarter, linear across the middle
    half, 1 on the inner quarter. Pixels next to a tile's border (where its padding shows) then get no weight."""
    margin = length / 4
    position = torch.arange(length, device=device, dtype=torch.float32) + 0.5
    return ((position - margin) / max(length - 2 * margin, 1.0)).clamp(0.0, 1.0)


def _windows(spans: list[tuple[int, int]], device: torch.device) -> list[Tensor]:
    """Per-span 1-D blending windows: ramps over the parts shared with a neighbour, 1 elsewhere."""
    out = []
    for i, (start, end) in enumerate(spans):
        window = torch.ones(end - start, device=device)
        if i > 0:
            shared = spans[i - 1][1] - start
            window[:shared] *= _ramp(shared, device)
        if i < len(spans) - 1:
            shared = end - spans[i + 1][0]
            window[end - start - shared :] *= _ramp(shared, device).flip(0)
        out.append(window)
    return out


def tiled_forward(
    run: Callable[[Tensor], Tensor], x: Tensor, tile: int, overlap: int, multiple: int = 1
) -> Tensor:
    """Apply ``run`` (``(B, C, h, w) -> (B, C, h, w)``) to ``x`` ``(B, C, H, W)`` in overlapping tiles.

    Overlaps are blended with linear ramps that give no weight to the quarter of the overlap nearest each tile's
    border (weights normalised per pixel): the pixels a tile gets wrong (its padding reaches them) are taken from
    its neighbour, there are no seams, and the result matches ``run(x)`` closely.
    """
    height, width = x.shape[-2:]
    rows = tile_spans(height, tile, overlap, multiple)
    cols = tile_spans(width, tile, overlap, multiple)
    if len(rows) == 1 and len(cols) == 1:
        return run(x)
    out = torch.zeros_like(x)
    total = torch.zeros((1, 1, height, width), dtype=x.dtype, device=x.device)
    row_w, col_w = _windows(rows, x.device), _windows(cols, x.device)
    for (y0, y1), wy in zip(rows, row_w, strict=True):
        for (x0, x1), wx in zip(cols, col_w, strict=True):
            window = (wy[:, None] * wx[None, :]).to(x.dtype)
            out[..., y0:y1, x0:x1] += run(x[..., y0:y1, x0:x1]) * window
            total[..., y0:y1, x0:x1] += window
    return out / total
