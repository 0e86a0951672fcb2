"""Finding the stage-1 checkpoint a run starts from, by what checkpoints record rather than by their age.

A stage-2 run (CUGAN) starts from a stage-1 CUnet, a UGAN baseline from the Unet baseline of its level. The
candidates are the ``last.ckpt`` files under a folder (plain runs and multirun jobs alike); one fits when its
kind, generator architecture, codec, level and task are the ones asked for. Exactly one must fit: none, or
several that fit equally, is an error that says what to run or lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .metadata import CheckpointError, baseline_level, generator_differences
from .read import read_generator_file

__all__ = ["StartNotFoundError", "find_start", "latest_checkpoint", "task_of"]


class StartNotFoundError(CheckpointError):
    """No checkpoint, or more than one, fits as the start of a run; the message says what to do."""


def task_of(metadata: Mapping[str, Any], path: Path, log_dir: Path | None) -> str | None:
    """The task that wrote a checkpoint: its training config's ``task_name``, else the first folder of its path
    under ``log_dir`` (``logs/<task>/runs/...`` or ``logs/<task>/multiruns/...``)."""
    task = (metadata.get("train_config") or {}).get("task_name")
    if task:
        return str(task)
    if log_dir is not None:
        try:
            return path.resolve().relative_to(Path(log_dir).resolve()).parts[0]
        except (ValueError, IndexError):
            return None
    return None


def find_start(
    search: str | Path,
    wanted: Mapping[str, Any],
    *,
    kind: str,
    task: str | None = None,
    log_dir: str | Path | None = None,
    hint: str = "",
) -> Path:
    """The one ``last.ckpt`` under ``search`` whose metadata fits ``wanted`` (generator class and config, codec,
    ``level`` or None) with ``kind`` and, when given, ``task``. ``hint`` (the command that trains it) ends the
    error when nothing fits."""
    root = Path(search)
    wanted_level = wanted.get("level")
    fits: list[Path] = []
    for path in sorted(root.rglob("last.ckpt")) if root.is_dir() else []:
        try:
            file = read_generator_file(path, kinds=None, tensors=False)
        except CheckpointError:
            continue  # unreadable or foreign: not a candidate
        if file.kind != kind or generator_differences(file.metadata, wanted):
            continue
        if baseline_level(file.metadata) != wanted_level:
            continue
        if task is not None and task_of(file.metadata, path, Path(log_dir) if log_dir else None) != task:
            continue
        fits.append(path)
    what = f"a {kind} checkpoint" + (f" of task '{task}'" if task else "")
    what += f" at level {wanted_level}" if wanted_level else ""
    if not fits:
        raise StartNotFoundError(
            f"this stage starts from {what} with this run's generator and codec, and none was found under "
            f"{root.resolve()}; train it first{f' ({hint})' if hint else ''} or pass model.init_from=/path/to/last.ckpt"
        )
    if len(fits) > 1:
        listing = ", ".join(str(p) for p in fits)
        raise StartNotFoundError(
            f"{len(fits)} checkpoints fit equally as the start ({what}): {listing}; pass model.init_from=PATH, "
            "or model.init_search=FOLDER to look in one run or multirun only"
        )
    return fits[0]


def latest_checkpoint(log_dir: str | Path, task: str) -> Path:
    """The newest ``last.ckpt`` of ``task`` (``ckpt_path=last``): under ``<log_dir>/<task>/``, plain runs and
    multirun jobs alike, by modification time. None there is an error that says so."""
    root = Path(log_dir) / task
    found = [p for p in root.rglob("last.ckpt") if p.is_file()] if root.is_dir() else []
    if not found:
        raise StartNotFoundError(
            f"ckpt_path=last: no last.ckpt of task '{task}' under {root.resolve()}; start without ckpt_path, or "
            "give the checkpoint's path"
        )
    return max(found, key=lambda p: p.stat().st_mtime)
