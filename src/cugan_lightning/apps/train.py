"""The training app behind ``cugan-train`` and ``python -m cugan_lightning``: composes the config, builds everything with Hydra,
trains, tests, and writes ``metrics.json`` into the run folder.

Configs speak in iterations (batches). Lightning's ``max_steps`` counts optimizer steps, which is two per batch
in the GAN stage, so the app derives the trainer limit from ``iterations`` and the module's
``optimizer_steps_per_iteration``.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.experimental.callback import Callback
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from ..atomic import probe_writable, write_bytes_atomic
from ..checkpoint import read_generator_file
from ..checkpoint.find import find_runs, find_start, latest_checkpoint
from ..degradations import LevelCodec
from ..modules.lightning_private import set_max_steps
from ..modules.speed import resolve_precision
from ..slurm import requeue_resume_path
from .hydra_app import (
    CONFIG_PATH,
    USER_ERRORS,
    ConfigError,
    instantiate,
    instantiate_group,
    name_multirun_job,
    plain_config,
    run_reporting_user_errors,
)

__all__ = ["ConfigError", "SweepSummary", "build", "main", "train"]

log = logging.getLogger("cugan_lightning")

# The training batches are a function of the batch counter that the data module saves, so a checkpoint taken
# mid-epoch resumes exactly; Lightning cannot see that and would warn on every such resume.
warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
# Lightning's own use of a deprecated torch API, not actionable here.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
# The frozen VGG of the perceptual loss stays in eval mode on purpose.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")


def optimizer_steps_per_iteration(model: L.LightningModule) -> int:
    return int(getattr(model, "optimizer_steps_per_iteration", 1))


def optimizer_steps(model: L.LightningModule, iterations: int) -> int:
    """Lightning's step count for ``iterations`` batches (the GAN stage may skip G steps on some)."""
    count = getattr(model, "optimizer_steps", None)
    return int(count(iterations)) if callable(count) else iterations * optimizer_steps_per_iteration(model)


def derive_max_steps(cfg: DictConfig, model: L.LightningModule) -> int:
    """Lightning's ``max_steps`` for ``cfg.iterations`` batches of this stage.

    A ``trainer.max_steps`` given by the user is read as iterations too, and said so in the log, so that a
    two-optimizer stage never silently runs half the batches asked for.
    """
    iterations = int(cfg.iterations)
    user_max_steps = cfg.trainer.get("max_steps", -1)
    if user_max_steps not in (None, -1):
        iterations = int(user_max_steps)
        log.warning(
            "trainer.max_steps=%d is read as %d iterations (batches); this stage makes %d optimizer steps in "
            "them, Lightning's max_steps. Prefer iterations=%d.",
            iterations,
            iterations,
            optimizer_steps(model, max(iterations, 0)),
            iterations,
        )
    if iterations <= 0:
        raise ConfigError(f"iterations must be positive, got {iterations}")
    return optimizer_steps(model, iterations)


def scalar_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The trainer's latest finite scalar metrics, sorted by name."""
    values = {
        k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1
    }
    return {k: v for k, v in sorted(values.items()) if math.isfinite(v)}


@rank_zero_only
def write_metrics(output_dir: Path, metrics: dict[str, float], extra: dict[str, Any]) -> Path:
    return write_bytes_atomic(
        output_dir / "metrics.json", json.dumps({"metrics": metrics, **extra}, indent=2).encode()
    )


def stage1_wanted(cfg: DictConfig) -> tuple[dict[str, Any], str]:
    """What this run's start must record (generator class and config, codec, level) and its kind."""
    net_g = OmegaConf.to_container(cfg.model.net_g, resolve=True)
    generator_class = str(net_g.get("_target_", "")).rsplit(".", 1)[-1]
    config = {k: v for k, v in net_g.items() if not str(k).startswith("_")}
    codec = LevelCodec.coerce(OmegaConf.to_container(cfg.model.codec, resolve=True))
    fixed = cfg.degradation.sampler.get("fixed") if "degradation" in cfg else None
    level = dict(zip(codec.names, (float(v) for v in fixed), strict=False)) if fixed is not None else None
    wanted = {
        "generator": {"class": generator_class, "config": config},
        "codec": codec.to_dict(),
        "level": level,
    }
    return wanted, "cunet" if config.get("conditional", True) else "unet"


def resolve_init(cfg: DictConfig) -> str | None:
    """Where G and C_G start (``init.ckpt``): None, a file, or for ``auto`` the one stage-1 checkpoint under
    ``init.search`` (default: the log folder) that records this run's generator, codec, level and ``init.task``;
    none or several is an error that gives the command to run (``init.hint``) or lists them. A resumed run
    (``ckpt_path``) restores every network from its checkpoint instead."""
    init = cfg.get("init") or {}
    start = init.get("ckpt")
    if not start or cfg.get("ckpt_path"):
        return None
    if start != "auto":
        return str(start)
    wanted, kind = stage1_wanted(cfg)
    search = init.get("search") or cfg.paths.log_dir
    task = init.get("task")
    hint = init.get("hint") or (f"cugan-train experiment={task} data.train_dir=..." if task else "")
    found = find_start(search, wanted, kind=kind, task=task, log_dir=cfg.paths.log_dir, hint=hint)
    log.info("init.ckpt=auto: starting from %s", found)
    return str(found)


def report_interrupted_writes(folder: Path) -> None:
    """Name the temporary files a killed checkpoint write left beside the checkpoint being resumed. They are
    not deleted: on a shared file system another job may still be writing one of them."""
    left = sorted(p for p in folder.glob(".*.tmp") if p.is_file())
    if left:
        size = sum(p.stat().st_size for p in left) / 2**20
        log.warning(
            "%d temporary file(s) in %s (%.1f MiB: %s) were left by an interrupted checkpoint write; the checkpoints "
            "beside them are complete. Delete them once no run writes to that folder.",
            len(left), folder, size, ", ".join(p.name for p in left),
        )  # fmt: skip


def resolve_ckpt_path(cfg: DictConfig) -> None:
    """``ckpt_path=last`` (or ``auto``): the newest ``last.ckpt`` of this task. A resumed run also continues the
    W&B run its checkpoint was logged to (its id is in the checkpoint) instead of starting a new one. A SLURM job
    that was requeued resumes from where it stopped (:func:`~cugan_lightning.slurm.requeue_resume_path`)."""
    with open_dict(cfg):
        if not cfg.get("ckpt_path") and (requeued := requeue_resume_path(cfg.paths.output_dir)):
            cfg.ckpt_path = str(requeued)
            log.info("requeued SLURM job: resuming from %s", cfg.ckpt_path)
        if cfg.get("ckpt_path") in ("last", "auto"):
            cfg.ckpt_path = str(latest_checkpoint(cfg.paths.log_dir, cfg.task_name))
            log.info("ckpt_path=last: resuming from %s", cfg.ckpt_path)
        if cfg.get("ckpt_path"):
            report_interrupted_writes(Path(cfg.ckpt_path).parent)
        if not cfg.get("ckpt_path") or "wandb" not in (cfg.get("logger") or {}):
            return
        run_id = read_generator_file(cfg.ckpt_path, "resumed", kinds=None, tensors=False).metadata.get(
            "wandb_run_id"
        )
        if run_id and not cfg.logger.wandb.get("id"):
            cfg.logger.wandb.id = run_id
            cfg.logger.wandb.resume = "allow"


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Instantiate the data module, the model and the trainer of a composed config (seeded first)."""
    probe_writable(cfg.paths.output_dir)  # a full or read-only disk stops here, not at the first checkpoint
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.get("float32_matmul_precision", "highest"))
    if cfg.trainer.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={cfg.trainer.accelerator} but torch sees no CUDA device here; use trainer=cpu "
            "(or check the driver and CUDA_VISIBLE_DEVICES)"
        )
    with open_dict(cfg):
        precision = cfg.trainer.get("precision", "32-true")
        cfg.trainer.precision = resolve_precision(precision, cfg.trainer.get("accelerator"))
        if str(precision) == "auto":
            log.info("trainer.precision=auto: %s", cfg.trainer.precision)
    resolve_ckpt_path(cfg)
    init_from = resolve_init(cfg)
    datamodule = instantiate(cfg.data)
    if cfg.get("train", True):
        # the data are checked (bad files, patch size, grid) before anything else is built
        datamodule.setup("fit")
    model = instantiate(cfg.model, **({"init_from": init_from} if init_from else {}))
    model.train_config = plain_config(cfg)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    with open_dict(cfg):
        max_steps = derive_max_steps(cfg, model)
        if cfg.trainer.get("strategy") == "ddp" and optimizer_steps_per_iteration(model) > 1:
            # The D step leaves G's parameters without gradients (and the G step D's): DDP must expect that.
            log.info("two-optimizer stage under DDP: strategy=ddp_find_unused_parameters_true")
            cfg.trainer.strategy = "ddp_find_unused_parameters_true"
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, max_steps=max_steps)
    if trainer.fast_dev_run:  # Lightning sets max_steps to the number of batches: make that iterations too
        set_max_steps(trainer, optimizer_steps(model, int(trainer.fast_dev_run)))
    return datamodule, model, trainer


def checkpoint_paths(trainer: L.Trainer) -> tuple[str | None, str | None]:
    """(best checkpoint by the monitored metric, latest checkpoint) written by this trainer's callbacks."""
    callbacks = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)]
    best = next((c.best_model_path for c in callbacks if c.monitor and c.best_model_path), None)
    last = next((c.best_model_path for c in callbacks if c.filename == "last" and c.best_model_path), None)
    return best, last


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (and optionally test) as configured; returns the final metrics and checkpoint paths."""
    datamodule, model, trainer = build(cfg)
    output_dir = Path(cfg.paths.output_dir)
    for logger in trainer.loggers:
        logger.log_hyperparams(model.train_config)
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    best, last = checkpoint_paths(trainer)
    if cfg.get("test", False):
        trainer.test(model, datamodule=datamodule, ckpt_path=best)
    result = {"best_checkpoint": best, "last_checkpoint": last, "output_dir": str(output_dir)}
    metrics = scalar_metrics(trainer)
    write_metrics(output_dir, metrics, result)
    return {"metrics": metrics, **result}


class SweepSummary(Callback):
    """When a training multirun ends: each job's checkpoint, and the command that evaluates the sweep."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        try:
            jobs = find_runs(sweep)
        except FileNotFoundError:
            return  # no job got as far as a checkpoint
        lines = [f"sweep finished: {sweep}", *(f"  {name}: {path}" for name, path in jobs.items())]
        lines.append(f"evaluate it (one row per job): cugan-evaluate runs={sweep}")
        if all(name.startswith("level=") for name in jobs):
            lines.append(f"as per-level baselines: cugan-evaluate models.cunet=... baselines={sweep}")
        print("\n".join(lines))


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> None:
    name_multirun_job(cfg)
    # Lightning's MisconfigurationException: e.g. trainer=gpu on a machine without one
    result = run_reporting_user_errors(train, cfg, (*USER_ERRORS, MisconfigurationException))
    log.info("run folder: %s", result["output_dir"])
    if result.get("best_checkpoint"):
        log.info("best checkpoint: %s", result["best_checkpoint"])


if __name__ == "__main__":
    main()
