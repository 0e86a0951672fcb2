"""Linear motion blur as a factor: a camera or subject moving in a straight line during the exposure.

The level is the length of the motion in pixels; its direction is a nuisance, drawn uniformly in [0, pi) per
sample from the run's generator (a model conditions on the length only). Each sample's kernel is an
anti-aliased line segment of that length through the kernel's centre (a pixel's weight falls linearly from 1 on
the segment to 0 one pixel away from it), normalised to sum 1; length 0 is the identity. The kernels are applied
in one grouped convolution with the border replicated.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from cugan_lightning.degradations.blur import check_image, per_sample
from cugan_lightning.degradations.factors.base import OPTICS, Factor, register

__all__ = ["Motion", "motion_blur", "motion_kernels"]


def motion_kernels(length: Tensor, angle: Tensor, size: int) -> Tensor:
    """Normalised kernels ``(B, size, size)`` (float64) of line segments of ``length`` ``(B,)`` pixels at
    ``angle`` ``(B,)`` radians, centred; ``size`` odd. Length 0 gives the delta kernel."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"motion kernel size must be a positive odd integer, got {size}")
    half = size // 2
    offsets = torch.arange(-half, half + 1, dtype=torch.float64, device=length.device)
    py, px = offsets[:, None], offsets[None, :]  # (size, 1), (1, size): rows go down, columns right
    length = length.to(torch.float64)[:, None, None]
    angle = angle.to(device=length.device, dtype=torch.float64)[:, None, None]
    dx, dy = torch.cos(angle), torch.sin(angle)
    # distance from each pixel centre to the segment from -length/2 to +length/2 along (dx, dy)
    along = (px * dx + py * dy).clamp(-length / 2, length / 2)
    distance = torch.sqrt((px - along * dx) ** 2 + (py - along * dy) ** 2)
    kernel = (1.0 - distance).clamp(min=0)
    return kernel / kernel.sum(dim=(1, 2), keepdim=True)


def motion_blur(x: Tensor, length: Tensor, angle: Tensor, size: int) -> Tensor:
    """Blur each sample of ``x`` ``(B, C, H, W)`` along a line of ``length`` ``(B,)`` pixels at ``angle`` ``(B,)``
    with a ``size x size`` kernel, border replicated; samples of length 0 come back bit for bit unchanged."""
    batch, channels, height, width = x.shape
    kernel = motion_kernels(length.to(x.device), angle.to(x.device), size).to(x.dtype)  # (B, k, k)
    weight = kernel[:, None].repeat_interleave(channels, dim=0)  # (B * C, 1, k, k)
    half = size // 2
    padded = F.pad(x.reshape(1, batch * channels, height, width), (half, half, half, half), mode="replicate")
    out = F.conv2d(padded, weight, groups=batch * channels).reshape(x.shape)
    return torch.where((length.to(x.device) > 0).view(batch, 1, 1, 1), out, x)


@register
class Motion(Factor):
    """Linear motion blur: its length in pixels, 0..15 in steps of 1, ``z = length / 15``; the direction is drawn
    per sample. In the optics stage, after Gaussian blur. No level maps."""

    name = "motion"
    unit = "motion blur length in pixels"
    label = "motion length (pixels)"
    key = "m"
    stage, rank = OPTICS, 1
    default_max, default_step = 15.0, 1.0
    scales_with_size = True
    classical = "none"  # the deconvolutions here assume a known Gaussian kernel
    estimate = "learned"

    @property
    def kernel_size(self) -> int:
        """The smallest odd size that holds the longest segment with its anti-aliased ends."""
        return 2 * math.ceil(self.max_level / 2) + 3

    def apply(
        self, x: Tensor, level: Tensor | float, generator: torch.Generator | None = None, **options
    ) -> Tensor:
        """Motion blur of ``level`` pixels per sample in a direction drawn from ``generator`` (``B`` uniform draws
        on its device, whatever the levels, so the stream stays aligned)."""
        check_image(x)
        length = per_sample(level, x.shape[0], "motion length", x.device)
        draw_device = generator.device if generator is not None else x.device
        angle = torch.rand(x.shape[0], generator=generator, dtype=torch.float64, device=draw_device) * math.pi
        longest = float(length.max()) if length.numel() else 0.0
        size = max(self.kernel_size, 2 * math.ceil(longest / 2) + 3)
        return motion_blur(x, length, angle.to(x.device), size)

    def apply_map(self, x: Tensor, level: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise ValueError(
            "motion blur keeps one length per image; it has no level map (maps: blur, noise, poisson)"
        )
