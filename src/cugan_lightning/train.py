"""The training app behind ``python -m cugan_lightning``: composes the config, builds everything with Hydra,
trains, tests, and writes ``metrics.json`` into the run folder.

Configs speak in iterations (batches). Lightning's ``max_steps`` counts optimizer steps, which is two per batch
in the GAN stage, so the app derives the trainer limit from ``iterations`` and the module's
``optimizer_steps_per_iteration``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from .checkpoint import CheckpointError
from .data.io import ImageReadError

log = logging.getLogger("cugan_lightning")

# The training batches are a function of the batch counter that the data module saves, so a checkpoint taken
# mid-epoch resumes exactly; Lightning cannot see that and would warn on every such resume.
warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

# Errors a user can fix from the command line: reported in one line, without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    CheckpointError,
    ImageReadError,
    FloatingPointError,
    ValueError,
)


class ConfigError(ValueError):
    """A configuration value is missing or inconsistent; the message names the key."""


def _unwrap(err: BaseException) -> BaseException:
    """The user's error inside Hydra's instantiation wrapper, when there is one."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return err


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a callbacks / logger group that has a ``_target_``."""
    if not group:
        return []
    return [hydra.utils.instantiate(node) for node in group.values() if node and "_target_" in node]


def optimizer_steps_per_iteration(model: L.LightningModule) -> int:
    return int(getattr(model, "optimizer_steps_per_iteration", 1))


def derive_max_steps(cfg: DictConfig, model: L.LightningModule) -> int:
    """Lightning's ``max_steps`` for ``cfg.iterations`` batches of this stage.

    A ``trainer.max_steps`` given by the user is read as iterations too, and said so in the log, so that a
    two-optimizer stage never silently runs half the batches asked for.
    """
    per_iteration = optimizer_steps_per_iteration(model)
    iterations = int(cfg.iterations)
    user_max_steps = cfg.trainer.get("max_steps", -1)
    if user_max_steps not in (None, -1):
        iterations = int(user_max_steps)
        log.warning(
            "trainer.max_steps=%d is read as %d iterations (batches); this stage makes %d optimizer steps per "
            "iteration, so Lightning's max_steps is %d. Prefer iterations=%d.",
            iterations,
            iterations,
            per_iteration,
            iterations * per_iteration,
            iterations,
        )
    if iterations <= 0:
        raise ConfigError(f"iterations must be positive, got {iterations}")
    return iterations * per_iteration


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run configuration as plain Python data (for loggers and checkpoints)."""
    keys = [key for key in cfg if key != "hydra"]
    return {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key] for key in keys}


@rank_zero_only
def write_metrics(output_dir: Path, trainer: L.Trainer, extra: dict[str, Any]) -> Path:
    metrics = {
        k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1
    }
    metrics = {k: v for k, v in sorted(metrics.items()) if math.isfinite(v)}
    path = output_dir / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"metrics": metrics, **extra}, indent=2))
    tmp.replace(path)
    return path


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Instantiate the data module, the model and the trainer of a composed config (seeded first)."""
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.get("float32_matmul_precision", "highest"))
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    model.train_config = plain_config(cfg)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    with open_dict(cfg):
        max_steps = derive_max_steps(cfg, model)
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, max_steps=max_steps
    )
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (and optionally test) as configured; returns the final metrics and checkpoint paths."""
    datamodule, model, trainer = build(cfg)
    output_dir = Path(cfg.paths.output_dir)
    for logger in trainer.loggers:
        logger.log_hyperparams(plain_config(cfg))
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    checkpoint = trainer.checkpoint_callback
    best = getattr(checkpoint, "best_model_path", "") or None
    last = getattr(checkpoint, "last_model_path", "") or None
    if cfg.get("test", False):
        trainer.test(model, datamodule=datamodule, ckpt_path=best)
    result = {"best_checkpoint": best, "last_checkpoint": last, "output_dir": str(output_dir)}
    write_metrics(output_dir, trainer, result)
    return {"metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}, **result}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        result = train(cfg)
    except Exception as raw:  # noqa: BLE001 - user errors become one line, everything else keeps its traceback
        err = _unwrap(raw)
        if isinstance(err, USER_ERRORS) and not os.environ.get("CUGAN_TRACEBACK"):
            print(f"error: {err}", file=sys.stderr)
            print("(set CUGAN_TRACEBACK=1 for the full traceback)", file=sys.stderr)
            sys.exit(2)
        raise
    log.info("run folder: %s", result["output_dir"])
    if result.get("best_checkpoint"):
        log.info("best checkpoint: %s", result["best_checkpoint"])
