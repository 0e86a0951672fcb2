"""Losses: pixel, perceptual (VGG19 features) and adversarial. Pure torch."""

from .pixel import PIXEL_LOSSES, PixelLoss

__all__ = ["PIXEL_LOSSES", "PixelLoss"]
