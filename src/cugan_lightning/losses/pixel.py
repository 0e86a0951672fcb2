"""Pixel losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PIXEL_LOSSES = ("mse", "l1", "charbonnier")


class PixelLoss(nn.Module):
    """Mean pixel distance between ``(B, C, H, W)`` tensors: ``mse`` (the paper's), ``l1`` or ``charbonnier``;
    ``weight`` ``(B,)`` weights each sample's mean before the batch mean (level-weighted losses)."""

    def __init__(self, kind: str = "mse", eps: float = 1e-6) -> None:
        super().__init__()
        if kind not in PIXEL_LOSSES:
            raise ValueError(f"unknown pixel loss '{kind}'; choose one of {', '.join(PIXEL_LOSSES)}")
        self.kind = kind
        self.eps = eps

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        if weight is None:
            if self.kind == "mse":
                return F.mse_loss(output, target)
            if self.kind == "l1":
                return F.l1_loss(output, target)
            return torch.sqrt((output - target) ** 2 + self.eps**2).mean()
        diff = output - target
        if self.kind == "mse":
            per_pixel = diff**2
        elif self.kind == "l1":
            per_pixel = diff.abs()
        else:
            per_pixel = torch.sqrt(diff**2 + self.eps**2)
        return (per_pixel.flatten(1).mean(dim=1) * weight).mean()

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
