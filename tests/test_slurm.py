"""hydra/launcher=slurm on a real SLURM controller (the one-node cluster of `.ci/slurm.sh start`, which CI starts):
a two-job sweep of two-process gloo DDP jobs, a job that reaches its time limit and resumes itself, and the
one-line reports of a sweep whose jobs cannot run. Without a cluster these tests skip and say why; the missing
`sbatch` needs none."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs pip install -e '.[cluster]'")

HELPERS = Path(__file__).resolve().parent / "helpers"
SLURM_DIR = Path(
    os.environ.get("CUGAN_SLURM_DIR", "/tmp/cugan-slurm")
)  # where .ci/slurm.sh writes slurm.conf

# Each job: two tasks of one core (gloo DDP), the tiny generator, four iterations in two epochs, CSV and W&B.
JOB = [
    *TINY, "data=embedded", "iterations=4", "data.batches_per_epoch=2", "logger=[csv,wandb]",
    "trainer.log_every_n_steps=1", "hydra/launcher=slurm_cpu", "trainer=slurm_cpu",
]  # fmt: skip
SWEEP = ["ablation=seeds", "seed=0,1", *JOB]


def job_env() -> dict[str, str]:
    """The environment of the launching process, which sbatch hands on to the jobs."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    env["PYTHONPATH"] = os.pathsep.join([str(HELPERS), env.get("PYTHONPATH", "")])
    env.pop("WANDB_SERVICE", None)  # each job starts its own W&B service
    if "SLURM_CONF" not in env and (SLURM_DIR / "slurm.conf").is_file():
        env["SLURM_CONF"] = str(SLURM_DIR / "slurm.conf")
    return env


def cluster_missing() -> str | None:
    """Why no SLURM cluster can take jobs here (None when one can)."""
    if shutil.which("sinfo") is None:
        return "no SLURM commands on the PATH (.ci/slurm.sh start sets up a one-node cluster)"
    proc = subprocess.run(
        ["sinfo", "-h", "-o", "%t"], env=job_env(), capture_output=True, text=True, timeout=60
    )
    if proc.returncode:
        return (
            f"sinfo failed: {' '.join(proc.stderr.split())} (.ci/slurm.sh start sets up a one-node cluster)"
        )
    if not {"idle", "mix"} & set(proc.stdout.split()):
        return f"no SLURM node is idle (sinfo: {' '.join(proc.stdout.split()) or 'no nodes'})"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    reason = cluster_missing()
    if reason:
        pytest.skip(reason)


def launch(overrides: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m cugan_lightning OVERRIDES`` in ``cwd``. Without accounting the launcher cannot see a job that
    died without a result, so the timeout bounds the wait."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "cugan_lightning", *overrides], cwd=cwd, env=env or job_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def assert_one_error_line(stderr: str, start: str) -> str:
    """A launcher failure: exactly one ``error:`` line, the last one, no traceback; returns it."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:], stderr[-3000:]
    assert "Traceback" not in stderr and lines[-1].startswith(start), lines[-1]
    return lines[-1]


def wandb_history(run_dir: Path) -> tuple[str, dict[int, float]]:
    """(run id, trainer step -> train/l_g_pix) read off an offline W&B run's ``.wandb`` file.

    The file is a record log: a 7-byte header, then 32 KiB blocks of chunks (4-byte checksum, 2-byte length, 1-byte
    kind: 1 whole record, 2/3/4 its first/middle/last part), each record a protobuf ``Record``."""
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("run-*.wandb")
    data, pos, block, pending, steps = path.read_bytes(), 7, 32768, b"", {}
    run_id = ""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind not in (1, 4):
            continue
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        pending = b""
        if record.HasField("run"):
            run_id = record.run.run_id
        if record.HasField("history"):
            items = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            if "train/l_g_pix" in items:
                steps[int(items["trainer/global_step"])] = items["train/l_g_pix"]
    return run_id, steps


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True, map_location="cpu")["state_dict"]


@pytest.fixture(scope="module")
def sweep(cluster, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The two-job sweep (seeds 0 and 1), submitted once for the tests below; prints its submit-to-result time."""
    work = tmp_path_factory.mktemp("slurm_sweep")
    start = time.monotonic()
    proc = launch([*SWEEP, f"hydra.sweep.dir={work}/sweep"], work)
    print(f"two-job sweep: submit to result {time.monotonic() - start:.1f} s")
    return work / "sweep", proc


@pytest.mark.slow
def test_a_two_job_sweep_runs_as_two_process_ddp_jobs_and_its_evaluation_scores_both(sweep, tmp_path):
    folder, proc = sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    for seed in (0, 1):
        job = folder / f"seed={seed}"
        assert weights(job / "checkpoints" / "last.ckpt")  # a real checkpoint, readable
        metrics = json.loads((job / "metrics.json").read_text())["metrics"]
        assert math.isfinite(metrics["train/l_g_pix"]) and metrics["val/psnr"] > 10
        (run,) = (job / "wandb").glob("offline-run-*")
        run_id, steps = wandb_history(run)
        assert run.name.endswith(run_id) and sorted(steps) == [0, 1, 2, 3]
        (log,) = (folder / ".submitit").glob(
            f"*_{seed}/*_{seed}_0_log.err"
        )  # task 0 of job `seed` of the array
        text = log.read_text()
        assert "distributed_backend=gloo" in text and "MEMBER: 1/2" in text  # Lightning saw SLURM's two tasks
    seeds = [weights(folder / f"seed={s}" / "checkpoints" / "last.ckpt") for s in (0, 1)]
    assert any(not torch.equal(seeds[0][k], seeds[1][k]) for k in seeds[0])  # two jobs, two different runs
    (line,) = [line for line in proc.stdout.splitlines() if "cugan-evaluate runs=" in line]
    command = line.split("cugan-evaluate ", 1)[1].split()
    evaluation = subprocess.run(
        [sys.executable, "-m", "cugan_lightning.apps.evaluate", *command, "metrics=[psnr]", "settings=[b0_n30]",
         "figures=false", f"hydra.run.dir={tmp_path}/evaluate"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    rows = (tmp_path / "evaluate" / "summary.csv").read_text().splitlines()
    assert {row.split(",")[1] for row in rows[1:]} >= {"seed=0", "seed=1"}


@pytest.mark.slow
def test_a_job_at_its_time_limit_saves_requeues_itself_and_resumes_bit_for_bit(sweep, tmp_path):
    """The time limit is two minutes and SLURM warns 20 s before it, or up to a minute earlier (sbatch's
    --signal): 40 to 100 s after the start. The job's first run holds after its second batch until the warning
    comes, so that it lands mid-run whatever the start took. (A warning before Python handles the signal would
    end the job.)"""
    reference, _ = sweep
    overrides = [
        "ablation=seeds", "seed=0", *JOB, f"hydra.sweep.dir={tmp_path}/sweep", "hydra.launcher.timeout_min=2",
        "hydra.launcher.signal_delay_s=20", "+callbacks.hold._target_=killpoints.HoldForRequeueSignal",
        "+callbacks.hold.iteration=1", "+callbacks.hold.timeout=150",
    ]  # fmt: skip
    start = time.monotonic()
    proc = launch(overrides, tmp_path)
    print(f"job with one requeue: submit to result {time.monotonic() - start:.1f} s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = tmp_path / "sweep" / "seed=0"
    saved = torch.load(job / "checkpoints" / "requeue.ckpt", weights_only=True, map_location="cpu")
    assert saved["global_step"] == 3  # the signal came during the hold: saved after the next batch
    log = (job / "train.log").read_text()  # the app's log, both runs of the job
    assert re.search(
        r"time limit: saved \S+requeue.ckpt after step 3 and requeued job \S+ \(requeue 1 of 3\)", log
    )
    assert f"resuming from {job / 'checkpoints' / 'requeue.ckpt'}" in log
    first, second = sorted((job / "wandb").glob("offline-run-*"))
    (first_id, before), (second_id, after) = wandb_history(first), wandb_history(second)
    assert first_id == second_id  # one W&B run, continued
    assert sorted(before) == [0, 1, 2] and sorted(after) == [3]  # every step logged once, in order
    _, expected = wandb_history(next((reference / "seed=0" / "wandb").glob("offline-run-*")))
    assert {**before, **after} == expected  # the same losses at the same steps as the uninterrupted job
    final, uninterrupted = (
        weights(job / "checkpoints" / "last.ckpt"),
        weights(reference / "seed=0" / "checkpoints" / "last.ckpt"),
    )
    assert final.keys() == uninterrupted.keys() and all(
        torch.equal(final[k], uninterrupted[k]) for k in final
    )


@pytest.mark.slow
def test_an_unknown_partition_is_one_line_naming_the_batch_script(cluster, tmp_path):
    proc = launch([*SWEEP, "hydra.launcher.partition=nowhere", f"hydra.sweep.dir={tmp_path}/sweep"], tmp_path)
    assert proc.returncode == 2
    line = assert_one_error_line(proc.stderr, "error: sbatch refused the job: ")
    assert "invalid partition" in line.lower()
    script = Path(re.search(r"batch script: (\S+);", line).group(1))
    assert script.is_file() and "--partition=nowhere" in script.read_text()


@pytest.mark.slow
def test_a_job_that_fails_on_its_node_is_one_line_naming_its_log(cluster, tmp_path):
    missing = tmp_path / "no_such_folder"
    overrides = [
        "ablation=seeds",
        "seed=0",
        *JOB,
        f"data.train_dir={missing}",
        f"hydra.sweep.dir={tmp_path}/sweep",
    ]
    proc = launch(overrides, tmp_path)
    assert proc.returncode == 2
    line = assert_one_error_line(proc.stderr, "error: SLURM job ")
    assert "(seed=0) failed:" in line and str(missing) in line
    log = Path(re.search(r"\(log: (\S+)\)$", line).group(1))
    assert log.is_file() and str(missing) in log.read_text()  # the log holds the job's own error line


def test_without_sbatch_the_launcher_says_so_in_one_line(tmp_path):
    env = {**job_env(), "PATH": str(tmp_path / "empty")}  # no SLURM commands at all
    proc = launch([*SWEEP, f"hydra.sweep.dir={tmp_path}/sweep"], tmp_path, env)
    assert proc.returncode == 2
    line = assert_one_error_line(proc.stderr, "error: sbatch is not on the PATH")
    assert "no job was submitted" in line
