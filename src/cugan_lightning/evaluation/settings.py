"""The settings an evaluation scores: each a mapping factor -> level, named by the grid's keys (``b2_n30``,
``b0_n0_q30``, ``b0_n0_p10``; :mod:`cugan_lightning.degradations.grid`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..degradations.grid import (
    GRID_FACTORS,
    SETTING_LISTS,
    parse_setting,
    setting_dict,
    setting_name,
    setting_tuple,
)

__all__ = ["NAMED_SETTINGS", "Setting", "as_settings", "parse_settings"]

NAMED_SETTINGS: dict[str, tuple[tuple[float, ...], ...]] = {
    **SETTING_LISTS,
    "paper_jpeg": (*SETTING_LISTS["paper"], *SETTING_LISTS["jpeg"]),
}
"""What ``settings=`` may name: the paper's ten, the JPEG, Poisson and motion grids, and paper + JPEG."""


@dataclass(frozen=True)
class Setting:
    """One evaluated setting: the level of each factor (physical units; a JPEG level is a quality, 0: none).
    ``levels`` holds every factor of :data:`GRID_FACTORS`, in that order, 0 where the setting has none."""

    levels: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, levels: Mapping[str, float] | Sequence[float]) -> Setting:
        """From levels by factor name or a grid tuple ``(blur, noise[, jpeg quality, poisson, motion])``; a level
        that is not a finite number >= 0 (or not a whole quality) is a ValueError naming it."""
        values = setting_dict(setting_tuple(dict(levels)) if isinstance(levels, Mapping) else tuple(levels))
        setting = cls(tuple((name, values[name]) for name in GRID_FACTORS))
        setting_name(*setting.grid)  # checks every level
        return setting

    @property
    def grid(self) -> tuple[float, ...]:
        """The shortest grid tuple (at least blur and noise): ``(2.0, 30.0)``, ``(0.0, 0.0, 0.0, 10.0)``."""
        return setting_tuple(dict(self.levels))

    @property
    def name(self) -> str:
        return setting_name(*self.grid)

    def level(self, factor: str) -> float:
        return dict(self.levels)[factor]

    @property
    def factors(self) -> tuple[str, ...]:
        """The factors at a level other than 0 (those that degrade the input)."""
        return tuple(name for name, value in self.levels if value != 0)

    @property
    def triple(self) -> tuple[float, float, float] | None:
        """``(blur, noise, jpeg quality)``, the level a per-level baseline records; None when another factor
        has a level."""
        if any(name not in ("blur", "noise", "jpeg") for name in self.factors):
            return None
        return self.level("blur"), self.level("noise"), self.level("jpeg")

    def __str__(self) -> str:
        return self.name


def parse_settings(settings: Any) -> list[Setting]:
    """A named list (:data:`NAMED_SETTINGS`: ``"paper"``, ``"paper_jpeg"``, ``"poisson"``, ...) or a list of
    names like ``"b2_n30"``, ``"b0_n0_p10"`` and grid tuples ``[blur, noise]``, ``[blur, noise, jpeg quality,
    poisson, motion]``."""
    if isinstance(settings, str):
        if settings not in NAMED_SETTINGS:
            raise ValueError(
                f"settings must be one of {', '.join(map(repr, NAMED_SETTINGS))} or a list of [blur, noise] / "
                f"names like 'b2_n30', got {settings!r}"
            )
        return [Setting.of(s) for s in NAMED_SETTINGS[settings]]
    if settings is not None and not isinstance(settings, Sequence):
        raise ValueError(f"settings must be a name like 'paper' or a list of settings, got {settings!r}")
    out: list[Setting] = []
    for item in settings or []:
        if isinstance(item, str):
            out.append(Setting.of(parse_setting(item)))
        elif (
            isinstance(item, Sequence)
            and 2 <= len(item) <= len(GRID_FACTORS)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item)
        ):
            out.append(Setting.of([float(v) for v in item]))
        else:
            raise ValueError(
                f"setting {item!r} is not [blur, noise], [blur, noise, jpeg quality, ...] or a name like 'b2_n30'"
            )
    if not out:
        raise ValueError("settings is empty; give 'paper' or a list of [blur, noise] pairs")
    if len(set(out)) != len(out):
        raise ValueError(f"settings repeat a setting: {[s.name for s in out]}")
    return out


def as_settings(settings: Sequence[Setting | Sequence[float] | Mapping[str, float]]) -> list[Setting]:
    """Settings as given to the evaluation functions: :class:`Setting` objects, grid tuples ``(blur, noise,
    jpeg quality, ...)`` or levels by factor name."""
    return [s if isinstance(s, Setting) else Setting.of(s) for s in settings]
