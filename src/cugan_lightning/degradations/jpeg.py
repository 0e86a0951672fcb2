"""JPEG compression on the training device, following libjpeg's arithmetic, a different quality per sample.

Real JPEG files are what users restore, and they are written by libjpeg (Pillow, OpenCV, cameras' firmware
mostly follow it). So the device codec follows libjpeg step by step rather than a textbook codec: the JFIF
colour conversion in its 16-bit fixed point, 4:2:0 chroma by 2x2 box averages with libjpeg's alternating
rounding bias, the IJG quantisation tables scaled by quality as ``jpeg_set_quality`` does (entries clamped to
1..255, baseline), coefficients rounded half away from zero, and on decoding libjpeg's default "fancy"
(triangular) chroma upsampling and its fixed-point colour conversion. Only the DCTs are floating point
(libjpeg's default is an integer approximation of the same transform), which is where the small remaining
difference to Pillow's output comes from (``benchmarks/bench_jpeg.py`` measures it).

Pure torch, batched, differentiable nowhere (rounding everywhere, as in a file); samples of quality 0 pass
through untouched.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["jpeg_device", "quality_tables"]

# IJG's base tables (JPEG standard, Annex K), in natural (row-major) order
_LUMA = (
    (16, 11, 10, 16, 24, 40, 51, 61), (12, 12, 14, 19, 26, 58, 60, 55), (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62), (18, 22, 37, 56, 68, 109, 103, 77), (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101), (72, 92, 95, 98, 112, 100, 103, 99),
)  # fmt: skip
_CHROMA = (
    (17, 18, 24, 47, 99, 99, 99, 99), (18, 21, 26, 66, 99, 99, 99, 99), (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99), (99, 99, 99, 99, 99, 99, 99, 99), (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99), (99, 99, 99, 99, 99, 99, 99, 99),
)  # fmt: skip

_SCALEBITS = 16
_HALF = 1 << (_SCALEBITS - 1)


def _fix(value: float) -> int:
    return int(value * (1 << _SCALEBITS) + 0.5)


def quality_tables(quality: Tensor) -> tuple[Tensor, Tensor]:
    """The luma and chroma quantisation tables ``(B, 8, 8)`` for qualities ``(B,)`` in 1..100, scaled as
    libjpeg's ``jpeg_set_quality`` with ``force_baseline`` (entries clamped to 1..255)."""
    q = quality.to(torch.int64).clamp(1, 100)
    scale = torch.where(q < 50, 5000 // q, 200 - 2 * q)[:, None, None]
    tables = []
    for base in (_LUMA, _CHROMA):
        table = torch.tensor(base, dtype=torch.int64, device=quality.device)
        tables.append(torch.div(table * scale + 50, 100, rounding_mode="floor").clamp(1, 255))
    return tables[0], tables[1]


def _dct_matrix(device: torch.device) -> Tensor:
    """The orthonormal 8-point DCT-II matrix ``C`` (``C @ block @ C.T`` is the 2-D DCT, scaled as JPEG's)."""
    k = torch.arange(8, dtype=torch.float64, device=device)
    matrix = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    matrix[0] /= math.sqrt(2)
    return matrix.float()


def _rgb_to_ycc(rgb: Tensor) -> Tensor:
    """libjpeg's RGB -> YCbCr (jccolor.c), integers in 0..255: ``(B, 3, H, W)`` int64 in and out."""
    r, g, b = rgb.unbind(1)
    y = (_fix(0.29900) * r + _fix(0.58700) * g + _fix(0.11400) * b + _HALF) >> _SCALEBITS
    offset = (128 << _SCALEBITS) + _HALF - 1
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + offset) >> _SCALEBITS
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + offset) >> _SCALEBITS
    return torch.stack([y, cb, cr], dim=1)


def _ycc_to_rgb(ycc: Tensor) -> Tensor:
    """libjpeg's YCbCr -> RGB (jdcolor.c), with its range limit: int64 ``(B, 3, H, W)`` in and out."""
    y, cb, cr = ycc.unbind(1)
    cb, cr = cb - 128, cr - 128
    r = y + ((_fix(1.40200) * cr + _HALF) >> _SCALEBITS)
    g = y + ((-_fix(0.34414) * cb - _fix(0.71414) * cr + _HALF) >> _SCALEBITS)
    b = y + ((_fix(1.77200) * cb + _HALF) >> _SCALEBITS)
    return torch.stack([r, g, b], dim=1).clamp(0, 255)


def _downsample(chroma: Tensor) -> Tensor:
    """2x2 box average with libjpeg's alternating bias 1, 2 (jcsample.c h2v2): ``(B, H, W)`` int64."""
    total = chroma[:, 0::2, 0::2] + chroma[:, 0::2, 1::2] + chroma[:, 1::2, 0::2] + chroma[:, 1::2, 1::2]
    bias = torch.ones(total.shape[-1], dtype=total.dtype, device=total.device)
    bias[1::2] = 2
    return (total + bias) >> 2


def _upsample(chroma: Tensor) -> Tensor:
    """libjpeg's h2v2 "fancy" upsampling (jdsample.c): a triangular filter, 3/4 near and 1/4 far in each
    direction, with its rounding biases 8 and 7, edges replicated. ``(B, h, w)`` -> ``(B, 2h, 2w)`` int64."""
    padded = F.pad(chroma[:, None].float(), (0, 0, 1, 1), mode="replicate")[:, 0].long()
    above, here, below = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]
    rows = torch.stack([3 * here + above, 3 * here + below], dim=2).flatten(1, 2)  # (B, 2h, w) "colsums"
    side = F.pad(rows[:, None].float(), (1, 1, 0, 0), mode="replicate")[:, 0].long()
    left, mid, right = side[:, :, :-2], side[:, :, 1:-1], side[:, :, 2:]
    # interior columns: (3 * this + neighbour + 8 | 7) >> 4; the first and last: (4 * this + 8 | 7) >> 4,
    # which is the same formula with the edge column replicated
    out = torch.stack([(3 * mid + left + 8) >> 4, (3 * mid + right + 7) >> 4], dim=3).flatten(2, 3)
    return out


def _blocks(plane: Tensor) -> Tensor:
    """``(B, H, W)`` with H, W multiples of 8 -> ``(B, H/8, W/8, 8, 8)``."""
    batch, height, width = plane.shape
    return plane.reshape(batch, height // 8, 8, width // 8, 8).transpose(2, 3)


def _unblocks(blocks: Tensor) -> Tensor:
    batch, rows, cols = blocks.shape[:3]
    return blocks.transpose(2, 3).reshape(batch, rows * 8, cols * 8)


def _code(plane: Tensor, table: Tensor, dct: Tensor) -> Tensor:
    """Level shift, DCT, quantise (round half away from zero), dequantise, inverse DCT, round and clamp:
    ``(B, H, W)`` int64 samples through one JPEG round trip."""
    blocks = _blocks(plane).float() - 128.0
    coefficients = dct @ blocks @ dct.T
    step = table[:, None, None].float()
    quantised = torch.sign(coefficients) * torch.floor(coefficients.abs() / step + 0.5)
    restored = dct.T @ (quantised * step) @ dct
    return _unblocks(torch.round(restored + 128.0).clamp(0, 255).long())


def jpeg_device(x: Tensor, quality: Tensor) -> Tensor:
    """JPEG round trip (4:2:0, baseline) of each sample of ``x`` ``(B, 3, H, W)`` in [0, 1] at its own
    ``quality`` ``(B,)`` (integers 1..100; 0 leaves the sample untouched). Returns multiples of 1/255 in x's
    dtype on x's device."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"jpeg needs RGB images (B, 3, H, W), got shape {tuple(x.shape)}")
    quality = quality.to(device=x.device).reshape(-1)
    if quality.numel() != x.shape[0]:
        raise ValueError(f"jpeg quality has {quality.numel()} values for a batch of {x.shape[0]}")
    batch, _, height, width = x.shape
    # libjpeg extends the image to whole 16x16 units by repeating its last row and column
    pad_h, pad_w = (-height) % 16, (-width) % 16
    samples = torch.round(x.detach().float().clamp(0, 1) * 255)
    if pad_h or pad_w:
        samples = F.pad(samples, (0, pad_w, 0, pad_h), mode="replicate")
    ycc = _rgb_to_ycc(samples.long())
    luma_table, chroma_table = quality_tables(quality)
    dct = _dct_matrix(x.device)
    y = _code(ycc[:, 0], luma_table, dct)
    cb = _upsample(_code(_downsample(ycc[:, 1]), chroma_table, dct))
    cr = _upsample(_code(_downsample(ycc[:, 2]), chroma_table, dct))
    rgb = _ycc_to_rgb(torch.stack([y, cb, cr], dim=1))[..., :height, :width]
    out = (rgb.float() / 255.0).to(x.dtype)
    keep = (quality <= 0).view(batch, 1, 1, 1)
    return torch.where(keep, x, out)
