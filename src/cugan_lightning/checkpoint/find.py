"""Finding checkpoints: every search for a generator file in a folder lives here.

- :func:`find_start`: the stage-1 checkpoint a run starts from, by what checkpoints record rather than by age;
- :func:`latest_checkpoint`: the newest ``last.ckpt`` of a task (``ckpt_path=last``);
- :func:`find_runs` / :func:`find_baselines`: the jobs of a sweep, and per-level baselines, for the evaluation;
- :func:`find_checkpoints`: the newest stage-1 and stage-2 checkpoints under ``logs/``, else the zoo's default
  model (the notebook opens on them when given none).

A stage-2 run (CUGAN) starts from a stage-1 CUnet, a UGAN baseline from the Unet baseline of its level. The
candidates are the ``last.ckpt`` files under a folder (plain runs and multirun jobs alike); one fits when its
kind, generator architecture, codec, level and task are the ones asked for. Exactly one must fit: none, or
several that fit equally, is an error that says what to run or lists them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..degradations import setting_name
from ..zoo import PREFIX as ZOO_PREFIX
from ..zoo import default_model, is_zoo_reference
from .metadata import CheckpointError, baseline_level, generator_differences
from .read import checkpoint_kind, read_generator_file

__all__ = [
    "SEARCH_ROOTS",
    "StartNotFoundError",
    "find_baselines",
    "find_checkpoints",
    "find_runs",
    "find_start",
    "latest_checkpoint",
    "level_triple",
    "newest_of_kind",
    "task_of",
]

SEARCH_ROOTS = ("logs", "../logs")
"""Where :func:`find_checkpoints` looks: ``logs/`` of the working folder (``make demo`` writes there), or of
its parent (a notebook started in ``notebooks/``)."""


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
            f"{root.resolve()}; train it first{f' ({hint})' if hint else ''} or pass init.ckpt=/path/to/last.ckpt"
        )
    if len(fits) > 1:
        listing = ", ".join(str(p) for p in fits)
        raise StartNotFoundError(
            f"{len(fits)} checkpoints fit equally as the start ({what}): {listing}; pass init.ckpt=PATH, "
            "or init.search=FOLDER to look in one run or multirun only"
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


def level_triple(metadata: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """A per-level baseline's level as ``(blur, noise, jpeg quality)`` (None for a model of the whole range)."""
    level = baseline_level(metadata)
    return (
        None if level is None else (level.get("blur", 0.0), level.get("noise", 0.0), level.get("jpeg", 0.0))
    )


def _run_checkpoint(folder: Path) -> Path | None:
    """A run's generator: ``checkpoints/best.ckpt`` (stage 1: the best validation PSNR), else ``last.ckpt``."""
    best, last = folder / "checkpoints" / "best.ckpt", folder / "checkpoints" / "last.ckpt"
    return best if best.is_file() else last if last.is_file() else None


def find_runs(sweep: str | Path) -> dict[str, str]:
    """The jobs of a training sweep (``logs/<task>/multiruns/<date>/``) as ``{job folder name: checkpoint}``:
    with the ablation configs the names are their variants (``scales=2``, ``gfm=false``, ...)."""
    root = Path(sweep)
    if not root.is_dir():
        raise FileNotFoundError(f"runs: '{root}' is not a folder (give a multirun's folder)")
    found = {
        job.name: str(path)
        for job in sorted(root.iterdir())
        if job.is_dir() and (path := _run_checkpoint(job))
    }
    if not found:
        raise FileNotFoundError(f"runs: no job under '{root}' holds checkpoints/best.ckpt or last.ckpt")
    return found


def find_baselines(roots: str | Path | Sequence[str | Path]) -> dict[str, str]:
    """Per-level baselines (kinds ``unet`` / ``ugan``) under files or folders (a multirun's output), as
    ``{name: path}`` with names like ``unet_b2_n30``. In a folder of runs, each ``checkpoints/`` folder gives
    its ``best.ckpt`` (else ``last.ckpt``); two files for one kind and level are an error that lists both."""
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    candidates: list[Path] = []
    for root in map(Path, roots):
        if root.is_file():
            candidates.append(root)
        elif root.is_dir():
            folders = sorted({p.parent for p in root.rglob("*.ckpt")})
            for folder in folders:
                best, last = folder / "best.ckpt", folder / "last.ckpt"
                chosen = (
                    [best] if best.is_file() else [last] if last.is_file() else sorted(folder.glob("*.ckpt"))
                )
                candidates.extend(chosen)
        else:
            raise FileNotFoundError(f"baselines: '{root}' does not exist")
    if not candidates:
        raise FileNotFoundError(f"baselines: no checkpoint (.ckpt) under {', '.join(map(str, roots))}")
    found: dict[str, list[str]] = {}
    for path in candidates:
        file = read_generator_file(path, "baseline", kinds=None, tensors=False)
        level = level_triple(file.metadata)
        if file.kind not in ("unet", "ugan") or level is None:
            continue
        found.setdefault(f"{file.kind}_{setting_name(*level)}", []).append(str(path))
    repeated = {name: paths for name, paths in found.items() if len(paths) > 1}
    if repeated:
        listing = "; ".join(f"{name}: {', '.join(paths)}" for name, paths in sorted(repeated.items()))
        raise ValueError(f"several baselines for one kind and level ({listing}); give the one to use")
    if not found:
        raise ValueError(
            f"no per-level baseline (kind unet or ugan) among {len(candidates)} checkpoints under {roots}"
        )
    return {name: paths[0] for name, paths in sorted(found.items())}


def newest_of_kind(roots: Sequence[str | Path], kind: str) -> Path | None:
    """The newest ``.ckpt`` under ``roots`` whose metadata says ``kind`` (tensors are not loaded)."""
    candidates: list[Path] = []
    for root in roots:
        root = Path(root)
        if root.is_dir():
            candidates.extend(root.rglob("*.ckpt"))
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            if checkpoint_kind(path) == kind:
                return path
        except CheckpointError:
            continue
    return None


def find_checkpoints(
    model: str | Path | None = None,
    gan: str | Path | None = None,
    roots: Sequence[str | Path] = SEARCH_ROOTS,
) -> tuple[Path | str, Path | None]:
    """The models to open a slider session on: the given ones, else the newest stage-1 (``cunet``) and stage-2
    (``cugan``) checkpoints under ``roots`` (``make demo`` writes them under ``logs/``), else the zoo's default
    model (``zoo:NAME``, shipped in the package) without a GAN end."""
    if model is not None:
        if not is_zoo_reference(model) and not Path(model).is_file():
            raise FileNotFoundError(f"model '{model}' does not exist")
        mse: Path | str = model if is_zoo_reference(model) else Path(model)
    else:
        found = newest_of_kind(roots, "cunet")
        if found is None:
            return f"{ZOO_PREFIX}{default_model()}", None
        mse = found
    if gan is not None:
        gan_path: Path | None = Path(gan)
        if not gan_path.is_file():
            raise FileNotFoundError(f"GAN model '{gan_path}' does not exist")
    else:
        gan_path = newest_of_kind(roots, "cugan")
    return mse, gan_path
