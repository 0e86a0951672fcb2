"""The fixed evaluation grid: the paper's (blur, noise) settings and reproducible per-image degradations.

A setting is ``(blur sigma, noise sigma)`` or, with JPEG, ``(blur sigma, noise sigma, JPEG quality)`` (quality 0:
none), named ``b2_n30`` / ``b2_n30_q30``. A JPEG setting's input goes through libjpeg itself (a real file's
compression), after blur, noise and 8-bit quantisation.
"""

from __future__ import annotations

import math
import re

import torch
from torch import Tensor

from cugan_lightning.degradations.noise import degrade
from cugan_lightning.degradations.sampling import seed_for

__all__ = [
    "JPEG_SETTINGS",
    "PAPER_SETTINGS",
    "SETTING_LISTS",
    "degrade_fixed",
    "parse_setting",
    "setting_levels",
    "setting_name",
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

SETTING_LISTS: dict[str, tuple[tuple[float, ...], ...]] = {"paper": PAPER_SETTINGS, "jpeg": JPEG_SETTINGS}
"""The named lists the configs use (``${cugan.settings:paper,jpeg}``)."""

_NUMBER = r"(\d+(?:\.\d+)?)"
_SETTING = re.compile(rf"b{_NUMBER}_n{_NUMBER}(?:_q(\d+))?")


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


def setting_name(blur: float, noise: float, jpeg: float = 0) -> str:
    """Name of a setting, e.g. "b2_n30", "b1.5_n25", and with JPEG quality 30 "b2_n30_q30"."""
    name = f"b{_format_level(blur, 'blur')}_n{_format_level(noise, 'noise')}"
    return f"{name}_q{_format_quality(jpeg)}" if float(jpeg) != 0 else name


def setting_levels(setting: tuple[float, ...]) -> tuple[float, float, float]:
    """``(blur, noise)`` or ``(blur, noise, jpeg quality)`` -> the three, quality 0 for none."""
    if len(setting) not in (2, 3):
        raise ValueError(f"a setting is (blur, noise) or (blur, noise, jpeg quality), got {tuple(setting)}")
    blur, noise, *jpeg = (float(v) for v in setting)
    return blur, noise, jpeg[0] if jpeg else 0.0


def parse_setting(name: str) -> tuple[float, ...]:
    """Inverse of `setting_name`: "b2_n30" -> (2.0, 30.0), "b2_n30_q30" -> (2.0, 30.0, 30.0)."""
    match = _SETTING.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(
            f"setting {name!r} is not of the form 'b<blur sigma>_n<noise sigma>[_q<jpeg quality>]', e.g. 'b2_n30'"
        )
    levels = (float(match.group(1)), float(match.group(2)))
    return (*levels, float(match.group(3))) if match.group(3) is not None else levels


def degrade_fixed(
    gt: Tensor,
    blur: float,
    noise: float,
    image_key: str | int,
    seed: int = 0,
    quantize: bool = True,
    jpeg: float = 0,
    clip_values: bool = True,
    bits: int = 8,
) -> Tensor:
    """Degrade one evaluation image gt `(C, H, W)` or `(1, C, H, W)` in [0, 1] reproducibly; lq has gt's shape.

    The same (image_key, setting, seed) gives the same lq on every call and every machine: the work runs on the
    CPU in float64 (torch's float32 normal sampling has vectorised CPU paths that may differ between machines),
    with noise from a CPU generator seeded by `seed_for("eval", seed, image_key, setting_name(blur, noise, jpeg))`.
    ``jpeg`` (a quality, 0: none) then compresses with libjpeg; ``bits`` (8 or 16) is the quantisation's depth. ``quantize=False, clip_values=False`` is the
    standard denoising protocol (noise added in floating point, values left outside [0, 1]). Returned as float32
    on gt's device.
    """
    if not isinstance(gt, Tensor) or gt.dim() not in (3, 4) or (gt.dim() == 4 and gt.shape[0] != 1):
        shape = tuple(gt.shape) if isinstance(gt, Tensor) else type(gt).__name__
        raise ValueError(f"gt must be one image of shape (C, H, W) or (1, C, H, W), got {shape}")
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed_for("eval", seed, image_key, setting_name(blur, noise, jpeg)))
    image = gt.detach().to(device="cpu", dtype=torch.float64).reshape(1, *gt.shape[-3:])
    quality = int(jpeg) if jpeg else None
    lq = degrade(
        image, float(blur), float(noise), generator=generator, quantize=quantize, jpeg_quality=quality,
        clip_values=clip_values, bits=bits,
    )  # fmt: skip
    return lq.to(dtype=torch.float32).reshape(gt.shape).to(gt.device)
