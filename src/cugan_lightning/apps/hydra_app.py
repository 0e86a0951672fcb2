"""What the Hydra apps (training, evaluation) share: the packaged configs, instantiation that lets the
target's own error through, the plain run config, and one ``error: ...`` line for a user error."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from .common import user_error_line

T = TypeVar("T")

CONFIG_PATH = "pkg://cugan_lightning.conf"
"""The configs ship inside the package (the repository's ``conf/``, mapped in by setup.py), so a wheel install
has them too; importing that package registers their resolvers."""

# Errors a user can fix from the command line: reported in one line, without a traceback.
# (A KeyError, which the command-line tools also report in one line, is a bug here: it keeps its traceback.)
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # bad config values, unreadable images and checkpoints
    OSError,  # missing folders, full or read-only disks
    FloatingPointError,  # a loss became NaN: the message says what to change
)


class ConfigError(ValueError):
    """A configuration value is missing or inconsistent; the message names the key."""


def register_slurm_launcher() -> None:
    """Make ``hydra/launcher=slurm`` known to Hydra however the package is installed: Hydra finds launchers by
    listing the ``hydra_plugins`` namespace, which misses a package an editable install maps in (docs/slurm.md).
    Without the ``[cluster]`` extra there is no launcher to register."""
    try:
        from hydra_plugins.cugan_slurm_launcher import SlurmLauncher
    except ImportError:
        return
    from hydra.core.plugins import Plugins

    Plugins.instance().register(SlurmLauncher)


register_slurm_launcher()  # both Hydra apps import this module before Hydra reads the command line


def _unwrap(err: BaseException) -> BaseException:
    """The user's error inside Hydra's instantiation wrapper, when there is one."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return err


def instantiate(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets the target's own error through instead of Hydra's wrapper."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = _unwrap(err)
        if cause is err:
            raise
        raise cause from None


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a callbacks / logger group that has a ``_target_``."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node and "_target_" in node]


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run configuration as plain Python data (for loggers and checkpoints)."""
    keys = [key for key in cfg if key != "hydra"]
    return {
        key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
        for key in keys
    }


def run_reporting_user_errors(
    body: Callable[[DictConfig], T], cfg: DictConfig, errors: tuple[type[BaseException], ...] = USER_ERRORS
) -> T:
    """``body(cfg)``; a user error (one of ``errors``) ends the process with one ``error: ...`` line and status 2,
    anything else keeps its traceback. In a job of a submitit launcher the line (or the traceback) goes to the
    job's log and the error is raised on, so that the job records it and the launcher reports it."""
    try:
        return body(cfg)
    except Exception as raw:  # noqa: BLE001 - user errors become one line, everything else keeps its traceback
        line = user_error_line(_unwrap(raw), errors)
        if os.environ.get("SUBMITIT_EXECUTOR"):
            print(line or traceback.format_exc(), file=sys.stderr, flush=True)
            raise
        if line is None:
            raise
        print(line, file=sys.stderr)
        sys.exit(2)


def sweep_group(sweep_dir: str | Path) -> str:
    """One name for every job of a sweep: ``<task>-<date>`` for ``logs/<task>/multiruns/<date>``."""
    sweep = Path(sweep_dir)
    return f"{sweep.parent.parent.name}-{sweep.name}" if sweep.parent.name == "multiruns" else sweep.name


def name_multirun_job(cfg: DictConfig) -> None:
    """In a multirun, every job's W&B run shares a group named after the sweep, and is named by its variant
    (``scales=2``) or, without one, by its overrides."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or "wandb" not in (cfg.get("logger") or {}):
        return
    group = sweep_group(hydra_cfg.sweep.dir)
    with open_dict(cfg):
        cfg.logger.wandb.group = group
        cfg.logger.wandb.name = (
            f"{group}/{cfg.get('variant') or hydra_cfg.job.override_dirname or hydra_cfg.job.num}"
        )
