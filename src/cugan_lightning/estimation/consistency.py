"""The blur of a noisy photo read as little blur, found where the restorer itself stops explaining it
(docs/estimation.md, "Blur by consistency").

A restorer told blur ``b`` returns an image which, blurred again by ``b``, should give back the input it was given.
While ``b`` is at most the photo's own blur, it can: it removes part of the blur, and blurring puts it back. Past
it, no image blurred by ``b`` is the input, and the restorer's answer, blurred, drifts away from it quickly. So the
photo's blur is where that drift first jumps, and the estimate sits a quarter pixel under it, because reading too
much blur costs a restoration far more than reading too little. With noise the drift grows smoothly and the jump
is lost, so the search runs on the photo denoised by the restorer itself (restored at blur 0 and the estimated
noise), whose blur is the photo's own, and only for a learned estimator whose calibration names a
``denoised_search_below`` (one that cannot tell blur 0 from blur 1 under noise, as the first one the zoo shipped
could not): where it reads less blur than that. A photo without noise has its blur read off its edges instead
(:mod:`.edges`: measured better, and with no restoration). The thresholds were chosen on McMaster18 with the
zoo's ``cunet-blur-noise``, never on a test set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from ..degradations import LevelCodec
from ..degradations.blur import gaussian_blur
from .common import Estimate
from .edges import NOISE_BELOW

__all__ = [
    "blur_by_consistency",
    "consistency_applies",
    "consistency_drift",
]

STEP = 0.25
"""Blur levels tried: 0, STEP, 2 * STEP, ... up to the codec's maximum."""
JUMP = 1.6
"""A drift at least this many times the previous level's ..."""
RISE = 5e-5
"""... and at least this much above it (mean squared, on 0..1) is the jump."""
MARGIN = 0.25
"""The estimate is the last level before the jump, less this (pixels)."""
SIDE = 256
"""The search looks at the central ``SIDE x SIDE`` pixels."""
BORDER = 10
"""Pixels left out at each edge of the drift (where the blur reads the padding)."""

Restore = Callable[[Tensor, Mapping[str, float]], Tensor]
"""Restores ``(1, C, H, W)`` in [0, 1] at levels by factor name."""


def consistency_drift(
    x: Tensor, restore: Restore, levels: Mapping[str, float], blur: float, base: Tensor
) -> float:
    """The mean squared difference, away from the border, between the restoration of ``x`` at ``blur`` (the other
    factors at ``levels``) blurred again by ``blur``, and ``base``: the restoration at blur 0."""
    out = restore(x, {**levels, "blur": float(blur)}).float()
    reblurred = gaussian_blur(out, float(blur)) if blur > 0 else out
    inner = (..., slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    return float(torch.mean((reblurred - base)[inner] ** 2))


def consistency_applies(estimates: Mapping[str, Estimate], denoised_below: float | None = None) -> bool:
    """Whether :func:`blur_by_consistency` would search: a blur factor, noise estimated at :data:`NOISE_BELOW`
    or more, and a blur estimated under ``denoised_below`` (px; None: never)."""
    noise, blur = estimates.get("noise"), estimates.get("blur")
    if blur is None or blur.value is None or noise is None or noise.value is None or denoised_below is None:
        return False
    return noise.value >= NOISE_BELOW and blur.value < denoised_below


def _search(x: Tensor, restore: Restore, levels: dict[str, float], top_level: float) -> float | None:
    """The last level before the drift jumps, less MARGIN; None where no level up to ``top_level`` jumps."""
    base = restore(x, {**levels, "blur": 0.0}).float()
    previous: float | None = None
    # one level at a time, so that the search stops at the jump (a photo blurred by 2 px: 10 passes, not 17)
    for b in np.arange(STEP, top_level + STEP / 2, STEP):
        drift = consistency_drift(x, restore, levels, float(b), base)
        if previous is not None and drift > JUMP * previous and drift - previous > RISE:
            return max(0.0, float(b) - STEP - MARGIN)
        previous = drift
    return None


def blur_by_consistency(
    estimates: dict[str, Estimate],
    x: Tensor,
    codec: LevelCodec,
    restore: Restore,
    denoised_below: float | None = None,
) -> dict[str, Estimate]:
    """``estimates`` with the blur found by consistency where it applies (:func:`consistency_applies`, and an
    image at least ``4 * BORDER`` pixels on a side); otherwise unchanged. ``x`` is the image ``(1, C, H, W)`` in
    [0, 1] as the restorer takes it; the search looks at its central ``SIDE x SIDE`` pixels, denoised first.
    ``denoised_below``: the learned estimator's
    :attr:`~cugan_lightning.estimation.LearnedEstimator.denoised_search_below`."""
    if not consistency_applies(estimates, denoised_below) or min(x.shape[-2:]) < 4 * BORDER:
        return estimates
    top, left = max(0, (x.shape[-2] - SIDE) // 2), max(0, (x.shape[-1] - SIDE) // 2)
    x = x[..., top : top + SIDE, left : left + SIDE]
    levels = {name: float(e.value or 0.0) for name, e in estimates.items() if name in codec.names}
    top_level = codec.max_levels[codec.names.index("blur")]
    # the photo denoised at blur 0 keeps its own blur, and is searched as a photo without noise
    x = restore(x, {**levels, "blur": 0.0}).float().clamp(0.0, 1.0)
    found = _search(x, restore, {**levels, "noise": 0.0}, top_level)
    if found is None:  # no jump: the learned reading of little blur stands
        return estimates
    note = (
        "where restoring the photo, denoised, stops giving it back; used where the learned blur is under "
        f"{denoised_below:g} px"
    )
    return {
        **estimates,
        "blur": replace(estimates["blur"], value=round(found, 2), method="consistency", note=note),
    }
