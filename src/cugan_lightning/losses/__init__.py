"""Losses: pixel, perceptual (VGG19 features) and adversarial. Pure torch."""

from .adversarial import GAN_LOSSES, GANLoss
from .perceptual import PerceptualLoss, build_perceptual_loss
from .pixel import PIXEL_LOSSES, PixelLoss

__all__ = ["GAN_LOSSES", "PIXEL_LOSSES", "GANLoss", "PerceptualLoss", "PixelLoss", "build_perceptual_loss"]
