"""A degradation factor as a plug-in: its units, its level <-> z mapping, where it sits in the pipeline, how its
levels are drawn and how it is applied to a batch (docs/degradations.md, "Factors").

The pipeline runs in stages, whatever order the codec names the factors in: optics (blur), sensor (noise), storage
(clipping and 8- or 16-bit quantisation, degradation.bits; not a factor), compression (JPEG). Within a stage, factors run by ``rank``.
"""

from __future__ import annotations

import inspect
import math
from typing import ClassVar

import torch
from torch import Tensor

__all__ = [
    "COMPRESSION",
    "OPTICS",
    "SENSOR",
    "STAGES",
    "Factor",
    "check_map",
    "known_factors",
    "lookup",
    "make_factor",
    "pipeline_order",
    "register",
]

OPTICS, SENSOR, COMPRESSION = "optics", "sensor", "compression"
STAGES = (OPTICS, SENSOR, COMPRESSION)
"""The stages in the order they run; storage (8- or 16-bit quantisation) runs between the sensor and compression."""

_TOLERANCE = 1e-6
_REGISTRY: dict[str, type[Factor]] = {}


class Factor:
    """One degradation factor. A subclass sets the class attributes and overrides ``apply`` (and ``apply_map``
    where a level per pixel makes sense); the defaults give a linear factor ``z = level / max_level`` with levels
    ``0..max_level`` in steps of ``step``.

    Class attributes: ``name`` (as in the codec and on the command line), ``unit`` (what a level means),
    ``label`` (a slider's label), ``key`` (its letter in an evaluation setting's name, ``b2_n30``), ``stage`` and
    ``rank`` (its place in the pipeline), ``default_max`` and ``default_step``, ``supports_map`` (a level per
    pixel), ``scales_with_size`` (its level is in pixels or is averaged away when an image is shrunk, so a
    preview divides it), ``classical`` and ``estimate`` (what a classical restorer and the level estimators do
    with it; ``"none"`` where nothing applies), ``batch_key`` (the key of its levels in a data batch;
    ``<name>_level`` unless set).
    """

    name: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    label: ClassVar[str] = ""
    key: ClassVar[str] = ""
    stage: ClassVar[str] = OPTICS
    rank: ClassVar[int] = 0
    default_max: ClassVar[float] = 1.0
    default_step: ClassVar[float] = 1.0
    supports_map: ClassVar[bool] = False
    scales_with_size: ClassVar[bool] = False
    classical: ClassVar[str] = "none"
    estimate: ClassVar[str] = "none"
    batch_key: ClassVar[str] = ""

    def __init__(self, max_level: float | None = None, step: float | None = None) -> None:
        self.max_level = _positive(
            self.default_max if max_level is None else max_level, f"{self.name} max_level"
        )
        self.step = _positive(self.default_step if step is None else step, f"{self.name} step")
        labels = self.max_level / self.step
        if abs(labels - round(labels)) > 1e-6 * max(1.0, labels):
            raise ValueError(
                f"{self.name} max_level {self.max_level:g} must be a whole number of steps {self.step:g}"
            )

    @classmethod
    def from_codec(cls, max_level: float) -> Factor:
        """The factor a codec entry ``(name, max_level)`` describes (any maximum > 0; the slider's step is the
        factor's default)."""
        factor = cls.__new__(cls)
        factor.max_level, factor.step = float(max_level), float(cls.default_step)
        return factor

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_level={self.max_level:g}, step={self.step:g})"

    # ------------------------------------------------------------------------------------- levels and z
    @property
    def codec_max(self) -> float:
        """The level whose z is 1 (the codec's ``max_levels`` entry)."""
        return self.max_level

    @property
    def max_label(self) -> int:
        """Number of steps between 0 and the largest level."""
        return round(self.max_level / self.step)

    def to_internal(self, level: Tensor, validate: bool = True) -> Tensor:
        """Levels as users give them ``(B,)`` -> levels on the codec's linear scale (``z = internal / codec_max``)."""
        return level

    def from_internal(self, internal: Tensor) -> Tensor:
        return internal

    def describe(self) -> str:
        """The allowed range in physical units, e.g. "0..50 (sigma on the 0-255 scale)"."""
        text = f"0..{self.codec_max:g}"
        return f"{text} ({self.unit})" if self.unit else text

    def slider(self) -> tuple[float, float, float]:
        """``(min, max, step)`` of a slider in physical units."""
        return 0.0, self.codec_max, self.step

    def snap(self, value: float) -> float:
        """A slider position made a valid level."""
        return float(value)

    def check_level(self, value: float) -> None:
        """Raise a ValueError naming the factor unless ``value`` is a level of this factor."""
        if not (math.isfinite(value) and -_TOLERANCE <= value <= self.codec_max + _TOLERANCE):
            raise ValueError(f"{self.name} level {value:g} is outside {self.describe()}")

    # ---------------------------------------------------------------------------------------- sampling
    def from_unit(self, u: Tensor) -> Tensor:
        """Active training levels ``(n,)`` float64 from Beta draws ``u`` in [0, 1]: ``label = round(u *
        max_label)``, ``level = label * max_level / max_label`` (rounded once: label 37 of 40 is the float
        nearest 3.7)."""
        labels = torch.round(u * self.max_label)
        return labels * self.max_level / self.max_label

    # --------------------------------------------------------------------------------------- applying
    def apply(
        self, x: Tensor, level: Tensor | float, generator: torch.Generator | None = None, **options
    ) -> Tensor:
        """Degrade ``x`` ``(B, C, H, W)`` with one level per sample ``(B,)`` (or a number); random draws come
        only from ``generator``. Level 0 leaves a sample unchanged."""
        raise NotImplementedError

    def apply_map(self, x: Tensor, level: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Degrade ``x`` ``(B, C, H, W)`` with a level per pixel ``(B, H, W)``."""
        raise ValueError(f"{self.name} keeps one level per image; it has no level map")


def check_map(level: Tensor, x: Tensor, name: str) -> Tensor:
    """A level map ``(B, H, W)`` matching ``x`` ``(B, C, H, W)``, in x's dtype on x's device."""
    if not isinstance(level, Tensor) or level.dim() != 3 or level.shape != (x.shape[0], *x.shape[-2:]):
        shape = tuple(level.shape) if isinstance(level, Tensor) else type(level).__name__
        raise ValueError(f"{name} map must have shape (B, H, W) = {(x.shape[0], *x.shape[-2:])}, got {shape}")
    return level.to(device=x.device, dtype=x.dtype)


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def register(cls: type[Factor]) -> type[Factor]:
    """Class decorator: make a factor known by its ``name`` (to configs, codecs and every tool)."""
    if not cls.name or cls.stage not in STAGES:
        raise ValueError(f"a factor needs a name and a stage in {STAGES}, got {cls.name!r}, {cls.stage!r}")
    if not cls.batch_key:
        cls.batch_key = f"{cls.name}_level"
    _REGISTRY[cls.name] = cls
    return cls


def known_factors() -> tuple[str, ...]:
    """Names of the registered factors, in pipeline order."""
    ordered = sorted(_REGISTRY.values(), key=lambda c: (STAGES.index(c.stage), c.rank))
    return tuple(c.name for c in ordered)


def lookup(name: str) -> type[Factor]:
    """The factor class called ``name``; an unknown name is a ValueError listing the known ones."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown degradation factor {name!r}; known factors: {', '.join(known_factors())}")
    return cls


def make_factor(name: str, **settings: float) -> Factor:
    """The factor ``name`` with its settings (a ``conf/degradation/factor/<name>.yaml``); a setting it does not
    take is a ValueError naming the config key and the settings it takes."""
    cls = lookup(name)
    takes = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(settings) - set(takes))
    if unknown:
        raise ValueError(
            f"degradation.factor.{name} has no setting {', '.join(map(repr, unknown))}; it takes {', '.join(takes)}"
        )
    return cls(**settings)


def pipeline_order(names: tuple[str, ...] | list[str]) -> list[str]:
    """``names`` sorted into the order the pipeline applies them."""
    return sorted(names, key=lambda n: (STAGES.index(lookup(n).stage), lookup(n).rank))
