"""Additive Gaussian noise, clipping, 8- or 16-bit quantisation, optional JPEG, and the full degradation `degrade`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from cugan_lightning.degradations.blur import (
    Sigma,
    _check_number,
    _is_number,
    check_image,
    gaussian_blur,
    per_sample,
)
from cugan_lightning.degradations.jpeg import jpeg_device

__all__ = ["add_gaussian_noise", "clip", "degrade", "jpeg_compress", "quantize", "store"]

Quality = int | Sequence[int] | Tensor | None


def add_gaussian_noise(x: Tensor, sigma: Sigma, generator: torch.Generator | None = None) -> Tensor:
    """Return `x + N(0, (sigma / 255)^2)` for x `(B, ...)` and sigma on the 0..255 scale (float or `(B,)`).

    The noise is drawn on the generator's device (x's device without a generator) in x's dtype and moved to x's
    device, so a CPU generator gives the same draws for CPU and CUDA images. Samples with sigma 0 come back
    unchanged; a float sigma of 0 draws nothing. No clipping.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 1:
        raise TypeError("noise input must be a floating-point tensor of shape (B, ...)")
    if _is_number(sigma) and _check_number(sigma, "noise sigma") == 0:
        return x.clone()
    sigma64 = per_sample(sigma, x.shape[0], "noise sigma", x.device)
    draw_device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=draw_device).to(x.device)
    shape = (-1,) + (1,) * (x.dim() - 1)
    scale = (sigma64 / 255.0).to(x.dtype).view(shape)
    return torch.where((sigma64 > 0).view(shape), x + noise * scale, x)


def clip(x: Tensor) -> Tensor:
    """Clamp to the valid image range [0, 1]."""
    return x.clamp(0.0, 1.0)


BITS = (8, 16)


def quantize(x: Tensor, bits: int = 8) -> Tensor:
    """Clamp to [0, 1] and round to the nearest multiple of 1/255 (``bits=8``, as if stored as uint8) or of
    1/65535 (``bits=16``, as if stored as uint16)."""
    if bits not in BITS:
        raise ValueError(f"quantisation bits must be 8 or 16 (degradation.bits), got {bits!r}")
    levels = 255.0 if bits == 8 else 65535.0
    return torch.round(x.clamp(0.0, 1.0) * levels) / levels


def _per_sample_quality(quality: Quality, batch: int) -> list[int]:
    if quality is None:
        return [0] * batch
    if isinstance(quality, Tensor):
        whole = not quality.is_floating_point() or bool((quality == quality.round()).all())
        if quality.is_complex() or quality.dim() > 1 or not whole:
            raise ValueError(
                f"jpeg quality must be an int or a tensor (B,) of whole numbers, got {quality!r}"
            )
        values = [int(q) for q in quality.reshape(-1).tolist()]
    elif isinstance(quality, int) and not isinstance(quality, bool):
        values = [quality]
    elif isinstance(quality, Sequence) and not isinstance(quality, str):
        values = [0 if q is None else int(q) for q in quality]
    else:
        raise ValueError(f"jpeg quality must be an int, a sequence of ints or a tensor (B,), got {quality!r}")
    if len(values) == 1:
        values = values * batch
    if len(values) != batch:
        raise ValueError(f"jpeg quality has {len(values)} values for a batch of {batch}")
    for q in values:
        if not 0 <= q <= 100:
            raise ValueError(f"jpeg quality {q} is outside 1..100 (0 or None means no JPEG)")
    return values


def jpeg_compress(x: Tensor, quality: Quality) -> Tensor:
    """JPEG-compress each sample of x `(B, C, H, W)` in [0, 1] (C = 1 or 3) at its own quality.

    `quality` is an int or `(B,)` ints in 1..100, where 0 / None leaves a sample untouched. Runs per sample on the
    CPU through torchvision and returns multiples of 1/255 in x's dtype on x's device; not differentiable.
    """
    check_image(x)
    qualities = _per_sample_quality(quality, x.shape[0])
    if not any(qualities):
        return x.clone()
    if x.shape[1] not in (1, 3):
        raise ValueError(f"jpeg needs 1 or 3 channels, got {x.shape[1]}")
    # torchvision is imported here so that importing the degradations stays light.
    from torchvision.io import decode_jpeg, encode_jpeg

    as_uint8 = torch.round(x.detach().clamp(0.0, 1.0) * 255.0).to(torch.uint8).cpu()
    out = x.detach().clone()
    for i, q in enumerate(qualities):
        if q > 0:
            decoded = decode_jpeg(encode_jpeg(as_uint8[i].contiguous(), quality=q))
            out[i] = decoded.to(device=x.device, dtype=x.dtype) / 255.0
    return out


def degrade(
    gt: Tensor,
    blur_sigma: Sigma,
    noise_sigma: Sigma,
    generator: torch.Generator | None = None,
    quantize: bool = True,
    jpeg_quality: Quality = None,
    jpeg_codec: str = "libjpeg",
    clip_values: bool = True,
    bits: int = 8,
) -> Tensor:
    """Degrade gt `(B, C, H, W)` in [0, 1] into lq of the same shape and dtype.

    Order (docs/degradations.md): Gaussian blur (`blur_sigma`, pixels), Gaussian noise (`noise_sigma`, 0..255 scale,
    drawn from `generator`), clip to [0, 1], quantisation to `bits` (8 or 16) if `quantize`, then JPEG if `jpeg_quality`
    (which quantises by itself; 0 leaves a sample uncompressed). Levels are floats or `(B,)` tensors.
    ``jpeg_codec``: ``"libjpeg"`` (a real file's compression, on the CPU, per sample: evaluation inputs) or
    ``"device"`` (the batched codec of :mod:`.jpeg` on x's device, which follows libjpeg: training).
    ``clip_values=False`` with ``quantize=False`` leaves the noisy values unclipped (the standard denoising
    protocol of published denoisers); quantisation always clips first.
    """
    check_image(gt, "gt")
    lq = gaussian_blur(gt, blur_sigma)
    lq = add_gaussian_noise(lq, noise_sigma, generator=generator)
    return store(lq, quantize, clip_values, jpeg_quality, jpeg_codec, bits)


def store(
    lq: Tensor,
    quantize: bool = True,
    clip_values: bool = True,
    jpeg_quality: Quality = None,
    jpeg_codec: str = "libjpeg",
    bits: int = 8,
) -> Tensor:
    """The end of every degradation (:func:`degrade`, and level maps' ``degrade_map``): a blurred, noisy ``lq``
    quantised to the data's ``bits`` (8, or 16 for 16-bit data; or clipped, or left as it is), then
    JPEG-compressed when ``jpeg_quality`` says so."""
    if quantize:
        lq = _quantize(lq, bits)
    elif clip_values:
        lq = clip(lq)
    if jpeg_quality is not None:
        if jpeg_codec == "device":
            quality = jpeg_quality if isinstance(jpeg_quality, Tensor) else torch.as_tensor(jpeg_quality)
            lq = jpeg_device(lq, quality.reshape(-1).expand(lq.shape[0]))
        elif jpeg_codec == "libjpeg":
            lq = jpeg_compress(lq, jpeg_quality)
        else:
            raise ValueError(f"jpeg_codec must be 'libjpeg' or 'device', got {jpeg_codec!r}")
    return lq


# `degrade` takes a flag called `quantize`; this alias keeps the function reachable inside it.
_quantize = quantize
