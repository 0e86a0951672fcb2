"""The level estimator: a small fully convolutional network from a degraded image to its condition map.

It reads an image ``(B, 3, H, W)`` in [0, 1] and returns a map ``(B, D, H / 4, W / 4)`` of condition values z
(one channel per factor of the codec): each location's estimate from a receptive field of about 60 pixels. It is
trained on the map pooled to one value per factor (unclamped, so that a level of 0 still has a gradient): its plain
mean, or with ``pooling="attention"`` a mean weighted by a second head's softmax over the locations, so that the
network can lean on where a factor shows (edges for blur) over where it cannot be seen (flat sky).
:meth:`LevelEstimator.global_z` and :meth:`LevelEstimator.condition_map` clamp to the codec's [0, 1]. The map is
where an image is degraded unevenly (docs/estimation.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["POOLINGS", "LevelEstimator"]

POOLINGS = ("mean", "attention")
TILES_PER_PASS = 32
"""Tiles (or windows) of a tiled reading run through the network at once: bounds memory, not speed."""


def _block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU(inplace=True)]


class LevelEstimator(nn.Module):
    """``channels`` wide, two stride-2 stages of ``depth`` convolutions each after a full-resolution pair.

    The first layers see the pixels at full resolution, where noise and JPEG blocks live; the strided stages
    widen the view for blur. ``cond_dim`` is the codec's number of factors. ``pooling``: how the map becomes
    the image's one value per factor, ``"mean"`` or ``"attention"`` (a weight per location and factor, from a
    1x1 head that starts at zero, so that training starts from the plain mean), or a list with one of them per
    factor in the codec's order (``["attention", "mean"]``: blur by attention, noise by the mean).
    """

    def __init__(
        self,
        cond_dim: int = 2,
        in_channels: int = 3,
        channels: int = 32,
        depth: int = 3,
        pooling: str | Sequence[str] = "mean",
    ) -> None:
        super().__init__()
        if cond_dim < 1 or channels < 1 or depth < 1:
            raise ValueError(
                f"cond_dim, channels and depth must be positive; got {cond_dim}, {channels}, {depth}"
            )
        poolings = [pooling] * cond_dim if isinstance(pooling, str) else list(pooling)
        if len(poolings) != cond_dim or any(p not in POOLINGS for p in poolings):
            raise ValueError(
                f"pooling must be one of {list(POOLINGS)}, or a list of {cond_dim} of them (one per factor); "
                f"got {pooling!r}"
            )
        self.config: dict[str, Any] = {
            "cond_dim": cond_dim, "in_channels": in_channels, "channels": channels, "depth": depth,
        }  # fmt: skip
        if set(poolings) != {"mean"}:  # a mean-pooled estimator's description is as it was before pooling
            self.config["pooling"] = pooling if isinstance(pooling, str) else poolings
        self.cond_dim = cond_dim
        layers: list[nn.Module] = [*_block(in_channels, channels), *_block(channels, channels)]
        width = channels
        for _ in range(2):
            layers += _block(width, 2 * width, stride=2)
            width *= 2
            for _ in range(depth - 1):
                layers += _block(width, width)
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, cond_dim, 1)
        self.weight: nn.Conv2d | None = None
        if "attention" in poolings:
            self.weight = nn.Conv2d(width, cond_dim, 1)
            nn.init.zeros_(self.weight.weight)
            nn.init.zeros_(self.weight.bias)
        # 1 where a factor pools by attention, 0 where by the mean (its weights' logits held at 0: uniform)
        attends = torch.tensor([float(p == "attention") for p in poolings]).view(1, cond_dim, 1, 1)
        self.register_buffer("attends", attends, persistent=False)

    def _features(self, x: Tensor) -> Tensor:
        # centred input: the network sees deviations from mid-gray, so its first layers need no large bias
        return self.features(x - 0.5)

    def forward(self, x: Tensor) -> Tensor:
        """The raw condition map ``(B, D, ceil(H / 4), ceil(W / 4))``."""
        return self.head(self._features(x))

    def _map_and_logits(self, x: Tensor, tile: int | None) -> tuple[Tensor, Tensor | None]:
        """The raw map and the attention logits (None for mean pooling), read on the whole image, or with ``tile``
        on each ``tile x tile`` square of it apart (the image padded by reflection at the bottom and right to whole
        tiles; the map cropped back to the image's cells), as the network saw its training patches."""
        h, w = x.shape[-2:]
        if tile is not None and tile % 4:
            raise ValueError(f"a reading tile must be a multiple of 4 pixels (one map cell each), got {tile}")
        if tile is None or min(h, w) < tile:
            features = self._features(x)
            logits = None if self.weight is None else self.weight(features).float() * self.attends
            return self.head(features), logits
        batch, channels = x.shape[:2]
        x = F.pad(x, (0, -w % tile, 0, -h % tile), mode="reflect")
        rows, cols = x.shape[-2] // tile, x.shape[-1] // tile
        tiles = x.unfold(2, tile, tile).unfold(3, tile, tile)  # (B, C, rows, cols, tile, tile)
        tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, channels, tile, tile)
        maps, logits = [], []
        for part in tiles.split(TILES_PER_PASS):
            features = self._features(part)
            maps.append(self.head(features))
            if self.weight is not None:
                logits.append(self.weight(features).float() * self.attends)

        def stitch(parts: list[Tensor]) -> Tensor:
            cells = torch.cat(parts)  # (B * rows * cols, D, c, c)
            c = cells.shape[-1]
            cells = cells.view(batch, rows, cols, self.cond_dim, c, c).permute(0, 3, 1, 4, 2, 5)
            return cells.reshape(batch, self.cond_dim, rows * c, cols * c)[..., : -(-h // 4), : -(-w // 4)]

        return stitch(maps), (stitch(logits) if logits else None)

    def map_and_weights(self, x: Tensor, tile: int | None = None) -> tuple[Tensor, Tensor]:
        """The raw map and each location's share of the pooled value, both ``(B, D, ceil(H / 4), ceil(W / 4))``
        (float32 shares, uniform for mean pooling, summing to 1 over the locations of every factor), from one pass;
        ``tile``: read tile by tile (:meth:`pooled`)."""
        z, logits = self._map_and_logits(x, tile)
        if logits is None:
            return z, torch.full_like(z, 1.0 / (z.shape[-1] * z.shape[-2]), dtype=torch.float32)
        return z, logits.flatten(2).softmax(dim=2).view_as(logits)

    def pooled(self, x: Tensor, tile: int | None = None) -> Tensor:
        """The image's raw condition ``(B, D)`` in float32, unclamped: the map pooled (what training sees).

        ``tile`` (pixels, a multiple of 4): the map read on each ``tile x tile`` square apart and pooled over all
        of them at once (one softmax over every location for attention). A network trained on patches of one size
        reads a larger image differently (its border cells, which zero padding darkens, are fewer), and reads it as
        it was trained when ``tile`` is that size (docs/estimation.md); an image smaller than a tile is read whole.
        """
        if self.weight is None and tile is None:
            return self(x).float().mean(dim=(2, 3))
        z, weights = self.map_and_weights(x, tile)
        return (z.float() * weights).sum(dim=(2, 3))

    def condition_map(self, x: Tensor) -> Tensor:
        """The condition map, clamped to [0, 1]."""
        return self(x).clamp(0.0, 1.0)

    def global_z(self, x: Tensor) -> Tensor:
        """The image's condition ``(B, D)`` in [0, 1]: its raw map pooled, clamped (validation during training)."""
        return self.pooled(x).clamp(0.0, 1.0)
