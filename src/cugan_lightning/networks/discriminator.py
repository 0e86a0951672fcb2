"""VGG-style discriminator with global feature modulation (GFM), paper section 3.3 (docs/model.md).

The authors never released it; this follows the paper. Module names: ``features.<i>.conv`` / ``.norm`` for the
10 conv layers, ``head`` for the two fully connected layers, and the condition network C_D under ``cond.<i>``
(``cond.<i>.alpha`` / ``cond.<i>.beta``, one pair per normalised layer ``features.<i+1>``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CUGANDiscriminator", "GFMCondition"]

_WIDTH_MULTIPLIERS = (1, 1, 2, 2, 4, 4, 8, 8, 8, 8)
_MIN_SIZE = 32  # five stride-2 convs: 32 -> 1


class GFMCondition(nn.Module):
    """Condition layers of one GFM: ``z`` ``(B, cond_dim)`` -> ``alpha, beta`` each ``(B, C, 1, 1)``; a condition
    map ``(B, cond_dim, h, w)`` -> ``(B, C, h', w')`` at the feature size ``size`` (area-resized first).

    Starts as the identity (``alpha = 1``, ``beta = 0``) through a zero weight and bias 1 / 0, so the weights still
    receive gradients through ``z`` from the first step.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Linear(cond_dim, channels)
        self.beta = nn.Linear(cond_dim, channels)
        nn.init.zeros_(self.alpha.weight)
        nn.init.ones_(self.alpha.bias)
        nn.init.zeros_(self.beta.weight)
        nn.init.zeros_(self.beta.bias)

    def forward(self, z: Tensor, size: tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
        if z.dim() == 2:
            return self.alpha(z)[:, :, None, None], self.beta(z)[:, :, None, None]
        if size is not None and tuple(z.shape[-2:]) != tuple(size):
            z = F.adaptive_avg_pool2d(z, size)
        alpha = F.conv2d(z, self.alpha.weight[:, :, None, None], self.alpha.bias)
        return alpha, F.conv2d(z, self.beta.weight[:, :, None, None], self.beta.bias)


class _ConvLayer(nn.Module):
    """Conv (+ BatchNorm) of the discriminator body; the GFM and activation are applied by the parent."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: bool) -> None:
        super().__init__()
        kernel = 3 if stride == 1 else 4
        # a bias right before BatchNorm is cancelled by its mean subtraction
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=1, bias=not norm)
        self.norm = nn.BatchNorm2d(out_channels) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return x if self.norm is None else self.norm(x)


class CUGANDiscriminator(nn.Module):
    """Conditional VGG-style discriminator: ``(x, z)`` -> one real/fake logit per sample.

    Args:
        in_channels: image channels.
        cond_dim: length of the condition vector ``z``.
        base_channels: width of the first layers; the 10 convs use ``base * (1, 1, 2, 2, 4, 4, 8, 8, 8, 8)``.
        gfm: False gives the plain discriminator (paper Fig. 8): no condition layers, ``z`` ignored.

    Body: 3x3 stride-1 and 4x4 stride-2 convs alternate (padding 1), BatchNorm after every conv but the first,
    GFM ``alpha(z) * x + beta(z)`` after each BatchNorm, LeakyReLU(0.2) after each. Head: global average
    pooling, Linear(8 * base -> 100), LeakyReLU(0.2), Linear(100 -> 1).

    Init: convs and linears of the base network Kaiming-normal (fan_in, LeakyReLU slope 0.2), bias 0;
    BatchNorm weight 1, bias 0; GFM as the identity (see :class:`GFMCondition`).
    """

    def __init__(
        self, in_channels: int = 3, cond_dim: int = 2, base_channels: int = 64, gfm: bool = True
    ) -> None:
        super().__init__()
        if in_channels < 1 or base_channels < 1:
            raise ValueError(
                f"in_channels and base_channels must be >= 1, got {in_channels}, {base_channels}"
            )
        if gfm and cond_dim < 1:
            raise ValueError(f"cond_dim must be >= 1 when gfm=True, got {cond_dim}")
        self.in_channels = int(in_channels)
        self.cond_dim = int(cond_dim)
        self.base_channels = int(base_channels)
        self.gfm = bool(gfm)

        widths = [base_channels * m for m in _WIDTH_MULTIPLIERS]
        layers = []
        prev = in_channels
        for i, width in enumerate(widths):
            layers.append(_ConvLayer(prev, width, stride=1 if i % 2 == 0 else 2, norm=i > 0))
            prev = width
        self.features = nn.ModuleList(layers)
        self.act = nn.LeakyReLU(0.2)
        self.head = nn.Sequential(nn.Linear(widths[-1], 100), nn.LeakyReLU(0.2), nn.Linear(100, 1))

        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=0.2, mode="fan_in", nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # built after the base init so that it keeps its identity init
        self.cond = nn.ModuleList(GFMCondition(cond_dim, w) for w in widths[1:]) if self.gfm else None

    @property
    def config(self) -> dict:
        """Constructor kwargs as plain Python types: ``CUGANDiscriminator(**net_d.config)`` rebuilds it."""
        return {
            "in_channels": self.in_channels,
            "cond_dim": self.cond_dim,
            "base_channels": self.base_channels,
            "gfm": self.gfm,
        }

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        """Logits ``(B,)`` for images ``x`` ``(B, in_channels, H, W)`` in [0, 1], ``H, W >= 32``, under ``z``.

        ``z`` ``(B, cond_dim)`` or a condition map ``(B, cond_dim, h, w)`` (applied per pixel, resized to each
        layer) is required when ``gfm=True`` and ignored otherwise.
        """
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a 4-D tensor (B, C, H, W), got {shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels, got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < _MIN_SIZE:
            raise ValueError(
                f"x must be at least {_MIN_SIZE}x{_MIN_SIZE} (five stride-2 convs), got {tuple(x.shape[-2:])}"
            )
        if self.cond is not None:
            if not isinstance(z, Tensor):
                raise ValueError(
                    f"z is required when gfm=True: pass a ({x.shape[0]}, {self.cond_dim}) tensor"
                )
            if z.dim() not in (2, 4) or z.shape[:2] != (x.shape[0], self.cond_dim):
                raise ValueError(
                    f"z must have shape ({x.shape[0]}, {self.cond_dim}) or ({x.shape[0]}, {self.cond_dim}, H, W), "
                    f"got {tuple(z.shape)}"
                )

        feat = x
        for i, layer in enumerate(self.features):
            feat = layer(feat)
            if i > 0 and self.cond is not None:
                alpha, beta = self.cond[i - 1](z, feat.shape[-2:])
                feat = alpha * feat + beta
            feat = self.act(feat)
        return self.head(feat.mean(dim=(-2, -1))).squeeze(-1)
