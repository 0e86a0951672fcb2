"""Every use of Lightning's private or loop-internal state, in one place.

Checked against Lightning 2.6 (2.6.6). ``tests/test_lightning_private.py`` fails, naming this module, when an
attribute used here disappears or when Lightning's behaviour that a workaround corrects changes, so that an
upgrade that fixes (or moves) it is noticed rather than silently mis-counted.

- :func:`attached_trainer`: the module's trainer, or None outside a fit (``LightningModule.trainer`` raises
  there);
- :func:`batches_trained`: the index of the batch being trained, across epochs and resumes (``global_step``
  counts optimizer steps, two per batch in the GAN stage);
- :func:`align_log_step`: the logged step after a resume from an end-of-epoch checkpoint (the workaround);
- :func:`set_max_steps`: the fit loop's step limit, for ``fast_dev_run``, which Lightning sets to batches.
"""

from __future__ import annotations

from typing import Any

import lightning as L

__all__ = ["CHECKED_VERSIONS", "align_log_step", "attached_trainer", "batches_trained", "set_max_steps"]

CHECKED_VERSIONS = ("2.6",)
"""Lightning minor versions this module was checked against."""


def attached_trainer(module: L.LightningModule) -> L.Trainer | None:
    """The trainer ``module`` is attached to, or None."""
    return module._trainer


def batches_trained(trainer: L.Trainer | None) -> int:
    """The index of the batch being trained, across epochs and resumes (0 outside training)."""
    return max(trainer.fit_loop.epoch_loop.total_batch_idx, 0) if trainer is not None else 0


def align_log_step(trainer: L.Trainer | None) -> None:
    """Keep the logged step equal to the number of batches trained after a resume.

    Resuming from a checkpoint written at the end of an epoch (last.ckpt's usual moment), Lightning finishes the
    already finished epoch once more and counts one batch too many for the loggers, so every later point of the
    W&B/CSV curves would sit one step to the right of an uninterrupted run's. Called at the start of each
    training epoch; a no-op unless the counter is ahead of the batches actually trained.
    """
    if trainer is None or trainer.accumulate_grad_batches != 1:
        return
    loop = trainer.fit_loop.epoch_loop
    trained = loop.batch_progress.total.completed
    if loop._batches_that_stepped > trained:  # (a checkpoint rewritten during that replay carries one more)
        loop._batches_that_stepped = trained


def set_max_steps(trainer: L.Trainer, steps: int) -> None:
    """Set the fit loop's limit on optimizer steps after the trainer was built."""
    trainer.fit_loop.epoch_loop.max_steps = int(steps)


def _private_attributes(trainer: Any) -> dict[str, bool]:
    """Whether each attribute this module reads or writes exists on a trainer (used by the tests)."""
    loop = trainer.fit_loop.epoch_loop
    return {
        "fit_loop.epoch_loop.total_batch_idx": hasattr(loop, "total_batch_idx"),
        "fit_loop.epoch_loop._batches_that_stepped": hasattr(loop, "_batches_that_stepped"),
        "fit_loop.epoch_loop.batch_progress.total.completed": hasattr(loop.batch_progress.total, "completed"),
        "fit_loop.epoch_loop.max_steps": hasattr(loop, "max_steps"),
    }
