"""The JPEG quality of a file, read off its quantisation tables; and of a decoded JPEG kept as pixels (a PNG of a
once-compressed photo), read off the steps its 8x8 DCT coefficients still sit on.

libjpeg (and so Pillow, OpenCV and most software) writes the IJG base tables scaled by ``jpeg_set_quality``; the
same scaling drives the training device's JPEG (:func:`cugan_lightning.degradations.jpeg.quality_tables`). So a
file's luma and chroma tables either equal the tables of exactly one quality in 1..100 (a few qualities share
tables: the highest of them is reported), or they are not IJG's (a camera's or an editor's own tables), and then
the quality whose tables are nearest is reported as an approximation, said so in the note.

From pixels: JPEG rounds every 8x8 block's DCT coefficient ``k`` of luma to a multiple of the table's step
``q_k``; decoding adds only the rounding of the pixels (about 0.35 on 0..255), so each coefficient of the
decoded image still sits within a fraction of a step of a multiple of ``q_k``. The step of each frequency with
enough nonzero coefficients is the largest one they sit on, and the quality is the IJG quality whose luma table
has those steps. This needs the 8x8 grid the JPEG was written on (the image not resized since, and either not
cropped or cropped by whole blocks, or its blocks visible enough to find the grid); otherwise no step is found
and the estimate says so.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..degradations.jpeg import _dct_matrix, quality_tables
from .common import Estimate

__all__ = ["jpeg_quality_from_file", "jpeg_quality_from_pixels", "jpeg_quality_from_tables"]

PIXEL_METHOD = "quantisation steps in the pixels"
MIN_COEFFICIENTS = 50
"""A frequency's step is read only from at least this many coefficients away from zero."""
ON_STEP = 0.8
"""Coefficients sit on a step when at least this share of them is within a pixel's rounding of a multiple."""
MAX_BLOCKS = 4096
"""At most this many 8x8 blocks are read (spread evenly over the image)."""
MIN_STEPS = 4
"""The steps of at least this many frequencies must be read to name a quality ..."""
MIN_AGREE = 0.8
"""... and this share of them must equal the quality's table."""

_QUALITIES = torch.arange(1, 101)


@functools.cache
def _ijg_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """libjpeg's luma and chroma tables ``(100, 64)`` for qualities 1..100 (made once; not to be written to)."""
    luma, chroma = quality_tables(_QUALITIES)
    return luma.reshape(100, 64), chroma.reshape(100, 64)


@functools.cache
def _step_candidates() -> torch.Tensor:
    """``(64, 100)``: each frequency's luma step in every IJG table, the largest first (coefficients on a step
    sit on its divisors too, so the largest that fits is the step)."""
    return _ijg_tables()[0].T.sort(dim=1, descending=True).values.float()


def jpeg_quality_from_tables(tables: Mapping[int, Sequence[int]]) -> Estimate:
    """The IJG quality whose tables are ``tables`` (``{0: luma, 1: chroma}``, 64 entries each in natural
    order, as Pillow's ``Image.quantization`` gives them; a gray file has the luma table only)."""
    if 0 not in tables or len(tables[0]) != 64:
        return Estimate(
            "jpeg", None, "quantisation tables", note="the file has no 8x8 luma quantisation table"
        )
    ijg_luma, ijg_chroma = _ijg_tables()
    luma = torch.as_tensor(list(tables[0]), dtype=torch.int64)
    distance = (ijg_luma - luma).abs().float().mean(dim=1)
    if 1 in tables and len(tables[1]) == 64:
        chroma = torch.as_tensor(list(tables[1]), dtype=torch.int64)
        distance = distance + (ijg_chroma - chroma).abs().float().mean(dim=1)
    exact = torch.nonzero(distance == 0).flatten()
    if exact.numel():
        quality = int(_QUALITIES[exact[-1]])
        return Estimate(
            "jpeg", float(quality), "quantisation tables", exact=True, note="IJG tables, read exactly"
        )
    best = int(torch.argmin(distance))
    return Estimate(
        "jpeg",
        float(_QUALITIES[best]),
        "quantisation tables",
        note=f"the tables are not IJG's; nearest IJG quality (mean table difference {float(distance[best]):.1f})",
    )


def jpeg_quality_from_file(path: str | Path | Image.Image) -> Estimate:
    """The quality of a JPEG file (a path or an opened Pillow image); for any other format a ``None`` estimate
    that says the quality cannot be read from the file."""
    image = path if isinstance(path, Image.Image) else Image.open(path)
    try:
        if image.format != "JPEG":
            return Estimate(
                "jpeg",
                None,
                "quantisation tables",
                note=f"a {image.format or 'non-JPEG'} file has no JPEG tables",
            )
        return jpeg_quality_from_tables(getattr(image, "quantization", None) or {})
    finally:
        if image is not path:
            image.close()


def _luma(rgb: np.ndarray) -> torch.Tensor:
    """The level-shifted luma (0..255 less 128, libjpeg's weights) of ``rgb`` ``(H, W, 3)`` in [0, 1]."""
    y = torch.from_numpy(np.ascontiguousarray(rgb[..., :3], dtype=np.float32)) * 255.0
    return y[..., 0] * 0.299 + y[..., 1] * 0.587 + y[..., 2] * 0.114 - 128.0


def _luma_coefficients(y: torch.Tensor, clipped: torch.Tensor, top: int, left: int) -> torch.Tensor:
    """The orthonormal 8x8 DCT coefficients ``(blocks, 64)`` (natural order) of luma ``y`` on the grid that
    starts at ``(top, left)``, leaving out the blocks with a ``clipped`` pixel."""
    height, width = ((y.shape[0] - top) // 8) * 8, ((y.shape[1] - left) // 8) * 8

    def blocks_of(x: torch.Tensor) -> torch.Tensor:
        x = x[top : top + height, left : left + width]
        return x.reshape(height // 8, 8, width // 8, 8).permute(0, 2, 1, 3).reshape(-1, 64)

    blocks = blocks_of(y)[~blocks_of(clipped).any(dim=1)]
    if blocks.shape[0] > MAX_BLOCKS:  # evenly spread over the image
        blocks = blocks[torch.linspace(0, blocks.shape[0] - 1, MAX_BLOCKS).round().long()]
    dct = _dct_matrix(torch.device("cpu"))
    return (dct @ blocks.reshape(-1, 8, 8) @ dct.T).reshape(-1, 64)


def _steps(coefficients: torch.Tensor) -> dict[int, int]:
    """The quantisation step each frequency's coefficients sit on: the largest step of that frequency in any
    IJG table that :data:`ON_STEP` of the coefficients at least half a step from zero sit on, within a pixel's
    rounding; 1 where none fits though :data:`MIN_COEFFICIENTS` are clearly away from zero (no quantisation that
    can be told from none); frequencies with too few coefficients away from zero are left out."""
    candidates = _step_candidates()
    found = {}
    for first in range(0, 64, 8):  # eight frequencies at a time: (8, 100, blocks) at most
        q = candidates[first : first + 8, :, None]
        c = coefficients.T[first : first + 8, None, :]
        away = c.abs() >= q / 2
        on = ((c - q * torch.round(c / q)).abs() <= torch.clamp(q / 4, max=1.0)) & away
        counts = away.sum(dim=2)
        fits = (counts >= MIN_COEFFICIENTS) & (on.sum(dim=2) >= ON_STEP * counts) & (q[..., 0] >= 2)
        for row in range(fits.shape[0]):
            k = first + row
            hits = torch.nonzero(fits[row]).flatten()
            if hits.numel():
                found[k] = int(candidates[k, int(hits[0])])
            elif int((coefficients[:, k].abs() >= 4).sum()) >= MIN_COEFFICIENTS:
                found[k] = 1
    return found


def _grid_offset(y: torch.Tensor) -> tuple[int, int]:
    """Where JPEG's 8x8 blocks start in luma ``y`` (at least 16 pixels a side): the row and column offsets
    (0..7) whose block edges differ most."""
    offsets = []
    for axis in (0, 1):
        edges = y.double().diff(dim=axis).abs().mean(dim=1 - axis)  # mean jump between line i and i + 1
        offsets.append(max(range(8), key=lambda r, e=edges: float(e[(r - 1) % 8 :: 8].mean())))
    return offsets[0], offsets[1]


def jpeg_quality_from_pixels(rgb: np.ndarray) -> Estimate:
    """The IJG quality an image ``(H, W, 3)`` in [0, 1] was JPEG-compressed at before it was decoded to pixels,
    read off the steps its luma DCT coefficients sit on; 0 when coefficients that should show a step show none
    (never compressed, or at quality 100); ``None`` with the reason when the steps do not name one quality."""
    if min(rgb.shape[:2]) < 16:
        return Estimate("jpeg", None, PIXEL_METHOD, note="the image is under 16x16 pixels: too small")
    ijg_luma = _ijg_tables()[0]
    y = _luma(rgb)
    clipped = torch.from_numpy(((rgb[..., :3] <= 0) | (rgb[..., :3] >= 1)).any(axis=-1))  # decoding clips
    best: tuple[int, float, int, dict[int, int]] | None = None  # what overshoots 0..255: off the steps
    for top, left in dict.fromkeys([(0, 0), _grid_offset(y)]):
        steps = _steps(_luma_coefficients(y, clipped, top, left))
        if len(steps) < MIN_STEPS:
            continue
        keys, read = torch.tensor(list(steps)), torch.tensor(list(steps.values()))
        matches = ijg_luma[:, keys] == read  # (quality 1..100, frequency)
        agree = matches.float().mean(dim=1)
        index = int(torch.nonzero(agree == agree.max()).flatten()[-1])  # qualities sharing steps: the highest
        seen = int((matches[index] & (read >= 2)).sum())  # steps that show compression, on this grid
        if best is None or (seen, float(agree[index])) > best[:2]:
            best = (seen, float(agree[index]), int(_QUALITIES[index]), steps)
    if best is None:
        return Estimate(
            "jpeg", None, PIXEL_METHOD, note="too few coefficients away from zero (a flat or tiny image)"
        )
    seen, agree, quality, steps = best
    if seen == 0:
        return Estimate(
            "jpeg",
            0.0,
            PIXEL_METHOD,
            note="no quantisation steps on an 8x8 grid: never JPEG-compressed (or at 100), or resized since",
        )
    if agree < MIN_AGREE:
        return Estimate(
            "jpeg",
            None,
            PIXEL_METHOD,
            note=f"the steps of {len(steps)} frequencies match no IJG quality "
            f"(best: {quality}, {100 * agree:.0f}% of them): other tables, resized, or compressed more than once",
        )
    return Estimate(
        "jpeg",
        float(quality),
        PIXEL_METHOD,
        note=f"IJG quality whose luma steps {100 * agree:.0f}% of {len(steps)} frequencies sit on",
    )
