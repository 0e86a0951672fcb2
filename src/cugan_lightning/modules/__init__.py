"""The LightningModules of the two training stages on one base (:mod:`.base`), the speed options, the training
clock, and (:mod:`.lightning_private`) the only code that touches Lightning's internals."""

from .base import RestorationModule
from .clock import TrainingClock
from .cugan_module import CUGANModule
from .cunet_module import CUnetModule

__all__ = ["CUGANModule", "CUnetModule", "RestorationModule", "TrainingClock"]
