"""The LightningModules of the two training stages."""

from .cunet_module import CUnetModule

__all__ = ["CUnetModule"]
