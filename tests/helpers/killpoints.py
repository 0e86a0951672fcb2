"""Callbacks for subprocess tests, given as `+callbacks.NAME._target_=killpoints.CLASS` with tests/helpers on
PYTHONPATH: KillAt kills its own training process with SIGKILL at a chosen moment (the kill tests of
tests/test_robustness.py); NormTypes records the discriminator's normalisation layers (tests/test_gpu.py);
HoldForRequeueSignal keeps a SLURM job running until its time-limit signal comes (tests/test_slurm.py)."""

from __future__ import annotations

import os
import signal
import time

from lightning.pytorch.callbacks import Callback


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(Callback):
    """``moment``: ``iteration`` (after training batch ``iteration``), ``validation`` (inside the first validation
    after it) or ``checkpoint`` (while writing the first last.ckpt after it: the temporary file is complete, the
    rename not done yet)."""

    def __init__(self, moment: str, iteration: int) -> None:
        self.moment, self.iteration = moment, iteration

    def _reached(self, trainer) -> bool:  # noqa: ANN001
        return trainer.fit_loop.epoch_loop.total_batch_idx >= self.iteration

    def setup(self, trainer, pl_module, stage) -> None:  # noqa: ANN001
        if self.moment != "checkpoint":
            return
        import cugan_lightning.atomic as atomic

        real = atomic._fsync

        def fsync_or_die(path) -> None:  # noqa: ANN001
            if path.name.startswith(".last.ckpt") and self._reached(trainer):
                die()
            real(path)

        atomic._fsync = fsync_or_die

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if self.moment == "iteration" and trainer.fit_loop.epoch_loop.total_batch_idx == self.iteration:
            die()

    def on_validation_batch_end(self, trainer, *args) -> None:  # noqa: ANN001
        if self.moment == "validation" and not trainer.sanity_checking and self._reached(trainer):
            die()


class TrainStartRecord(Callback):
    """Writes :meth:`record` of the module to ``path`` at the start of training (rank 0), for tests/test_gpu.py."""

    def __init__(self, path: str) -> None:
        self.path = path

    def record(self, pl_module) -> str:  # noqa: ANN001
        raise NotImplementedError

    def on_train_start(self, trainer, pl_module) -> None:  # noqa: ANN001
        if trainer.global_rank == 0:
            with open(self.path, "w") as handle:
                handle.write(self.record(pl_module))


class NormTypes(TrainStartRecord):
    """The class names of the discriminator's normalisation layers (the SyncBatchNorm test)."""

    def record(self, pl_module) -> str:  # noqa: ANN001
        return "\n".join(
            sorted({type(m).__name__ for m in pl_module.net_d.modules() if "Norm" in type(m).__name__})
        )


class DeviceRecord(TrainStartRecord):
    """The device the generator trains on: a run the config sends to the GPU must not train on the CPU."""

    def record(self, pl_module) -> str:  # noqa: ANN001
        return next(pl_module.net_g.parameters()).device.type


class HoldForRequeueSignal(Callback):
    """In a SLURM job's first run, waits after training batch ``iteration`` until the time-limit signal has reached
    the requeue callback (at most ``timeout`` seconds), so that the signal lands mid-run however long the start
    took (tests/test_slurm.py)."""

    def __init__(self, iteration: int, timeout: float = 120.0) -> None:
        self.iteration, self.timeout = iteration, timeout

    def on_train_batch_end(self, trainer, *args) -> None:  # noqa: ANN001
        first_run = os.environ.get("SLURM_RESTART_COUNT", "0") == "0"
        if not first_run or trainer.fit_loop.epoch_loop.total_batch_idx != self.iteration:
            return
        requeue = next(c for c in trainer.callbacks if type(c).__name__ == "RequeueOnTimeLimit")
        deadline = time.monotonic() + self.timeout
        while not requeue.requested and time.monotonic() < deadline:
            time.sleep(0.2)
