"""Images of every kind the API takes (PIL, numpy, tensors), their sizes, the shrinking behind previews, and how
an image's channels meet a model's (a gray model reads gray, an RGB model RGB)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..data.io import to_float
from ..data.layouts import (
    LUMA_WEIGHTS,
    array_to_pil,
    from_float,
    merge_channels,
    pil_to_array,
    split_channels,
)
from ..degradations import known_factors, lookup
from .tiling import MIN_TILE

__all__ = [
    "PREVIEW_SIDE",
    "SCALED_FACTORS",
    "apply_to_image",
    "channel_note",
    "image_size",
    "is_gray_image",
    "model_input",
    "preview_size",
    "run_on_array",
    "run_on_tensor",
    "shrink",
]

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


def apply_to_image(image: ImageT, channels: int, run: Callable[[Tensor], Tensor]) -> ImageT:
    """Run a batch restoration ``run`` (``(B, channels, H, W)`` float in [0, 1]) on ``image`` of any kind and give
    back the same kind (:func:`run_on_array`, :func:`run_on_tensor`)."""
    if isinstance(image, Image.Image):
        array, mode = pil_to_array(image)
        return array_to_pil(run_on_array(array, channels, run), mode)  # type: ignore[return-value]
    if isinstance(image, Tensor):
        if not image.is_floating_point() or image.dim() not in (3, 4) or image.shape[-3] not in (1, 3):
            raise ValueError(
                f"tensor images must be float (C, H, W) or (B, C, H, W) in [0, 1] with C 3 or 1 (gray), got "
                f"{image.dtype} {tuple(image.shape)}"
            )
        batch = image if image.dim() == 4 else image[None]
        out = run_on_tensor(batch, channels, run)
        out = out if image.dim() == 4 else out[0]
        return out.to(device=image.device, dtype=image.dtype)  # type: ignore[return-value]
    if isinstance(image, np.ndarray):
        return run_on_array(image, channels, run)  # type: ignore[return-value]
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


def is_gray_image(image: Any) -> bool:
    """Whether an image of any kind the API takes is gray (gray or gray + alpha; a 1-channel tensor)."""
    if isinstance(image, Image.Image):
        return image.mode in ("1", "L", "LA", "La", "I", "F") or image.mode.startswith("I;16")
    if isinstance(image, Tensor):
        return image.dim() >= 3 and image.shape[-3] == 1
    array = np.asarray(image)
    return array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 2))


def channel_note(image: Any, channels: int) -> str | None:
    """The one line that says how ``image`` meets a model of ``channels`` channels, or None when they match."""
    gray = is_gray_image(image)
    if channels == 1 and not gray:
        return "a gray model: the colour image is converted to gray (BT.601 luma) and comes back gray"
    if channels == 3 and gray:
        return (
            "an RGB model: the gray image is restored as RGB (its value repeated) and averaged back to gray"
        )
    return None


def model_input(rgb: np.ndarray, gray: bool, channels: int) -> Tensor:
    """Float ``(H, W, 3)`` RGB or ``(H, W, 1)`` gray, as :func:`~cugan_lightning.data.layouts.split_channels`
    gives it -> the batch ``(1, channels, H, W)`` a model of ``channels`` reads: RGB (gray repeated), or gray (the
    gray plane, or the BT.601 luma of a colour image, not rounded)."""
    if channels == 1 and not gray:
        rgb = (rgb @ np.asarray(LUMA_WEIGHTS, dtype=np.float32))[:, :, None]
    elif channels == 3 and gray:
        rgb = np.repeat(rgb, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]


def run_on_array(array: np.ndarray, channels: int, run: Callable[[Tensor], Tensor]) -> np.ndarray:
    """Run a restoration ``run`` of ``(1, channels, H, W)`` float batches on a numpy image (layouts as
    :func:`~cugan_lightning.data.layouts.split_channels`): the result has the input's layout and dtype (an alpha
    channel copied, or shrunk with the image for a preview), except that a gray model (``channels=1``) gives a
    colour image back gray: its luma restored. A gray image given to an RGB model is repeated and averaged back."""
    array = np.asarray(array)
    rgb, alpha, gray = split_channels(array)
    restored = run(model_input(rgb, gray, channels))[0].permute(1, 2, 0).cpu().numpy()
    if alpha is not None and restored.shape[:2] != alpha.shape:  # a preview: the alpha shrinks with the image
        plane = torch.from_numpy(np.ascontiguousarray(to_float(alpha), dtype=np.float32))
        alpha = from_float(shrink(plane[None, None], restored.shape[:2])[0, 0].numpy(), alpha.dtype)
    if channels == 1 and not gray:  # the result takes the gray layout (with the alpha channel, if any)
        array = np.empty(array.shape[:2] + ((2,) if alpha is not None else ()), dtype=array.dtype)
    return merge_channels(restored, alpha, gray or channels == 1, array)


def run_on_tensor(batch: Tensor, channels: int, run: Callable[[Tensor], Tensor]) -> Tensor:
    """Run ``run`` on a ``(B, 1|3, H, W)`` batch for a model of ``channels``: gray to an RGB model is repeated and
    averaged back; RGB to a gray model is converted to its luma and comes back ``(B, 1, H, W)``."""
    if batch.shape[1] == channels:
        return run(batch)
    if channels == 3:
        return run(batch.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
    weights = batch.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    return run((batch * weights).sum(dim=1, keepdim=True))
