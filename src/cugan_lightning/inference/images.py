"""Images of every kind the API takes (PIL, numpy, tensors), their sizes, and the shrinking behind previews."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..data.layouts import array_to_pil, pil_to_array
from ..degradations import known_factors, lookup
from .tiling import MIN_TILE

__all__ = ["PREVIEW_SIDE", "SCALED_FACTORS", "apply_to_image", "image_size", "preview_size", "shrink"]

ImageT = TypeVar("ImageT")

PREVIEW_SIDE = 512
"""Default longest side of a preview, in pixels."""

SCALED_FACTORS = tuple(name for name in known_factors() if lookup(name).scales_with_size)
"""Factors whose level shrinks with the image: blur and motion lengths in pixels, and noise, which averaging
lowers (each factor's ``scales_with_size``)."""


def preview_size(height: int, width: int, max_side: int = PREVIEW_SIDE) -> tuple[int, int]:
    """``(height, width)`` shrunk, aspect kept, so that the longer side is at most ``max_side`` (unchanged when it
    already fits)."""
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < MIN_TILE:
        raise ValueError(f"preview max_side must be an integer >= {MIN_TILE} pixels, got {max_side!r}")
    scale = max(height, width) / max_side
    if scale <= 1:
        return height, width
    return max(1, round(height / scale)), max(1, round(width / scale))


def shrink(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``(B, C, H, W)`` float to ``size`` by area averaging (each output pixel the mean of the pixels it covers)."""
    return x if tuple(x.shape[-2:]) == size else F.interpolate(x, size=size, mode="area")


def apply_to_image(
    image: ImageT, on_array: Callable[[np.ndarray], np.ndarray], on_tensor: Callable[[Tensor], Tensor]
) -> ImageT:
    """Run an array or a batch-tensor restoration on ``image`` of any kind and give back the same kind."""
    if isinstance(image, Image.Image):
        array, mode = pil_to_array(image)
        return array_to_pil(on_array(array), mode)  # type: ignore[return-value]
    if isinstance(image, Tensor):
        if not image.is_floating_point() or image.dim() not in (3, 4) or image.shape[-3] != 3:
            raise ValueError(
                f"tensor images must be float (3, H, W) or (B, 3, H, W) in [0, 1], got {image.dtype} "
                f"{tuple(image.shape)}"
            )
        batch = image if image.dim() == 4 else image[None]
        out = on_tensor(batch)
        out = out if image.dim() == 4 else out[0]
        return out.to(device=image.device, dtype=image.dtype)  # type: ignore[return-value]
    if isinstance(image, np.ndarray):
        return on_array(image)  # type: ignore[return-value]
    raise TypeError(f"image must be a PIL image, a numpy array or a torch tensor, got {type(image).__name__}")


def image_size(image: Any) -> tuple[int, int]:
    """``(H, W)`` of a PIL image, a numpy array ``(H, W[, C])`` or a tensor ``(..., H, W)``."""
    if isinstance(image, Image.Image):
        return image.height, image.width
    if isinstance(image, np.ndarray) and image.ndim >= 2:
        return int(image.shape[0]), int(image.shape[1])
    if isinstance(image, Tensor) and image.dim() >= 2:
        return int(image.shape[-2]), int(image.shape[-1])
    raise TypeError(f"image must be a PIL image, a numpy array or a torch tensor, got {type(image).__name__}")
