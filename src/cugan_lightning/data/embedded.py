"""The embedded demo photographs: natural images that ship inside the scikit-image wheel.

A small, offline, always-available set so that the demo and the tests run anywhere. It is a demo set, not a
benchmark: real experiments read DIV2K / CBSD68 / LIVE1 from folders given in config.
"""

from __future__ import annotations

import numpy as np

from .io import to_rgb_array

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


def load_embedded(split: str) -> list[tuple[str, np.ndarray]]:
    """The photographs of one split (``train`` or ``val``) as (name, uint8 RGB array) pairs."""
    if split not in ("train", "val"):
        raise ValueError(f"embedded split must be 'train' or 'val', got '{split}'")
    names = EMBEDDED_TRAIN if split == "train" else EMBEDDED_VAL
    return [(name, load_embedded_image(name)) for name in names]
