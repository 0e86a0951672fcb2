"""Isotropic Gaussian blur with a different sigma per sample, batched on any device, through kornia."""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

__all__ = ["gaussian_blur", "gaussian_kernel1d", "gaussian_kernel2d"]

Sigma = float | Tensor


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_number(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _check_tensor(values: Tensor, name: str) -> None:
    # Only CPU tensors are checked: checking a device tensor would stall the host on every training step.
    if values.device.type == "cpu" and values.numel() > 0:
        bad = ~torch.isfinite(values) | (values < 0)
        if bool(bad.any()):
            first = values[bad][0].item()
            raise ValueError(f"{name} must be finite and >= 0, got {first}")


def per_sample(
    value: Sigma,
    batch: int | None,
    name: str,
    device: torch.device | str | None = None,
) -> Tensor:
    """Turn a float or a `(B,)` / 0-d tensor into a float64 vector `(B,)` (`(1,)` for a float without batch).

    Values must be >= 0. A tensor keeps its device unless `device` is given.
    """
    if _is_number(value):
        scalar = _check_number(value, name)
        return torch.full((batch or 1,), scalar, dtype=torch.float64, device=device)
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a float or a tensor of shape (B,), got {type(value).__name__}")
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must be a real tensor, got dtype {value.dtype}")
    if value.dim() > 1:
        raise ValueError(f"{name} must be a float or a tensor of shape (B,), got shape {tuple(value.shape)}")
    _check_tensor(value, name)
    vector = value.reshape(-1).to(device=device, dtype=torch.float64)
    if batch is not None and vector.numel() != batch:
        if vector.numel() != 1:
            raise ValueError(f"{name} has {vector.numel()} values for a batch of {batch}")
        vector = vector.expand(batch)
    return vector


def _check_size(size: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size!r}")
    return size


def _kernel_dtype(sigma: Sigma, dtype: torch.dtype | None) -> torch.dtype:
    if dtype is not None:
        return dtype
    if isinstance(sigma, Tensor) and sigma.is_floating_point():
        return sigma.dtype
    return torch.get_default_dtype()


def _kernel1d_float64(sigma: Tensor, size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels `(B, size)` in float64 for sigma `(B,)` float64."""
    half = size // 2
    offsets = torch.arange(-half, half + 1, dtype=torch.float64, device=sigma.device)
    positive = sigma > 0
    # sigma 0 would divide by zero; give it a harmless stand-in and select the delta kernel below.
    safe = torch.where(positive, sigma, torch.ones_like(sigma))
    kernel = torch.exp(-(offsets**2) / (2 * safe[:, None] ** 2))
    delta = (offsets == 0).to(torch.float64).expand_as(kernel)
    kernel = torch.where(positive[:, None], kernel, delta)
    return kernel / kernel.sum(dim=1, keepdim=True)


def gaussian_kernel1d(
    sigma: Sigma,
    size: int = 21,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Normalised 1-D Gaussian kernels `(B, size)` on the offsets -(size//2)..size//2.

    `sigma` is a float (B = 1) or a tensor `(B,)`; sigma 0 gives the delta kernel. Computed in float64 and returned
    in `dtype` (default: sigma's floating dtype, else torch's default dtype).
    """
    size = _check_size(size)
    sigma64 = per_sample(sigma, None, "blur sigma", device)
    return _kernel1d_float64(sigma64, size).to(_kernel_dtype(sigma, dtype))


def gaussian_kernel2d(
    sigma: Sigma,
    size: int = 21,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Normalised isotropic 2-D Gaussian kernels `(B, size, size)`; see `gaussian_kernel1d`."""
    size = _check_size(size)
    sigma64 = per_sample(sigma, None, "blur sigma", device)
    k1 = _kernel1d_float64(sigma64, size)
    kernel = k1[:, :, None] * k1[:, None, :]
    kernel = kernel / kernel.sum(dim=(1, 2), keepdim=True)
    return kernel.to(_kernel_dtype(sigma, dtype))


def check_image(x: Tensor, name: str = "image") -> None:
    """Raise unless `x` is a floating-point batch `(B, C, H, W)`."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tensor of shape (B, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")


def gaussian_blur(x: Tensor, sigma: Sigma, kernel_size: int = 21) -> Tensor:
    """Blur `x` `(B, C, H, W)` with an isotropic Gaussian of std `sigma` (float or `(B,)`, one per sample).

    Borders are padded by replicating the edge (kernel_size // 2 pixels), so the output has x's shape and dtype.
    Samples with sigma 0 come back bit for bit unchanged. Channels, height and width are whatever x has.
    """
    check_image(x)
    size = _check_size(kernel_size)
    batch = x.shape[0]
    if _is_number(sigma) and _check_number(sigma, "blur sigma") == 0:
        return x.clone()
    sigma64 = per_sample(sigma, batch, "blur sigma", x.device)
    if batch == 0:
        return x.clone()

    # kornia's Gaussian filtering: one separable pass over the batch, a kernel per sample (two 1-D convolutions
    # cost 2k instead of k^2 multiplications per pixel), the border replicated. Sigma 0 has no Gaussian: those
    # samples get a stand-in kernel here and their input back below, bit for bit.
    from kornia.filters import filter2d_separable, get_gaussian_kernel1d

    positive = sigma64 > 0
    safe = torch.where(positive, sigma64, torch.ones_like(sigma64))
    kernel = get_gaussian_kernel1d(size, safe[:, None]).to(x.dtype)  # (B, size), normalised
    out = filter2d_separable(x, kernel, kernel, border_type="replicate")
    return torch.where(positive.view(batch, 1, 1, 1), out, x)
