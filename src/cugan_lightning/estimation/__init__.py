"""Blind estimates of the degradation levels of a photograph, in the codec's physical units (docs/estimation.md).

Each estimator returns an :class:`Estimate`: a level (or ``None``), the method that produced it, and a one-line
note saying how far to trust it (or why there is no value), so that a flat, tiny or unusual image gets a stated
answer rather than an exception.

- ``noise``: sigma on the 0..255 scale, by two classical estimators measured against each other
  (:mod:`.noise`): the patch-PCA estimator of Chen, Zhu and Heng (ICCV 2015) and scikit-image's wavelet
  estimator (Donoho's median absolute deviation of the finest diagonal wavelet band).
- ``jpeg``: the IJG quality read off a JPEG file's quantisation tables, exact when the tables are IJG's, and
  off the steps a decoded JPEG's pixels still sit on (:mod:`.jpeg`).
- every factor of a codec (blur, noise, JPEG from pixels): a small network trained on the restorer's own
  degradations (:mod:`.learned`, ``experiment=estimator_cpu``), with a per-region map.
- ``blur`` of a photo without noise: the width of its sharpest edges (:mod:`.edges`); of a noisy one read as
  little blur by an estimator that asks for it: where the restorer itself stops explaining it, denoised
  (:mod:`.consistency`).
"""

from __future__ import annotations

from .common import Estimate
from .consistency import blur_by_consistency, consistency_applies
from .edges import blur_from_edges
from .jpeg import jpeg_quality_from_file, jpeg_quality_from_pixels, jpeg_quality_from_tables
from .learned import LearnedEstimator, find_estimator, load_estimator, save_estimator
from .levels import estimate_levels
from .noise import NOISE_ESTIMATORS, estimate_noise

__all__ = [
    "NOISE_ESTIMATORS",
    "Estimate",
    "blur_by_consistency",
    "blur_from_edges",
    "consistency_applies",
    "LearnedEstimator",
    "estimate_levels",
    "estimate_noise",
    "find_estimator",
    "jpeg_quality_from_file",
    "jpeg_quality_from_pixels",
    "jpeg_quality_from_tables",
    "load_estimator",
    "save_estimator",
]
