"""The embedded demo photographs: natural images that ship inside the scikit-image wheel.

A small, offline, always-available set so that the demo and the tests run anywhere. It is a demo set, not a
benchmark: real experiments read DIV2K / CBSD68 / LIVE1 from folders given in config.
"""

from __future__ import annotations

import numpy as np
import torch

from ..degradations import degrade_fixed
from .datasets import center_crop
from .io import tensor_to_uint8, to_rgb_array
from .layouts import to_gray_array

# Training and validation photographs are kept apart.
EMBEDDED_TRAIN = (
    "astronaut",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "motorcycle_left",
    "camera",
    "brick",
    "grass",
    "gravel",
    "coins",
)
EMBEDDED_VAL = ("chelsea", "coffee")


def load_embedded_image(name: str) -> np.ndarray:
    """One embedded photograph as uint8 RGB ``(H, W, 3)``."""
    import skimage.data

    if name == "motorcycle_left":
        return to_rgb_array(skimage.data.stereo_motorcycle()[0])
    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise ValueError(
            f"unknown embedded image '{name}'; choose from {', '.join(EMBEDDED_TRAIN + EMBEDDED_VAL)}"
        )
    return to_rgb_array(loader())


def degraded_embedded_image(
    name: str, blur: float, noise: float, *, channels: int = 3, crop: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """An embedded photograph (its central ``crop`` square where given) and its copy degraded the evaluation's
    fixed way (blur, noise, 8-bit quantisation; seeded by ``name``), both uint8: ``(H, W, 3)``, or ``(H, W)`` in
    gray (``channels=1``: BT.601 luma, degraded in gray as a gray model's inputs are)."""
    clean = center_crop(load_embedded_image(name), crop, multiple=1)
    clean = np.ascontiguousarray(to_gray_array(clean)[:, :, None] if channels == 1 else clean)
    degraded = degrade_fixed(
        torch.from_numpy(clean).permute(2, 0, 1).float() / 255.0, blur, noise, image_key=name
    )
    array = tensor_to_uint8(degraded)
    if channels == 1:
        return clean[:, :, 0], np.ascontiguousarray(array[:, :, 0])
    return clean, np.ascontiguousarray(array)


def load_embedded(split: str) -> list[tuple[str, np.ndarray]]:
    """The photographs of one split (``train`` or ``val``) as (name, uint8 RGB array) pairs."""
    if split not in ("train", "val"):
        raise ValueError(f"embedded split must be 'train' or 'val', got '{split}'")
    names = EMBEDDED_TRAIN if split == "train" else EMBEDDED_VAL
    return [(name, load_embedded_image(name)) for name in names]
