"""The fixed evaluation grid: the paper's (blur, noise) settings and reproducible per-image degradations.

A setting is ``(blur sigma, noise sigma)`` or, with JPEG, ``(blur sigma, noise sigma, JPEG quality)`` (quality 0:
none), named ``b2_n30`` / ``b2_n30_q30``; further factors follow in the order of :data:`GRID_FACTORS` (``(blur,
noise, jpeg, poisson, motion)``, named ``b0_n0_p10``, ``b0_n0_m7``: each factor's ``key``). A JPEG setting's input
goes through libjpeg itself (a real file's compression), after the other factors and 8-bit quantisation.
"""

from __future__ import annotations

import math
import re

import torch
from torch import Tensor

from cugan_lightning.degradations.factors import degrade_levels, known_factors, lookup
from cugan_lightning.degradations.sampling import seed_for

__all__ = [
    "GRID_FACTORS",
    "JPEG_SETTINGS",
    "MOTION_SETTINGS",
    "PAPER_SETTINGS",
    "POISSON_SETTINGS",
    "SETTING_LISTS",
    "degrade_fixed",
    "parse_setting",
    "setting_dict",
    "setting_name",
    "setting_tuple",
]

# (blur sigma, noise sigma) of the paper's Tables 1 and 2 (section 4.2). The one place they are written:
# the configs read them through the resolvers of cugan_lightning.conf (${cugan.settings:paper}).
PAPER_SETTINGS: tuple[tuple[float, float], ...] = (
    (0, 30),
    (0, 50),
    (2, 0),
    (4, 0),
    (1, 15),
    (1, 30),
    (2, 30),
    (2, 50),
    (4, 30),
    (4, 50),
)

JPEG_SETTINGS: tuple[tuple[float, float, float], ...] = (
    (0, 0, 10),
    (0, 0, 30),
    (0, 0, 50),
    (0, 15, 30),
    (1, 0, 30),
    (1, 15, 50),
)
"""(blur sigma, noise sigma, JPEG quality) added to the grid of a model that conditions on JPEG."""

POISSON_SETTINGS: tuple[tuple[float, ...], ...] = (
    (0, 0, 0, 10),
    (0, 0, 0, 25),
    (0, 15, 0, 10),
    (1, 0, 0, 10),
)
"""(blur, noise, JPEG quality, Poisson level) added to the grid of a model that conditions on Poisson noise."""

MOTION_SETTINGS: tuple[tuple[float, ...], ...] = ((0, 0, 0, 0, 5), (0, 0, 0, 0, 15), (0, 15, 0, 0, 7))
"""(blur, noise, JPEG quality, Poisson level, motion length) added to the grid of a model with motion blur."""

SETTING_LISTS: dict[str, tuple[tuple[float, ...], ...]] = {
    "paper": PAPER_SETTINGS,
    "jpeg": JPEG_SETTINGS,
    "poisson": POISSON_SETTINGS,
    "motion": MOTION_SETTINGS,
}
"""The named lists the configs use (``${cugan.settings:paper,jpeg}``)."""

_FIXED_ORDER = ("blur", "noise", "jpeg", "poisson", "motion")
GRID_FACTORS: tuple[str, ...] = _FIXED_ORDER + tuple(sorted(set(known_factors()) - set(_FIXED_ORDER)))
"""The order of the levels in a setting tuple: the paper's two, JPEG, Poisson, motion, then any factor added
later (by name), so that a new factor never moves the levels of existing settings."""

_NUMBER = r"(\d+(?:\.\d+)?)"
_EXTRA = "".join(rf"(?:_{lookup(name).key}{_NUMBER})?" for name in GRID_FACTORS[3:])
_SETTING = re.compile(rf"b{_NUMBER}_n{_NUMBER}(?:_q(\d+))?{_EXTRA}")


def _format_level(value: float, name: str) -> str:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} level must be a finite number >= 0, got {value}")
    # Six decimals absorb float32 round-off (2.2999999523 is "2.3") and never produce an exponent.
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _format_quality(quality: float) -> str:
    quality = float(quality)
    if not quality.is_integer() or not 0 <= quality <= 100:
        raise ValueError(f"jpeg quality must be a whole number in 0..100 (0: none), got {quality:g}")
    return f"{int(quality)}"


def setting_name(blur: float, noise: float, jpeg: float = 0, *extra: float) -> str:
    """Name of a setting, e.g. "b2_n30", "b1.5_n25", with JPEG quality 30 "b2_n30_q30", and with further
    factors (in :data:`GRID_FACTORS` order) their keys: Poisson level 10 is "b0_n0_p10"."""
    if len(extra) > len(GRID_FACTORS) - 3:
        raise ValueError(f"a setting has at most {len(GRID_FACTORS)} levels ({', '.join(GRID_FACTORS)})")
    name = f"b{_format_level(blur, 'blur')}_n{_format_level(noise, 'noise')}"
    if float(jpeg) != 0:
        name += f"_q{_format_quality(jpeg)}"
    for factor, value in zip(GRID_FACTORS[3:], extra, strict=False):
        if float(value) != 0:
            name += f"_{lookup(factor).key}{_format_level(value, factor)}"
    return name


def setting_dict(setting: tuple[float, ...]) -> dict[str, float]:
    """A setting tuple -> its levels by factor name, every factor of :data:`GRID_FACTORS` (0: absent)."""
    if not 2 <= len(setting) <= len(GRID_FACTORS):
        raise ValueError(
            f"a setting is (blur, noise[, jpeg quality, ...]) with up to {len(GRID_FACTORS)} levels in the order "
            f"{', '.join(GRID_FACTORS)}, got {tuple(setting)}"
        )
    values = [float(v) for v in setting] + [0.0] * (len(GRID_FACTORS) - len(setting))
    return dict(zip(GRID_FACTORS, values, strict=True))


def setting_tuple(levels: dict[str, float]) -> tuple[float, ...]:
    """Levels by name -> the shortest setting tuple (at least blur and noise) in :data:`GRID_FACTORS` order."""
    unknown = [name for name in levels if name not in GRID_FACTORS]
    if unknown:
        lookup(unknown[0])
    values = [float(levels.get(name, 0.0)) for name in GRID_FACTORS]
    while len(values) > 2 and values[-1] == 0:
        values.pop()
    return tuple(values)


def parse_setting(name: str) -> tuple[float, ...]:
    """Inverse of `setting_name`: "b2_n30" -> (2.0, 30.0), "b2_n30_q30" -> (2.0, 30.0, 30.0), "b0_n0_p10" ->
    (0.0, 0.0, 0.0, 10.0)."""
    match = _SETTING.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        keys = "".join(f"[_{lookup(n).key}<{n} level>]" for n in GRID_FACTORS[3:])
        raise ValueError(
            f"setting {name!r} is not of the form 'b<blur sigma>_n<noise sigma>[_q<jpeg quality>]{keys}', "
            "e.g. 'b2_n30'"
        )
    return setting_tuple(
        {n: float(v) for n, v in zip(GRID_FACTORS, match.groups(), strict=True) if v is not None}
    )


def degrade_fixed(
    gt: Tensor,
    blur: float,
    noise: float,
    image_key: str | int,
    seed: int = 0,
    quantize: bool = True,
    jpeg: float = 0,
    clip_values: bool = True,
    extra: dict[str, float] | None = None,
    bits: int = 8,
) -> Tensor:
    """Degrade one evaluation image gt `(C, H, W)` or `(1, C, H, W)` in [0, 1] reproducibly; lq has gt's shape.

    The same (image_key, setting, seed) gives the same lq on every call and every machine: the work runs on the
    CPU in float64 (torch's float32 normal sampling has vectorised CPU paths that may differ between machines),
    with noise from a CPU generator seeded by `seed_for("eval", seed, image_key, setting_name(blur, noise, jpeg))`.
    ``jpeg`` (a quality, 0: none) then compresses with libjpeg; ``extra`` gives levels of further factors by name
    (``{"poisson": 10}``); every factor runs through the pipeline (:func:`degrade_levels`), in its order; ``bits`` (8
    or 16) is the quantisation's depth.
    ``quantize=False, clip_values=False`` is the standard denoising protocol (noise added in floating point,
    values left outside [0, 1]). Returned as float32 on gt's device.
    """
    if not isinstance(gt, Tensor) or gt.dim() not in (3, 4) or (gt.dim() == 4 and gt.shape[0] != 1):
        shape = tuple(gt.shape) if isinstance(gt, Tensor) else type(gt).__name__
        raise ValueError(f"gt must be one image of shape (C, H, W) or (1, C, H, W), got {shape}")
    extra = {name: float(value) for name, value in (extra or {}).items() if float(value) != 0}
    setting = setting_tuple({"blur": blur, "noise": noise, "jpeg": jpeg, **extra})
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed_for("eval", seed, image_key, setting_name(*setting)))
    image = gt.detach().to(device="cpu", dtype=torch.float64).reshape(1, *gt.shape[-3:])
    quality = int(jpeg) if jpeg else None
    # every setting through the factor pipeline; for blur / noise / JPEG it draws and rounds exactly as the
    # fixed blur-noise-store path always did (the same bytes: tests/test_evaluate.py)
    levels = {"blur": float(blur), "noise": float(noise), **extra, **({"jpeg": quality} if quality else {})}
    lq = degrade_levels(
        image, levels, generator, quantize_values=quantize, clip_values=clip_values, bits=bits
    )
    return lq.to(dtype=torch.float32).reshape(gt.shape).to(gt.device)
