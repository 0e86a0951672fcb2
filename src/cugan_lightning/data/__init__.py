"""Data: image folders and the embedded photographs, patches, the fixed evaluation grid, the data module.

The data module (and with it Lightning) is imported on first use only, so that image reading stays light.
"""

from typing import Any

from .datasets import EvalGridDataset, ImageSource, IterationBatchSampler, TrainPatchDataset, center_crop
from .embedded import (
    EMBEDDED_TRAIN,
    EMBEDDED_VAL,
    degraded_embedded_image,
    load_embedded,
    load_embedded_image,
)
from .io import IMAGE_EXTENSIONS, ImageReadError, list_images, read_image, read_image_array

__all__ = [
    "EMBEDDED_TRAIN",
    "EMBEDDED_VAL",
    "IMAGE_EXTENSIONS",
    "EvalGridDataset",
    "ImageReadError",
    "ImageSource",
    "IterationBatchSampler",
    "RestorationDataModule",
    "TrainPatchDataset",
    "center_crop",
    "degraded_embedded_image",
    "list_images",
    "load_embedded",
    "load_embedded_image",
    "read_image",
    "read_image_array",
]


def __getattr__(name: str) -> Any:
    if name == "RestorationDataModule":
        from .datamodule import RestorationDataModule

        return RestorationDataModule
    raise AttributeError(f"module 'cugan_lightning.data' has no attribute '{name}'")
