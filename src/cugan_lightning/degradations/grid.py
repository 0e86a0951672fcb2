"""The fixed evaluation grid: the paper's (blur, noise) settings and reproducible per-image degradations."""

from __future__ import annotations

import math
import re

import torch
from torch import Tensor

from cugan_lightning.degradations.noise import degrade
from cugan_lightning.degradations.sampling import seed_for

__all__ = ["PAPER_SETTINGS", "degrade_fixed", "parse_setting", "setting_name"]

# (blur sigma, noise sigma) of the paper's Tables 1 and 2 (SPEC section 6).
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

_NUMBER = r"(\d+(?:\.\d+)?)"
_SETTING = re.compile(rf"b{_NUMBER}_n{_NUMBER}")


def _format_level(value: float, name: str) -> str:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} level must be a finite number >= 0, got {value}")
    # Six decimals absorb float32 round-off (2.2999999523 is "2.3") and never produce an exponent.
    return f"{value:.6f}".rstrip("0").rstrip(".")


def setting_name(blur: float, noise: float) -> str:
    """Name of a (blur sigma, noise sigma) setting, e.g. "b2_n30", "b0_n50", "b1.5_n25"."""
    return f"b{_format_level(blur, 'blur')}_n{_format_level(noise, 'noise')}"


def parse_setting(name: str) -> tuple[float, float]:
    """Inverse of `setting_name`: "b2_n30" -> (2.0, 30.0)."""
    match = _SETTING.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(f"setting {name!r} is not of the form 'b<blur sigma>_n<noise sigma>', e.g. 'b2_n30'")
    return float(match.group(1)), float(match.group(2))


def degrade_fixed(
    gt: Tensor,
    blur: float,
    noise: float,
    image_key: str | int,
    seed: int = 0,
    quantize: bool = True,
) -> Tensor:
    """Degrade one evaluation image gt `(C, H, W)` or `(1, C, H, W)` in [0, 1] reproducibly; lq has gt's shape.

    The same (image_key, setting, seed) gives the same lq on every call and every machine: the work runs on the
    CPU in float64 (torch's float32 normal sampling has vectorised CPU paths that may differ between machines),
    with noise from a CPU generator seeded by `seed_for("eval", seed, image_key, setting_name(blur, noise))`.
    Returned as float32 on gt's device.
    """
    if not isinstance(gt, Tensor) or gt.dim() not in (3, 4) or (gt.dim() == 4 and gt.shape[0] != 1):
        shape = tuple(gt.shape) if isinstance(gt, Tensor) else type(gt).__name__
        raise ValueError(f"gt must be one image of shape (C, H, W) or (1, C, H, W), got {shape}")
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed_for("eval", seed, image_key, setting_name(blur, noise)))
    image = gt.detach().to(device="cpu", dtype=torch.float64).reshape(1, *gt.shape[-3:])
    lq = degrade(image, float(blur), float(noise), generator=generator, quantize=quantize)
    return lq.to(dtype=torch.float32).reshape(gt.shape).to(gt.device)
