"""Modulation maps: does the slider land where the physics says?

For each true setting, a model restores the same degraded inputs under a grid of conditions (default blur
0..4 step 0.5 x noise 0..50 step 5; every other factor told its true level); the mean score over the images at
each grid point is the map. The report
gives the best condition, its score, the score at the true condition and the gap between the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.io import to_float
from .metrics import HIGHER_IS_BETTER, ImageScorer
from .models import EvalModel
from .runner import degraded_inputs
from .settings import Setting, as_settings
from .tables import base_metric

__all__ = ["ModulationMap", "best_condition", "grid_values", "modulation_maps"]


def grid_values(spec: Sequence[float], name: str) -> list[float]:
    """``[start, stop, step]`` -> the values from start to stop (inclusive) in steps."""
    if len(spec) != 3:
        raise ValueError(f"modulation_map.{name} must be [start, stop, step], got {list(spec)}")
    start, stop, step = (float(v) for v in spec)
    if not (math.isfinite(start) and math.isfinite(stop) and step > 0 and 0 <= start <= stop):
        raise ValueError(
            f"modulation_map.{name} [start, stop, step] needs 0 <= start <= stop and step > 0, got {list(spec)}"
        )
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    return [round(start + i * step, 10) for i in range(count)]


@dataclass
class ModulationMap:
    """Mean scores of one model on one true setting over a blur x noise grid of conditions."""

    model: str
    metric: str
    blur: float
    noise: float
    jpeg: float
    blur_values: list[float]
    noise_values: list[float]
    scores: np.ndarray  # (len(blur_values), len(noise_values))
    true_score: float
    others: tuple[tuple[str, float], ...] = ()
    """The setting's levels of the factors after JPEG (Poisson, motion), held there on every grid point."""

    @property
    def setting(self) -> str:
        return Setting.of(
            {"blur": self.blur, "noise": self.noise, "jpeg": self.jpeg, **dict(self.others)}
        ).name

    @property
    def best(self) -> tuple[float, float, float]:
        """(blur, noise, score) of the best grid point."""
        flat = self.scores.argmax() if HIGHER_IS_BETTER[base_metric(self.metric)] else self.scores.argmin()
        i, j = np.unravel_index(flat, self.scores.shape)
        return self.blur_values[i], self.noise_values[j], float(self.scores[i, j])

    @property
    def gap(self) -> float:
        """How much better the best grid point scores than the true condition (>= 0 when the true condition
        is on the grid)."""
        best = self.best[2]
        return (
            best - self.true_score if HIGHER_IS_BETTER[base_metric(self.metric)] else self.true_score - best
        )

    def row(self) -> dict[str, float | str]:
        best_blur, best_noise, best_score = self.best
        return {
            "model": self.model,
            "setting": self.setting,
            "metric": self.metric,
            "true_blur": self.blur,
            "true_noise": self.noise,
            "best_blur": best_blur,
            "best_noise": best_noise,
            "best_score": best_score,
            "true_score": self.true_score,
            "gap": self.gap,
        }


@torch.no_grad()
def best_condition(
    restore: Callable[[Tensor, Tensor, Tensor], Tensor],
    lq: Tensor,
    gt: Tensor,
    levels: Tensor,
    score: Callable[[Tensor, Tensor], Tensor],
    batch_size: int,
) -> Tensor:
    """Scores ``(K,)`` of one input ``lq`` ``(1, 3, H, W)`` restored under each of ``levels`` ``(K, 2)``
    (blur, noise). ``restore(lq_batch, blur, noise)`` runs the model; ``score(out, gt)`` returns ``(B,)``."""
    scores = []
    for first in range(0, len(levels), batch_size):
        chunk = levels[first : first + batch_size]
        batch = lq.expand(len(chunk), -1, -1, -1)
        out = restore(batch, chunk[:, 0], chunk[:, 1])
        scores.append(score(out, gt.expand_as(out)))
    return torch.cat(scores)


def modulation_maps(
    models: Sequence[EvalModel],
    images: Sequence[tuple[str, np.ndarray]],
    settings: Sequence[Setting],
    scorer: ImageScorer,
    blur_values: Sequence[float],
    noise_values: Sequence[float],
    *,
    device: torch.device,
    batch_size: int = 8,
    seed: int = 0,
    protocol: str = "paper",
) -> list[ModulationMap]:
    """One map per conditional model and setting of its factors (every factor but blur and noise held at the
    setting's level); ``scorer`` holds exactly one metric."""
    (label,) = scorer.labels.values()
    settings = as_settings(settings)
    grid = torch.tensor([(b, n) for b in blur_values for n in noise_values], dtype=torch.float32)
    shape = (len(blur_values), len(noise_values))
    scorer.to(device)
    pairs = [(m, s) for m in models for s in settings if m.missing_factor(s) is None]
    sums = {(m.name, s): torch.zeros(len(grid) + 1, dtype=torch.float64) for m, s in pairs}
    for name, array in images:
        gt = torch.from_numpy(to_float(array)).permute(2, 0, 1)
        lq_all = degraded_inputs(gt, name, settings, seed, protocol).to(device)
        gt = gt.to(device)[None]
        for model, setting in pairs:
            index = settings.index(setting)
            held = {f: v for f, v in setting.levels if f not in ("blur", "noise")}

            def restore(lq: Tensor, blur: Tensor, noise: Tensor, model=model, held=held) -> Tensor:  # noqa: ANN001
                fixed = {f: torch.full_like(blur.cpu(), v) for f, v in held.items()}
                return model.restore(lq, model.z_for(blur.cpu(), noise.cpu(), **fixed))

            true = [[setting.level("blur"), setting.level("noise")]]
            levels = torch.cat([grid, torch.tensor(true, dtype=torch.float32)])  # last: the true z
            scores = best_condition(
                restore,
                lq_all[index : index + 1],
                gt,
                levels,
                lambda o, g: scorer(o, g)[label],
                batch_size,
            )
            sums[(model.name, setting)] += scores.double().cpu()
    maps = []
    for model, setting in pairs:
        means = (sums[(model.name, setting)] / len(images)).numpy()
        maps.append(
            ModulationMap(
                model.name,
                label,
                setting.level("blur"),
                setting.level("noise"),
                setting.level("jpeg"),
                list(blur_values),
                list(noise_values),
                means[:-1].reshape(shape),
                float(means[-1]),
                tuple((f, v) for f, v in setting.levels if f not in ("blur", "noise", "jpeg") and v),
            )
        )
    return maps
