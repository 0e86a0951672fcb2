"""Image arrays in every layout the readers return, to float RGB and back: gray, gray + alpha, RGB, RGBA at 8
or 16 bits, and PIL images of any mode. The restoration runs on float RGB (or float gray for a gray model: see
:func:`to_gray_array`); the alpha channel is carried around it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .io import to_float

__all__ = [
    "LUMA_WEIGHTS",
    "array_to_pil",
    "from_float",
    "is_color",
    "merge_channels",
    "pil_to_array",
    "split_channels",
    "to_gray_array",
]

LUMA_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)
"""ITU-R BT.601 luma of R, G, B at the precision of MATLAB's ``rgb2gray`` (0.2989, 0.5870, 0.1140 rounded), which
made the gray BSD68 from the colour photographs: rounded, it gives BSD68 from CBSD68 bit for bit."""


def is_color(array: np.ndarray) -> bool:
    """Whether an image array (layouts as :func:`split_channels`) has colour channels (RGB or RGBA)."""
    return array.ndim == 3 and array.shape[2] in (3, 4)


def to_gray_array(array: np.ndarray) -> np.ndarray:
    """Any image array to gray ``(H, W)`` of the same dtype: gray is kept as it is (16 bits stay 16 bits), alpha
    is dropped, colour becomes its BT.601 luma (:data:`LUMA_WEIGHTS`), rounded for integer types."""
    array = np.asarray(array)
    if array.ndim == 2:
        return array
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(
            f"unsupported image shape {array.shape}; expected (H, W) or (H, W, C) with C in 1..4"
        )
    if not is_color(array):
        return np.ascontiguousarray(array[:, :, 0])
    luma = array[:, :, :3].astype(np.float64) @ np.asarray(LUMA_WEIGHTS)
    if np.issubdtype(array.dtype, np.integer):
        top = np.iinfo(array.dtype).max
        return np.clip(np.round(luma), 0, top).astype(array.dtype)
    return luma.astype(array.dtype)


def split_channels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """``(H, W)`` or ``(H, W, 1|2|3|4)`` (uint8, uint16 or float in [0, 1]) -> float32 ``(H, W, 3)`` RGB, or
    ``(H, W, 1)`` for a gray image, in [0, 1]; the alpha channel (None without one); and whether it is gray."""
    if array.dtype == bool or not (
        array.dtype in (np.uint8, np.uint16) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(f"image arrays must be uint8, uint16 or float in [0, 1], got dtype {array.dtype}")
    if array.ndim == 2:
        color, alpha = array[:, :, None], None
    elif array.ndim == 3 and array.shape[2] in (1, 2, 3, 4):
        channels = array.shape[2]
        color = array[:, :, : 1 if channels <= 2 else 3]
        alpha = array[:, :, channels - 1] if channels in (2, 4) else None
    else:
        raise ValueError(
            f"unsupported image shape {array.shape}; expected (H, W) or (H, W, C) with C in 1, 2, 3, 4"
        )
    if min(array.shape[:2]) < 1:
        raise ValueError(f"image is empty: shape {array.shape}")
    gray = color.shape[2] == 1
    rgb = to_float(color)
    return np.ascontiguousarray(rgb, dtype=np.float32), alpha, gray


def from_float(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float values in [0, 1] (clipped) to ``dtype``: rounded to 8 or 16 bits, or kept as floats."""
    values = np.clip(values, 0.0, 1.0)
    if dtype == np.uint8:
        return np.round(values * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(values * 65535.0).astype(np.uint16)
    return values.astype(dtype)


def merge_channels(rgb: np.ndarray, alpha: np.ndarray | None, gray: bool, template: np.ndarray) -> np.ndarray:
    """Float ``(H, W, 3)`` or gray ``(H, W, 1)`` back to ``template``'s layout and dtype, with ``alpha`` put back
    untouched (``gray``: three channels averaged to one)."""
    # Gray: the three outputs differ only by what the network does to a neutral input; their mean is the
    # least-squares gray value.
    color = from_float(rgb.mean(axis=2, keepdims=True) if gray and rgb.shape[2] > 1 else rgb, template.dtype)
    if template.ndim == 2:
        return color[:, :, 0]
    if alpha is not None:
        return np.concatenate([color, alpha[:, :, None].astype(template.dtype)], axis=2)
    return color


_PIL_DIRECT = ("RGB", "RGBA", "L", "LA")


def pil_to_array(image: Image.Image) -> tuple[np.ndarray, str]:
    """A PIL image as an array plus the mode to give the result (the input's, where PIL can store it)."""
    mode = image.mode
    if mode in _PIL_DIRECT:
        return np.asarray(image), mode
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16), "I;16"
    if mode == "I":
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16), "I"
    if mode == "F":
        return np.asarray(image, dtype=np.float32), "F"
    if mode == "1":
        return np.asarray(image.convert("L")), "L"
    if mode in ("PA", "La") or "transparency" in image.info:
        return np.asarray(image.convert("RGBA")), "RGBA"
    return np.asarray(image.convert("RGB")), "RGB"


def array_to_pil(array: np.ndarray, mode: str) -> Image.Image:
    """Inverse of :func:`pil_to_array` for a result of the same layout."""
    if mode == "I":
        return Image.fromarray(array.astype(np.int32))
    return Image.fromarray(array)
