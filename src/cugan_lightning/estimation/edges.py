"""The blur of a photo without noise, read off the width of its sharpest edges (docs/estimation.md, "Blur from
the edges").

A step edge blurred by a Gaussian of sigma ``s`` has a gradient whose peak, seen through a Gaussian derivative of
scale ``d``, is proportional to ``1 / sqrt(s^2 + d^2)``; blurred once more by ``r``, to
``1 / sqrt(s^2 + r^2 + d^2)``. The ratio of the two peaks at the same edge pixel is therefore
``sqrt(s^2 + r^2 + d^2) / sqrt(s^2 + d^2)``, which gives ``s`` with no unknown contrast. Read at the strongest
one percent of an image's edge pixels (Canny's, away from the border) and taken as their median, ``s`` is the
photo's blur plus the width its own edges had before it, which adds in quadrature (:data:`SOFT`, subtracted).

The finest derivative (:data:`FINE`) is the most precise, but a wide edge's gradient is small, and noise moves
its reading: past 3 px on a clean photo (noise estimate under :data:`CLEAN_NOISE`), past 1 px on one with a
little noise, the edge is read again at a coarser derivative (:data:`COARSE`, :data:`COARSE_NOISY`). On a noisy
photo (:data:`NOISE_BELOW` or more) the learned estimator reads blur instead. Chosen on McMaster18 (the restorer's
PSNR at the reading against at the truth, each photo scored with the choice made on the others) and checked on
CBSD432, never on a test set.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.feature import canny

from .common import Estimate

__all__ = ["CLEAN_NOISE", "COARSE", "COARSE_NOISY", "FINE", "NOISE_BELOW", "SOFT", "blur_from_edges"]

NOISE_BELOW = 3.0
"""Blur is read off the edges where the noise estimate (0..255) is under this; from it on, by the learned
estimator."""
FINE = (0.5, 0.75)
"""(derivative scale, blur again) in pixels of the first reading: the most precise without noise."""
COARSE = (1.0, 1.0)
"""... of the second reading on a clean photo, where the first reads 3 px or more ..."""
COARSE_NOISY = (1.5, 1.5)
"""... and on one with a little noise, where the first reads 1 px or more."""
CLEAN_NOISE = 1.0
"""A noise estimate (0..255) under this is a clean photo."""
SOFT = 0.6
"""The width (px) of a sharp photo's own edges, taken out of the reading in quadrature."""
TOP = 0.01
"""The share of edge pixels read: the strongest, whose neighbours disturb them least."""
MIN_EDGES = 20
"""Fewer edge pixels than this say nothing about blur."""
BORDER = 12
"""Edge pixels this close to the border are left out (the filters read the padding there)."""
LUMA = np.array([0.299, 0.587, 0.114])


def _second_reading(noise: float) -> tuple[float, tuple[float, float]]:
    """Where the fine reading stops (px), and the scales of the reading taken past it, at noise ``noise``."""
    return (3.0, COARSE) if noise < CLEAN_NOISE else (1.0, COARSE_NOISY)


def _width(y: np.ndarray, edges: np.ndarray, scales: tuple[float, float], read: int) -> float:
    """The median squared width (px^2) at the ``read`` strongest edge pixels, read at ``scales`` (derivative, blur
    again)."""
    derivative, again = scales
    sharp = ndimage.gaussian_gradient_magnitude(y, derivative)[edges]
    soft = ndimage.gaussian_gradient_magnitude(ndimage.gaussian_filter(y, again), derivative)[edges]
    strongest = np.argpartition(-sharp, read - 1)[:read]  # the median needs them chosen, not sorted
    ratio = sharp[strongest] / np.maximum(soft[strongest], 1e-12)
    widths = again**2 / np.maximum(ratio**2 - 1.0, 1e-6) - derivative**2
    return float(np.median(widths))


def _blur(width: float) -> float:
    """The blur (px) of a squared edge width (px^2): the photo's own width, :data:`SOFT`, taken out."""
    return float(np.sqrt(max(width - SOFT**2, 0.0)))


def blur_from_edges(rgb: np.ndarray, noise: float = 0.0) -> Estimate:
    """The blur sigma (px) of ``rgb`` ``(H, W, 3)`` (or ``(H, W)``) in [0, 1], read off its sharpest edges;
    ``noise`` is its noise estimate (0..255), which picks the derivative scale. ``value`` is None, with a reason,
    where the image has too few edges to read."""
    array = np.asarray(rgb, dtype=np.float64)
    y = array @ LUMA if array.ndim == 3 else array
    edges = np.zeros(y.shape, dtype=bool)
    if min(y.shape) > 2 * BORDER + 8:
        edges = canny(y, sigma=1.0)
        edges[:BORDER] = edges[-BORDER:] = False
        edges[:, :BORDER] = edges[:, -BORDER:] = False
    count = int(edges.sum())
    if count < MIN_EDGES:
        return Estimate(
            "blur",
            None,
            "edges",
            note=f"{count} edge pixels, too few to read a blur from (at least {MIN_EDGES})",
        )
    read = max(MIN_EDGES, int(TOP * count))
    value, scales = _blur(_width(y, edges, FINE, read)), FINE
    switch, coarse = _second_reading(noise)
    if value >= switch:
        value, scales = _blur(_width(y, edges, coarse, read)), coarse
    return Estimate(
        "blur",
        value,
        "edges",
        note=(
            f"the width of the sharpest edges ({read} pixels, derivative "
            f"{scales[0]:g} px); used for noise under {NOISE_BELOW:g}"
        ),
    )
