"""The LightningModules of the two training stages on one base (:mod:`.base`), the level estimator's
(:mod:`.estimator_module`), the speed options, the training
clock, and (:mod:`.lightning_private`) the only code that touches Lightning's internals."""

from .base import RestorationModule
from .clock import TrainingClock
from .cugan_module import CUGANModule
from .cunet_module import CUnetModule
from .estimator_module import EstimatorModule

__all__ = ["CUGANModule", "CUnetModule", "EstimatorModule", "RestorationModule", "TrainingClock"]
