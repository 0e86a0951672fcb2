"""The LightningModules of the two training stages."""

from .clock import TrainingClock
from .cugan_module import CUGANModule, load_stage1_generator
from .cunet_module import CUnetModule

__all__ = ["CUGANModule", "CUnetModule", "TrainingClock", "load_stage1_generator"]
