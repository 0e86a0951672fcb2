"""Noise sigma (0..255 scale) of an image, blind: two classical estimators.

- ``pca``: Chen, Zhu and Heng, "An Efficient Statistical Method for Image Noise Level Estimation" (ICCV 2015).
  The covariance of an image's overlapping patches has eigenvalues that mix image structure and noise; the
  smallest ones hold noise alone, so they are spread symmetrically around the noise variance. Walking from the
  largest eigenvalue down, the first tail whose mean is also its median (as many eigenvalues above the mean as
  below) is taken as pure noise, and its mean is sigma squared.
- ``wavelet``: scikit-image's ``estimate_sigma``, the median absolute deviation of the finest diagonal wavelet
  coefficients divided by 0.6745 (Donoho and Johnstone), averaged over the colour channels.

Both see the image as stored: 8-bit rounding adds a variance of 1/12 (sigma 0.29) and clipping at 0 and 255
removes some, which is why the paper's protocol is the one to measure them on (docs/estimation.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import Estimate

__all__ = ["NOISE_ESTIMATORS", "estimate_noise", "noise_pca", "noise_wavelet"]

PATCH = 7
"""Patch side of the PCA estimator (Chen et al. use 7 or 8)."""
MAX_PATCHES = 60_000
"""Patches drawn for the covariance: a regular subsample of all overlapping ones, enough for a stable estimate."""


def _as_float255(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)``, float on 0..1 or integers on 0..255 (uint8) -> float64 ``(H, W, C)`` on
    0..255."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"an image is (H, W) or (H, W, C); got an array of shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64)
    if np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"integer images are read as uint8 (0..255); got {array.dtype}: convert it to float 0..1"
        )
    return array.astype(np.float64) * 255.0


LUMA = np.array([0.299, 0.587, 0.114])
"""BT.601 luma weights: i.i.d. RGB noise of sigma s has sigma ``s * |LUMA|`` in Y."""


def noise_pca(image: np.ndarray, patch: int = PATCH, luma: bool = False) -> Estimate:
    """Chen et al.'s patch-PCA estimate of the noise sigma on 0..255.

    ``luma``: estimate on the BT.601 luma channel and scale back to RGB sigma, for JPEG files: 4:2:0 chroma
    subsampling removes whole directions of the RGB patch space, whose near-zero eigenvalues would read as no
    noise. On other images RGB is the more accurate (luma alone overestimates weak noise on textured images)."""
    x = _as_float255(image)
    scale = 1.0
    if luma and x.shape[2] == 3:
        gray = bool(np.array_equal(x[:, :, 0], x[:, :, 1]) and np.array_equal(x[:, :, 1], x[:, :, 2]))
        x = (x @ LUMA)[:, :, None]
        scale = 1.0 if gray else 1.0 / float(np.linalg.norm(LUMA))
    height, width, channels = x.shape
    if height < 2 * patch or width < 2 * patch:
        return Estimate(
            "noise", None, "pca", note=f"the image is under {2 * patch}x{2 * patch} pixels: too small"
        )
    windows = np.lib.stride_tricks.sliding_window_view(x, (patch, patch), axis=(0, 1))
    step = max(1, int(np.ceil(np.sqrt(windows.shape[0] * windows.shape[1] / MAX_PATCHES))))
    patches = windows[::step, ::step].reshape(-1, channels * patch * patch)
    patches = patches - patches.mean(axis=0)
    covariance = patches.T @ patches / len(patches)
    eigenvalues = np.clip(np.linalg.eigvalsh(covariance)[::-1], 0.0, None)  # largest first
    for start in range(len(eigenvalues)):
        tail = eigenvalues[start:]
        tau = tail.mean()
        if np.sum(tail > tau) >= np.sum(tail < tau):
            break
    sigma = float(np.sqrt(tau)) * scale
    note = "flat image: no texture to tell noise from" if eigenvalues[0] < 1e-6 else ""
    return Estimate("noise", sigma, "pca (luma)" if luma else "pca", note=note)


def noise_wavelet(image: np.ndarray) -> Estimate:
    """scikit-image's wavelet (median absolute deviation) estimate of the noise sigma on 0..255."""
    from skimage.restoration import estimate_sigma

    x = _as_float255(image)
    if min(x.shape[:2]) < 4:
        return Estimate("noise", None, "wavelet", note="the image is under 4x4 pixels: too small")
    sigma = float(estimate_sigma(x, channel_axis=-1, average_sigmas=True))
    return Estimate("noise", sigma, "wavelet")


NOISE_ESTIMATORS: dict[str, Callable[[np.ndarray], Estimate]] = {"pca": noise_pca, "wavelet": noise_wavelet}


def estimate_noise(image: np.ndarray, method: str = "pca") -> Estimate:
    """The noise sigma of ``image`` on 0..255 by ``method`` (a key of :data:`NOISE_ESTIMATORS`)."""
    if method not in NOISE_ESTIMATORS:
        raise ValueError(f"unknown noise estimator '{method}'; choose one of {sorted(NOISE_ESTIMATORS)}")
    return NOISE_ESTIMATORS[method](image)
