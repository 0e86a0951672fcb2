"""Every factor of a codec estimated at once, each by the best source there is for it (docs/estimation.md).

- JPEG quality: read exactly off the file's tables when the image came from a JPEG file; otherwise off the
  quantisation steps its pixels still carry (a decoded JPEG kept as PNG), and where they name no quality the
  learned estimator; a codec without a JPEG factor is never asked.
- Noise: the learned estimator where there is one, else the patch-PCA estimator (on luma for a JPEG file).
- Blur: on a photo without noise (an estimate under :data:`~.edges.NOISE_BELOW`, and no JPEG compression read),
  the width of its sharpest edges (:mod:`.edges`); otherwise the learned estimator, without which there is no
  blind blur estimate, and the estimate says so.

Large images are estimated on their central ``MAX_SIDE`` x ``MAX_SIDE`` crop (:func:`estimate_crop`, on the
8x8 grid a JPEG was written on): the factors are global, and the crop keeps an estimate under a second on a CPU.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.datasets import center_crop
from ..degradations import LevelCodec
from .common import Estimate
from .edges import NOISE_BELOW, blur_from_edges
from .jpeg import jpeg_quality_from_file, jpeg_quality_from_pixels
from .learned import LearnedEstimator
from .noise import noise_pca

__all__ = ["MAX_SIDE", "estimate_crop", "estimate_levels", "to_rgb_float"]

MAX_SIDE = 1024


def to_rgb_float(image: Any) -> np.ndarray:
    """A PIL image, a numpy array (uint8 / uint16 / float, gray or with alpha) or a ``(3, H, W)`` tensor as
    float ``(H, W, 3)`` in [0, 1] (alpha dropped, gray repeated)."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB"))
    if hasattr(image, "detach"):  # a torch tensor (C, H, W) or (1, C, H, W)
        tensor = image.detach().float().cpu()
        tensor = tensor[0] if tensor.dim() == 4 else tensor
        image = tensor.permute(1, 2, 0).numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"an image is (H, W) or (H, W, C); got shape {array.shape}")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(array.dtype, 1.0)
    rgb = array[:, :, :3] if array.shape[2] >= 3 else array[:, :, :1]
    rgb = np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb
    return np.clip(rgb.astype(np.float32) / scale, 0.0, 1.0)


def estimate_crop(rgb: np.ndarray) -> np.ndarray:
    """The central ``MAX_SIDE`` x ``MAX_SIDE`` pixels of ``rgb`` ``(H, W, 3)`` that estimates read, its corner on
    a multiple of 8 (a JPEG's block grid)."""
    return center_crop(rgb, MAX_SIDE, multiple=1, align=8)


def _is_jpeg(source: str | Path | Image.Image | None) -> bool:
    if source is None:
        return False
    if isinstance(source, Image.Image):
        return source.format == "JPEG"
    with Image.open(source) as image:
        return image.format == "JPEG"


def estimate_levels(
    image: Any,
    codec: LevelCodec,
    learned: LearnedEstimator | None = None,
    source: str | Path | Image.Image | None = None,
    factors: Collection[str] | None = None,
) -> dict[str, Estimate]:
    """Each factor of ``codec`` estimated blind, in its physical units. ``source``: the file (or the opened
    PIL image) the image came from, whose JPEG tables give the quality exactly. ``factors``: the ones wanted
    (None: all); one left out is still given (the network reads every factor in its one pass), but the edges are
    not read for a blur that is not wanted."""
    rgb = estimate_crop(to_rgb_float(image))
    if learned is not None and tuple(learned.codec.names) != tuple(codec.names):
        raise ValueError(
            f"the level estimator estimates {list(learned.codec.names)} but the model's factors are "
            f"{list(codec.names)}: use an estimator trained for this codec (cugan-train experiment=estimator_cpu "
            "with the model's degradation config)"
        )
    from_network = learned.estimate(rgb) if learned is not None else {}
    out: dict[str, Estimate] = {}
    for name in codec.names:
        estimate = from_network.get(name)
        if name == "jpeg":  # the file's tables, else the steps left in the pixels, else the network
            read = jpeg_quality_from_file(source) if source is not None else None
            if read is None or read.value is None:
                read = jpeg_quality_from_pixels(rgb)
            # steps that name a quality win; none found (never compressed, or off the grid since) defers to
            # the network, which reads the artefacts wherever they are
            estimate = read if read.value or estimate is None else estimate
        if name == "noise" and estimate is None:
            estimate = noise_pca(rgb, luma=_is_jpeg(source))
        if estimate is None:
            estimate = Estimate(
                name, None, "none", note=f"no blind {name} estimate without a learned estimator"
            )
        out[name] = _fit(estimate, codec)
    if "blur" in out and (factors is None or "blur" in factors) and _reads_edges(out):
        out["blur"] = _edge_blur(rgb, out, codec)
    return out


def _reads_edges(estimates: dict[str, Estimate]) -> bool:
    """Whether the blur is read off the edges: noise estimated under NOISE_BELOW, and no JPEG compression read
    (block edges and ringing would be read as edges)."""
    noise, jpeg = estimates.get("noise"), estimates.get("jpeg")
    clean = noise is not None and noise.value is not None and noise.value < NOISE_BELOW
    return clean and (jpeg is None or jpeg.value == 0)


def _edge_blur(rgb: np.ndarray, estimates: dict[str, Estimate], codec: LevelCodec) -> Estimate:
    """The edges' blur as a level of ``codec``; where there are too few edges, the estimate there was, its note
    saying why."""
    read = blur_from_edges(rgb, float(estimates["noise"].value or 0.0))
    if read.value is None:
        before = estimates["blur"]
        return replace(before, note=f"{before.note}; {read.note}".strip("; "))
    return _fit(read, codec)


def _fit(estimate: Estimate, codec: LevelCodec) -> Estimate:
    """``estimate`` as a valid level of ``codec`` (snapped, clamped to its range), so that it can drive the
    sliders."""
    if estimate.value is None:
        return estimate
    low, high, _ = codec.slider(codec.names.index(estimate.factor))
    return replace(estimate, value=min(max(codec.snap(estimate.factor, estimate.value), low), high))
