"""What every slider interface shares (the notebook's :class:`~cugan_lightning.interactive.ModulationSession` and
the web page's :class:`~cugan_lightning.webapp.Workbench`): the sliders a restorer has, slider positions made
canonical :class:`Settings` (snapped to the slider steps; they key the result caches and fill the restore
command), and a restoration shown in steps, a preview first where the image is large.

No widgets and no web framework here: the two interfaces draw these with ipywidgets and Gradio.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from ..degradations.factors import lookup
from ..dni import check_alpha
from .restorer import Restorer

__all__ = [
    "ALPHA_STEP",
    "DEFAULT_ALPHA",
    "Settings",
    "SliderSpec",
    "Sliders",
    "Step",
    "restore_in_steps",
    "slider_label",
]


def slider_label(name: str) -> str:
    """A factor slider's label, from the factor's registry entry (``blur σ (pixels)``, ``Poisson σ at white
    (0-255)``); an unknown name is a ValueError listing the known factors."""
    return lookup(name).label


ALPHA_STEP = 0.05
DEFAULT_ALPHA = 0.5
"""Where the alpha slider of a DNI pair starts: halfway between the GAN (0) and the MSE (1) model."""


@dataclass(frozen=True)
class SliderSpec:
    """One slider: a codec factor in physical units, or ``alpha``."""

    name: str
    label: str
    minimum: float
    maximum: float
    step: float
    info: str


@dataclass(frozen=True)
class Settings:
    """Slider positions made canonical (snapped to the slider steps), so that an interface, its cache keys and a
    printed command all use the same numbers. ``alpha`` is None without a GAN model."""

    levels: tuple[tuple[str, float], ...]
    alpha: float | None

    def level(self, name: str) -> float:
        return dict(self.levels)[name]


def _on_step(value: float, minimum: float, maximum: float, step: float, name: str, clamp: bool) -> float:
    """``value`` on the slider's grid; outside ``[minimum, maximum]`` it is clamped or an error."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if not minimum <= value <= maximum:
        if not clamp:
            raise ValueError(f"{name} level {value:g} is outside {minimum:g}..{maximum:g}")
        value = min(max(value, minimum), maximum)
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return round(round((value - minimum) / step) * step + minimum, decimals)


class Sliders:
    """The sliders of a :class:`Restorer`: one per codec factor in the codec's order (label, unit, range and step
    from the factor's registry entry and the codec's maximum), then alpha for a DNI pair."""

    def __init__(self, restorer: Restorer) -> None:
        self.restorer = restorer

    @property
    def has_gan(self) -> bool:
        return self.restorer.blender is not None

    def specs(self) -> list[SliderSpec]:
        codec = self.restorer.codec
        specs = [
            SliderSpec(name, slider_label(name), *codec.slider(index), codec.describe(index))
            for index, name in enumerate(codec.names)
        ]
        if self.has_gan:
            specs.append(
                SliderSpec(
                    "alpha", "alpha (0: GAN, 1: MSE)", 0.0, 1.0, ALPHA_STEP, "DNI blend of the two models"
                )
            )
        return specs

    def settings(
        self,
        values: Mapping[str, float | None],
        alpha: float | None = None,
        *,
        current: Settings | None = None,
        clamp: bool = False,
    ) -> Settings:
        """Slider values (physical units) snapped to their steps. A factor left out or None keeps its
        ``current`` position (0 without one), alpha likewise (:data:`DEFAULT_ALPHA` without one). Values
        outside a slider's range are clamped with ``clamp`` (a widget's position), else a ValueError, as are
        unknown names and an alpha without a GAN model."""
        codec = self.restorer.codec
        unknown = [name for name, value in values.items() if value is not None and name not in codec.names]
        if unknown:
            raise ValueError(f"unknown slider '{unknown[0]}'; this model's factors are {list(codec.names)}")
        old = dict(current.levels) if current is not None else {}
        levels = []
        for index, name in enumerate(codec.names):
            value = values.get(name)
            if value is None:
                levels.append((name, old.get(name, 0.0)))
                continue
            low, high, step = codec.slider(index)
            levels.append((name, codec.snap(name, _on_step(value, low, high, step, name, clamp))))
        if not self.has_gan:
            if alpha is not None:
                raise ValueError("the alpha slider needs a GAN model (gan=)")
            return Settings(tuple(levels), None)
        if alpha is None:
            alpha = current.alpha if current is not None and current.alpha is not None else DEFAULT_ALPHA
        return Settings(tuple(levels), check_alpha(_on_step(alpha, 0.0, 1.0, ALPHA_STEP, "alpha", clamp)))

    def z(self, settings: Settings) -> Tensor:
        """The condition ``(1, cond_dim)`` of ``settings``."""
        return self.restorer.z_for(levels=dict(settings.levels))


@dataclass(frozen=True)
class Step:
    """One image of a restoration shown in steps: the ``preview`` (shrunk) or the ``full`` result."""

    kind: str
    array: np.ndarray
    seconds: float


def restore_in_steps(
    restorer: Restorer,
    image: np.ndarray,
    z: Tensor,
    alpha: float | None,
    *,
    preview_side: int | None,
    tile: int | None = None,
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Iterator[Step]:
    """Restore ``image`` (a numpy image as :meth:`Restorer.restore_array` takes) under ``z`` and ``alpha``: a
    preview first when its long side is over ``preview_side`` (None: never), then the full result. Each network
    run happens inside ``guard()`` (a lock, a stop hook); the caller may stop iterating after the preview."""
    if preview_side is not None and max(image.shape[:2]) > preview_side:
        begin = time.perf_counter()
        with guard():
            small = restorer.preview_array(image, z, alpha, preview_side)
        yield Step("preview", small, time.perf_counter() - begin)
    begin = time.perf_counter()
    with guard():
        full = restorer.restore_array(image, z, alpha, tile)
    yield Step("full", full, time.perf_counter() - begin)
