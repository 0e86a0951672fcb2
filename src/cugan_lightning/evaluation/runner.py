"""Scoring models on the fixed evaluation grid: per image, every setting's degraded input is made once (the
training app's grid: CPU, float64, a seed per image and setting), moved to the device once, and restored by
every model in batches; the scores are per image, setting, model and metric."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.datasets import ImageSource
from ..data.embedded import load_embedded
from ..data.io import to_float
from ..degradations import GRID_FACTORS, degrade_fixed
from ..estimation import LearnedEstimator, estimate_levels
from ..estimation.levels import estimate_crop, to_rgb_float
from .metrics import ImageScorer
from .models import EvalModel
from .settings import Setting, as_settings, parse_settings

__all__ = [
    "PROTOCOLS",
    "EvalResult",
    "check_protocol",
    "degraded_inputs",
    "estimate_alone",
    "evaluate",
    "example_rows",
    "load_test_images",
    "parse_settings",
    "setting_columns",
    "unscored",
]

EXAMPLE_CROP = 128

PROTOCOLS = {
    "paper": "the paper's protocol: blur, noise, then clipped to [0, 1] and rounded to 8 bits",
    "standard": "the standard denoising protocol: Gaussian noise added in floating point, neither clipped nor "
    "rounded (as published denoisers report)",
}
"""How the evaluation inputs are made (``protocol=``); every table names the one it used."""


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return protocol


def load_test_images(
    test_dir: str | Path | None, crop: int | None = None, channels: int = 3
) -> list[tuple[str, np.ndarray]]:
    """Every test image, decoded now (a bad file is an error naming it: scores must not cover fewer images than
    the folder holds). ``None``: the embedded validation photographs. ``crop``: central square crop.
    ``channels=1`` (gray models): ``(H, W, 1)`` arrays, colour images converted to gray (said in the log)."""
    if test_dir is None:
        source = ImageSource(arrays=load_embedded("val"), channels=channels)
    else:
        source = ImageSource(test_dir, config_key="data.test_dir", on_bad_file="error", channels=channels)
        source.check()  # every file read once, in parallel; a bad one is an error naming it
    images = [(name, source.get(i)) for i, name in enumerate(source.names)]
    if crop is not None:
        if int(crop) < 4:
            raise ValueError(f"data.crop must be at least 4 pixels (or null for whole images), got {crop}")
        images = [(name, _center(array, int(crop))) for name, array in images]
    return images


def _center(array: np.ndarray, size: int) -> np.ndarray:
    height, width = array.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return np.ascontiguousarray(array[top : top + size, left : left + size])


@dataclass
class EvalResult:
    """Long-format rows (``image, setting``, a column per factor of the settings, ``model, alpha, metric,
    value``) and the time spent."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    network_seconds: float = 0.0
    degrade_seconds: float = 0.0
    score_seconds: float = 0.0
    total_seconds: float = 0.0
    network_passes: int = 0
    estimates: list[dict[str, Any]] = field(default_factory=list)
    """Blind rows' estimated levels beside the true ones (``image, setting, model, factor, true, estimate``)."""

    @property
    def network_share(self) -> float:
        return self.network_seconds / self.total_seconds if self.total_seconds else 0.0


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def degraded_inputs(
    gt: Tensor, name: str, settings: Sequence[Setting], seed: int, protocol: str = "paper"
) -> Tensor:
    """``(S, C, H, W)``: ``gt`` ``(C, H, W)`` under each setting, through the factor pipeline with a generator
    seeded by (seed, image, setting): with the paper's protocol exactly as the training app validates; with the
    standard one the same draws, unclipped and unrounded."""
    exact = check_protocol(protocol) == "paper"
    inputs = []
    for setting in as_settings(settings):
        levels = dict(setting.levels)
        blur, noise, jpeg = levels.pop("blur"), levels.pop("noise"), levels.pop("jpeg")
        inputs.append(
            degrade_fixed(
                gt,
                blur,
                noise,
                image_key=name,
                seed=seed,
                jpeg=jpeg,
                quantize=exact,
                clip_values=exact,
                extra=levels,
            )  # fmt: skip
        )
    return torch.stack(inputs)


def setting_columns(settings: Sequence[Setting]) -> dict[str, Tensor]:
    """The level columns ``(S,)`` of the settings by factor: blur, noise, jpeg (a quality) and every other
    factor some setting has."""
    names = [
        n for n in GRID_FACTORS if n in ("blur", "noise", "jpeg") or any(n in s.factors for s in settings)
    ]
    return {n: torch.tensor([s.level(n) for s in settings], dtype=torch.float32) for n in names}


def unscored(models: Sequence[EvalModel], settings: Sequence[Setting]) -> list[str]:
    """One line per model and setting it is not scored on for lack of a factor (the reason named)."""
    lines = []
    for model in models:
        for setting in settings:
            missing = model.missing_factor(setting)
            if missing is not None:
                lines.append(f"{model.name} is not scored on {setting.name}: {missing}")
    return lines


def evaluate(
    models: Sequence[EvalModel],
    images: Sequence[tuple[str, np.ndarray]],
    settings: Sequence[Setting],
    scorer: ImageScorer,
    *,
    device: torch.device,
    batch_size: int = 4,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    protocol: str = "paper",
) -> EvalResult:
    """Score every model on every (image, setting) it applies to, inputs made by ``protocol``
    (:data:`PROTOCOLS`); see :class:`EvalResult`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    result, settings = EvalResult(), as_settings(settings)
    start = time.perf_counter()
    scorer.to(device)
    columns = setting_columns(settings)
    names = [s.name for s in settings]
    for number, (name, array) in enumerate(images, 1):
        tic = time.perf_counter()
        gt = torch.from_numpy(to_float(array)).permute(2, 0, 1).contiguous()
        lq_all = degraded_inputs(gt, name, settings, seed, protocol).to(device)
        gt = gt.to(device)
        result.degrade_seconds += time.perf_counter() - tic
        for model in models:
            chosen = [i for i, s in enumerate(settings) if model.applies_to(s)]
            for first in range(0, len(chosen), batch_size):
                index = chosen[first : first + batch_size]
                lq = lq_all[index]
                if model.blind is not None:  # levels estimated from each input, kept beside the true ones
                    z, found = model.blind(lq)
                    for j, levels in zip(index, found, strict=True):
                        result.estimates += [
                            {"image": name, "setting": names[j], "model": model.name, "factor": factor,
                             "true": settings[j].level(factor), "estimate": value}
                            for factor, value in levels.items()
                        ]  # fmt: skip
                else:
                    z = model.z_for(**{factor: column[index] for factor, column in columns.items()})
                if model.restores:
                    _synchronize(device)
                    tic = time.perf_counter()
                    out = model.restore(lq, z)
                    _synchronize(device)
                    result.network_seconds += time.perf_counter() - tic
                    result.network_passes += 1
                else:
                    out = lq
                tic = time.perf_counter()
                scores = scorer(out, gt.expand_as(out))
                _synchronize(device)
                result.score_seconds += time.perf_counter() - tic
                for label, values in scores.items():
                    for j, value in zip(index, values.tolist(), strict=True):
                        result.rows.append(
                            {
                                "image": name,
                                "setting": names[j],
                                **{factor: settings[j].level(factor) for factor in columns},
                                "model": model.name,
                                "alpha": model.alpha,
                                "metric": label,
                                "value": value,
                            }
                        )
        if progress is not None:
            progress(f"image {number}/{len(images)} ({name}) scored")
    result.total_seconds = time.perf_counter() - start
    return result


def estimate_alone(
    estimator: LearnedEstimator,
    images: Sequence[tuple[str, np.ndarray]],
    settings: Sequence[Setting],
    *,
    name: str,
    seed: int = 0,
    protocol: str = "paper",
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """A level estimator without a restorer: the levels read off the pixels of every (image, setting) input,
    made as :func:`evaluate` makes them, beside the true ones (the rows of :attr:`EvalResult.estimates`). Model
    ``name``: each input estimated as ``--auto`` estimates a PNG file (no file tables for JPEG, and no restorer
    to settle a blur by consistency); ``name_network``: the network's reading alone."""
    settings = as_settings(settings)
    rows = []
    for number, (image, array) in enumerate(images, 1):
        gt = torch.from_numpy(to_float(array)).permute(2, 0, 1).contiguous()
        for setting, lq in zip(settings, degraded_inputs(gt, image, settings, seed, protocol), strict=True):
            rgb = estimate_crop(to_rgb_float(lq))  # made once for both readings
            for model, found in (
                (name, estimate_levels(rgb, estimator.codec, estimator)),
                (f"{name}_network", estimator.estimate(rgb)),
            ):
                rows += [
                    {"image": image, "setting": setting.name, "model": model, "factor": factor,
                     "true": setting.level(factor), "estimate": estimate.value}
                    for factor, estimate in found.items()
                ]  # fmt: skip
        if progress is not None:
            progress(f"image {number}/{len(images)} ({image}) estimated")
    return rows


@torch.no_grad()
def example_rows(
    models: Sequence[EvalModel],
    image: tuple[str, np.ndarray],
    settings: Sequence[Setting],
    *,
    device: torch.device,
    seed: int = 0,
    crop: int = EXAMPLE_CROP,
    protocol: str = "paper",
) -> list[tuple[str, list[tuple[str, Tensor]]]]:
    """Panels of the restorations figure: one row per model (the input first), one column per setting, the
    central ``crop`` pixels of one image (the whole image is restored)."""
    name, array = image
    settings = as_settings(settings)
    gt = torch.from_numpy(to_float(array)).permute(2, 0, 1).contiguous()
    lq_all = degraded_inputs(gt, name, settings, seed, protocol).to(device)
    columns = setting_columns(settings)
    height, width = gt.shape[-2:]
    top, left = max(0, (height - crop) // 2), max(0, (width - crop) // 2)
    rows = []
    for model in models:
        panels = []
        for i, setting in enumerate(settings):
            if model.applies_to(setting):
                lq = lq_all[i : i + 1]
                levels = {factor: column[i : i + 1] for factor, column in columns.items()}
                z = model.blind(lq)[0] if model.blind else model.z_for(**levels)
                out = model.restore(lq, z)
                panels.append((setting.name, out[0, :, top : top + crop, left : left + crop].cpu()))
        if panels:
            rows.append((model.name, panels))
    rows.append(("ground truth", [(name, gt[:, top : top + crop, left : left + crop])]))
    return rows
