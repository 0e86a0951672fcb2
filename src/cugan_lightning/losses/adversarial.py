"""Adversarial losses on discriminator logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GAN_LOSSES = ("vanilla", "hinge", "lsgan")


class GANLoss(nn.Module):
    """GAN loss on logits ``(B,)``: ``vanilla`` (binary cross-entropy, the paper's), ``hinge`` or ``lsgan``.

    ``loss(logits, real=True, for_discriminator=True)``: the discriminator's term for real (or, with
    ``real=False``, restored) inputs; with ``for_discriminator=False`` the generator's term, which wants its
    outputs judged real. ``weight`` ``(B,)`` weights each sample's term before the mean (level-weighted losses).
    """

    def __init__(self, kind: str = "vanilla") -> None:
        super().__init__()
        if kind not in GAN_LOSSES:
            raise ValueError(f"unknown GAN loss '{kind}'; choose one of {', '.join(GAN_LOSSES)}")
        self.kind = kind

    def forward(
        self,
        logits: torch.Tensor,
        real: bool,
        for_discriminator: bool = True,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.kind == "vanilla":
            target = torch.ones_like(logits) if real else torch.zeros_like(logits)
            per_sample = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        elif self.kind == "lsgan":
            per_sample = (logits - (1.0 if real else 0.0)) ** 2
        elif not for_discriminator:  # hinge, generator side
            per_sample = -logits
        else:
            per_sample = F.relu(1.0 - logits) if real else F.relu(1.0 + logits)
        if weight is not None:
            per_sample = per_sample * weight.reshape(-1, *([1] * (per_sample.dim() - 1)))
        return per_sample.mean()

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
