"""The level estimator: a small fully convolutional network from a degraded image to its condition map.

It reads an image ``(B, 3, H, W)`` in [0, 1] and returns a map ``(B, D, H / 4, W / 4)`` of condition values z
(one channel per factor of the codec): each location's estimate from a receptive field of about 60 pixels. It is
trained on the map's mean (unclamped, so that a level of 0 still has a gradient); :meth:`LevelEstimator.global_z`
and :meth:`LevelEstimator.condition_map` clamp to the codec's [0, 1]. The map is where an image is degraded
unevenly (docs/estimation.md).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["LevelEstimator"]


def _block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU(inplace=True)]


class LevelEstimator(nn.Module):
    """``channels`` wide, two stride-2 stages of ``depth`` convolutions each after a full-resolution pair.

    The first layers see the pixels at full resolution, where noise and JPEG blocks live; the strided stages
    widen the view for blur. ``cond_dim`` is the codec's number of factors.
    """

    def __init__(self, cond_dim: int = 2, in_channels: int = 3, channels: int = 32, depth: int = 3) -> None:
        super().__init__()
        if cond_dim < 1 or channels < 1 or depth < 1:
            raise ValueError(
                f"cond_dim, channels and depth must be positive; got {cond_dim}, {channels}, {depth}"
            )
        self.config: dict[str, Any] = {
            "cond_dim": cond_dim, "in_channels": in_channels, "channels": channels, "depth": depth,
        }  # fmt: skip
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

    def forward(self, x: Tensor) -> Tensor:
        """The raw condition map ``(B, D, ceil(H / 4), ceil(W / 4))`` (what training sees)."""
        # centred input: the network sees deviations from mid-gray, so its first layers need no large bias
        return self.head(self.features(x - 0.5))

    def condition_map(self, x: Tensor) -> Tensor:
        """The condition map, clamped to [0, 1]."""
        return self(x).clamp(0.0, 1.0)

    def global_z(self, x: Tensor) -> Tensor:
        """The image's condition ``(B, D)`` in [0, 1]: the mean of its raw map, clamped."""
        return self(x).mean(dim=(2, 3)).clamp(0.0, 1.0)
