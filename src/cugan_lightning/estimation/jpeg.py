"""The JPEG quality of a file, read off its quantisation tables.

libjpeg (and so Pillow, OpenCV and most software) writes the IJG base tables scaled by ``jpeg_set_quality``; the
same scaling drives the training device's JPEG (:func:`cugan_lightning.degradations.jpeg.quality_tables`). So a
file's luma and chroma tables either equal the tables of exactly one quality in 1..100 (a few qualities share
tables: the highest of them is reported), or they are not IJG's (a camera's or an editor's own tables), and then
the quality whose tables are nearest is reported as an approximation, said so in the note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from PIL import Image

from ..degradations.jpeg import quality_tables
from .common import Estimate

__all__ = ["jpeg_quality_from_file", "jpeg_quality_from_tables"]

_QUALITIES = torch.arange(1, 101)


def _ijg_tables() -> tuple[torch.Tensor, torch.Tensor]:
    luma, chroma = quality_tables(_QUALITIES)
    return luma.reshape(100, 64), chroma.reshape(100, 64)


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
