"""``hydra/launcher=slurm``: Hydra's submitit launcher, with every failure to run a sweep's job reported as one
``error: ...`` line that names the job's log file (Hydra accepts launchers from this namespace only).

Three failures are told apart: no ``sbatch`` on the PATH (nothing submitted), a job that ``sbatch`` refuses (an
unknown partition, a request no node can meet: the reason and the batch script), and a job that fails on its node
(its error and its log). Each ends the launching process with status 2, like the apps' other user errors.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
        SlurmLauncher as _SubmititSlurmLauncher,
    )
except ImportError:  # the [cluster] extra is not installed: no SLURM launcher
    _SubmititSlurmLauncher = None

if _SubmititSlurmLauncher is not None:
    from hydra.core.utils import JobReturn, JobStatus

    class SlurmLauncher(_SubmititSlurmLauncher):
        """The submitit SLURM launcher whose failures are one line each (module docstring)."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            from submitit.core.utils import FailedJobError, JobPaths, UncompletedJobError

            from cugan_lightning.slurm import job_failure_line, job_log, submission_failure_line

            folder = str(self.params["submitit_folder"])
            if shutil.which("sbatch") is None:
                self._fail(
                    "error: sbatch is not on the PATH, so no job was submitted and no job log written (hydra/launcher=slurm "
                    "runs where the SLURM commands are; hydra/launcher=local runs the sweep on this machine)"
                )
            captured = (
                io.StringIO()
            )  # submitit prints sbatch's refusal itself: it is summed up in one line instead
            try:
                with contextlib.redirect_stderr(captured):
                    returns = super().launch(job_overrides, initial_job_idx)
            except FailedJobError as err:
                if isinstance(err.__cause__, subprocess.CalledProcessError):  # sbatch said no
                    scripts = sorted(
                        JobPaths.get_first_id_independent_folder(folder).glob(".submission_file_*.sh"),
                        key=lambda p: p.stat().st_mtime_ns,
                    )
                    self._fail(submission_failure_line(str(err), scripts[-1] if scripts else None, folder))
                self._fail_job(err, folder)
            except UncompletedJobError as err:  # the job ended without a result: killed, or out of time
                self._fail_job(err, folder)
            sys.stderr.write(captured.getvalue())
            lines = []
            for ret in returns:
                if ret.status == JobStatus.FAILED:
                    job_id = str(ret.hydra_cfg.hydra.job.id)
                    name = (
                        ret.cfg.get("variant")
                        or " ".join(ret.overrides)
                        or f"job {ret.hydra_cfg.hydra.job.num}"
                    )
                    try:
                        ret.return_value  # noqa: B018 - raises the job's error
                    except Exception as err:  # noqa: BLE001 - reported in one line, with its log
                        lines.append(job_failure_line(job_id, name, job_log(folder, job_id), err))
            if lines:
                self._fail("\n".join(lines))
            return returns

        def _fail_job(self, err: BaseException, folder: str) -> None:
            """One line for a job that ended without a result; its id and log are read off submitit's message."""
            from cugan_lightning.slurm import job_failure_line, job_log

            message = str(err)
            log_file = re.search(r"(\S+_log\.err)", message)
            job_id = re.search(r"Job (\S+) \(task", message)
            found = (
                job_id.group(1)
                if job_id
                else Path(log_file.group(1)).name.split("_0_log")[0]
                if log_file
                else "?"
            )
            reasons = [line.strip() for line in message.splitlines() if line.strip().startswith("error: ")]
            reason = reasons[-1].removeprefix("error: ") if reasons else message.strip().splitlines()[0]
            path = Path(log_file.group(1)) if log_file else job_log(folder, found)
            self._fail(job_failure_line(found, "a job of the sweep", path, reason))

        @staticmethod
        def _fail(line: str) -> Any:
            print(line, file=sys.stderr)
            sys.exit(2)
