"""Training time as a logged metric, and an optional time budget.

``TrainingClock`` logs ``time/train_minutes`` (wall-clock minutes since training started, summed over resumed
runs) with every validation, so a dashboard or ``metrics.csv`` can plot validation PSNR against time rather than
iterations; with ``duration`` (``DD:HH:MM:SS``) it also stops training when that much time has gone, as the
trainer's ``max_time`` does. Its elapsed time is saved in checkpoints, so a resumed run continues the clock.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Timer

__all__ = ["TrainingClock"]


class TrainingClock(Timer):
    """Lightning's ``Timer`` (same arguments: ``duration``, ``interval``, ``verbose``) that also logs
    ``time/train_minutes`` at the end of each validation."""

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        minutes = self.time_elapsed("train") / 60.0
        pl_module.log("time/train_minutes", minutes, on_step=False, on_epoch=True, rank_zero_only=True)
