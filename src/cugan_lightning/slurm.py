"""Training as a SLURM job (``hydra/launcher=slurm``, docs/slurm.md): what happens at the time limit, how a
requeued job finds where it stopped, and the one-line reports of a sweep whose jobs could not run.

At the time limit. SLURM sends the job's tasks a signal some time before it (submitit asks for SIGUSR2,
``hydra.launcher.signal_delay_s`` seconds ahead). :class:`RequeueOnTimeLimit` only notes it; at the end of the
current training batch every rank agrees and the state is saved to ``checkpoints/requeue.ckpt``; before the next
batch rank 0 writes out its loggers (the W&B run is ended), requeues the job (``scontrol requeue``) and every
rank exits. The job starts again with the same overrides and the same run folder, and :func:`requeue_resume_path`
hands the training app that checkpoint (or ``last.ckpt`` when it is newer), so the run goes on where it stopped:
the same W&B run, the same batches. Saving in the signal handler itself, as Lightning's own auto-requeue does,
would save wherever the handler interrupts, and under DDP would start a collective that the other ranks are not
in.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import types
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from .apps.common import one_line

__all__ = [
    "REQUEUE_CHECKPOINT",
    "RequeueOnTimeLimit",
    "TimeLimitReached",
    "in_submitit_job",
    "job_failure_line",
    "requeue_resume_path",
    "submission_failure_line",
]

log = logging.getLogger(__name__)

REQUEUE_CHECKPOINT = "requeue.ckpt"
"""The file, in the run's ``checkpoints/``, that a job stopped at its time limit resumes from."""


def in_slurm_job() -> bool:
    """True inside a SLURM job's task (``srun`` or a batch step), not on a login node."""
    return "SLURM_JOB_ID" in os.environ and "SLURM_PROCID" in os.environ


def in_submitit_job() -> bool:
    """True inside a job that submitit started (``hydra/launcher=slurm`` or ``local``)."""
    return bool(os.environ.get("SUBMITIT_EXECUTOR"))


def restart_count() -> int:
    """How many times SLURM has requeued this job (0 for its first run, and outside SLURM)."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0)


def slurm_job_id() -> str:
    """This job's id as ``scontrol`` takes it (``<array job>_<task>`` for a job of an array)."""
    array_job, array_task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array_job}_{array_task}" if array_job and array_task else os.environ["SLURM_JOB_ID"]


def requeue_resume_path(output_dir: str | Path) -> Path | None:
    """The checkpoint a requeued SLURM job resumes from: the newer of ``checkpoints/requeue.ckpt`` and
    ``checkpoints/last.ckpt`` in its run folder. None for a job's first run and outside SLURM."""
    if not in_slurm_job() or restart_count() == 0:
        return None
    folder = Path(output_dir) / "checkpoints"
    found = [p for p in (folder / REQUEUE_CHECKPOINT, folder / "last.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def launcher_max_requeues() -> int:
    """``hydra.launcher.max_num_timeout`` of the running Hydra job (0 when its launcher has none)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return 0
    return int(HydraConfig.get().launcher.get("max_num_timeout") or 0)


class TimeLimitReached(RuntimeError):
    """The time limit came after the job had been requeued as often as allowed."""


class Requeued(SystemExit):
    """Ends every rank of a job that has just been requeued. A ``SystemExit``: neither Hydra nor submitit record
    it as the job's result, so the launcher keeps waiting for the requeued run."""


class RequeueOnTimeLimit(Callback):
    """Saves, requeues and exits at the first batch end after SLURM's time-limit signal (module docstring).

    ``signal_name``: the signal SLURM sends (None: submitit's, SIGUSR2 unless ``SUBMITIT_PREEMPT_SIGNAL`` says
    otherwise). ``max_requeues``: how often a job may be requeued (None: ``hydra.launcher.max_num_timeout``); past
    it the state is still saved, and the job fails with the ``ckpt_path=...`` that resumes it. Outside a SLURM
    job it does nothing.
    """

    def __init__(self, signal_name: str | None = None, max_requeues: int | None = None) -> None:
        name = (signal_name or os.environ.get("SUBMITIT_PREEMPT_SIGNAL") or "USR2").upper()
        self.signum = signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
        self.max_requeues = max_requeues
        self.requested = False
        self._saved: Path | None = None  # the checkpoint written after the signal, before exiting
        self._previous: Any = None
        self._active = False

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        self.requested = True  # acted on at the next batch end, where every rank can agree and save

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not in_slurm_job() or self._active:
            return
        if self.max_requeues is None:
            self.max_requeues = launcher_max_requeues()
        self._previous = signal.signal(self.signum, self._on_signal)
        self._active = True

    def _restore(self) -> None:
        if self._active:
            signal.signal(self.signum, self._previous)
            self._active = False

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self._saved is not None or not self._active:
            return
        if trainer.strategy.reduce_boolean_decision(self.requested, all=False):
            self._saved = Path(trainer.default_root_dir) / "checkpoints" / REQUEUE_CHECKPOINT
            trainer.save_checkpoint(self._saved)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        """Requeue and exit before the next batch: Lightning logs a batch's metrics after its batch-end hooks, and
        an epoch's last batch is followed by its validation (whose last.ckpt is then the newer checkpoint)."""
        if self._saved is None:
            return
        restarts, allowed = restart_count(), int(self.max_requeues or 0)
        if restarts >= allowed:
            raise TimeLimitReached(
                f"the time limit came after {restarts} requeue(s) (hydra.launcher.max_num_timeout={allowed}); "
                f"the run's state is saved: resume it with ckpt_path={self._saved}"
            )
        if trainer.is_global_zero:
            flush_loggers(trainer)
            job = slurm_job_id()
            subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True, text=True)
            log.warning(
                "time limit: saved %s after step %d and requeued job %s (requeue %d of %d)",
                self._saved, trainer.global_step, job, restarts + 1, allowed,
            )  # fmt: skip
        raise Requeued(0)


def flush_loggers(trainer: L.Trainer) -> None:
    """Writes out what every logger holds before ``scontrol requeue`` kills the job's processes: a W&B run is
    ended (its service process writes records after they are logged, so a killed job loses its last steps; the
    requeued run continues the same run id), other loggers are saved."""
    for logger in trainer.loggers:
        logger.save()
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


# ----------------------------------------------------------------------------------- one-line failure reports


def job_log(submitit_folder: str, job_id: str) -> Path:
    """The stderr log of task 0 of a submitit job (``<folder>/<job id>_0_log.err``)."""
    return Path(submitit_folder.replace("%j", job_id)) / f"{job_id}_0_log.err"


def job_failure_line(job_id: str, name: str, log_file: Path, err: BaseException | str) -> str:
    """``error: ...`` for a job that failed on its node: the job, its error and its log file."""
    text = err if isinstance(err, str) else one_line(err)
    return f"error: SLURM job {job_id} ({name}) failed: {text} (log: {log_file})"


def submission_failure_line(sbatch_stderr: str, script: Path | None, log_pattern: str) -> str:
    """``error: ...`` for a job that ``sbatch`` refused: its reason, the batch script and where the log would
    have been."""
    reasons = [re.sub(r"^sbatch: error: ", "", line).strip() for line in sbatch_stderr.strip().splitlines()]
    reason = reasons[-1] if reasons else "no reason given"
    where = f"batch script: {script}; " if script else ""
    return f"error: sbatch refused the job: {reason} ({where}no job ran, so no log at {log_pattern})"
