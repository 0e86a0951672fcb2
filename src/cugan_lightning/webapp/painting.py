"""Painting level maps on the web page (docs/webapp.md, "Painting levels"): the person brushes a region over the
photo and gives it a blur or noise level; the photo is then restored under that map (docs/restore.md, "Level
maps"). Free of Gradio: the page turns its editor's layers into a mask and calls these.

A photo's maps start from the sliders (the level everywhere) or from the estimator's map, and every painted region
overwrites its pixels. The map can be downloaded as a 16-bit PNG spanning the factor's range and uploaded again,
here or to ``cugan-restore --map FACTOR=FILE``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.io import to_uint8
from ..inference import Restorer
from ..inference.maps import MAP_FACTORS, check_maps, read_level_map, write_level_map
from ..inference.session import Settings
from .workbench import Photo, map_name

__all__ = ["MAP_FACTORS", "auto_maps", "clear_maps", "load_map", "overlay", "paint", "painted_mask"]

_versions = itertools.count(1)


def painted_mask(value: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """The pixels painted in an image editor's value (``{"layers": [RGBA arrays, ...], ...}``) as a boolean mask
    ``(H, W)`` at the photo's size (nearest neighbour when the editor held another size); None when nothing is
    painted."""
    layers = (value or {}).get("layers") or []
    mask = None
    for layer in layers:
        array = np.asarray(layer)
        if array.ndim != 3 or array.shape[2] != 4:
            continue
        painted = array[:, :, 3] > 0
        mask = painted if mask is None else mask | painted
    if mask is None or not mask.any():
        return None
    if mask.shape != tuple(shape):
        resized = Image.fromarray(mask.astype(np.uint8) * 255).resize(shape[::-1], Image.Resampling.NEAREST)
        mask = np.asarray(resized) > 0
    return mask


def _with(photo: Photo, maps: dict[str, np.ndarray]) -> Photo:
    return replace(photo, maps=maps, maps_version=next(_versions))


def paint(
    photo: Photo, restorer: Restorer, settings: Settings, factor: str, level: float, mask: np.ndarray
) -> Photo:
    """``photo`` with ``factor``'s map set to ``level`` on ``mask`` (the map starts as the slider's level
    everywhere); a level outside the codec's range is a ValueError and changes nothing."""
    shape = photo.array.shape[:2]
    current = photo.maps.get(factor)
    base = np.full(shape, settings.level(factor), np.float32) if current is None else current.copy()
    base[mask] = float(level)
    check_maps(restorer.codec, {factor: base}, restorer.z_for(levels=dict(settings.levels)), shape)
    return _with(photo, {**photo.maps, factor: base})


def auto_maps(photo: Photo, restorer: Restorer) -> Photo:
    """``photo`` with the estimator's blur and noise maps (smoothed, physical units)."""
    found = restorer.estimate_maps(photo.array)
    if not found:
        raise ValueError("no learned estimator for this model: paint the maps, or load one")
    return _with(photo, {**photo.maps, **found})


def clear_maps(photo: Photo) -> Photo:
    """``photo`` restored under the sliders again."""
    return _with(photo, {})


def save_map(photo: Photo, restorer: Restorer, factor: str, folder: Path) -> Path:
    """``factor``'s map of ``photo`` as a 16-bit gray PNG spanning the codec's range, for download."""
    if factor not in photo.maps:
        raise ValueError(f"no {factor} map on this photo yet: paint a region or start from the estimated map")
    path = folder / f"map-{photo.token}-{photo.maps_version}" / map_name(photo, factor)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_level_map(
        photo.maps[factor], path, restorer.codec.max_levels[restorer.codec.names.index(factor)]
    )


def load_map(photo: Photo, restorer: Restorer, factor: str, path: str | Path, name: str) -> Photo:
    """``photo`` with ``factor``'s map read from an uploaded file (resized to the photo, with a note)."""
    try:
        level = read_level_map(path, restorer.codec, factor)
    except ValueError as err:
        raise ValueError(str(err).replace(str(path), name)) from None
    shape = photo.array.shape[:2]
    z, _ = check_maps(restorer.codec, {factor: level}, restorer.z_for(), shape)
    d = restorer.codec.names.index(factor)
    resized = (z[0, d] if z.dim() == 4 else z[0, d].expand(shape)) * restorer.codec.max_levels[d]
    return _with(photo, {**photo.maps, factor: resized.numpy().astype(np.float32)})


def overlay(photo: Photo, restorer: Restorer, factor: str, path: Path) -> Path | None:
    """The photo with ``factor``'s map over it (red: the factor's maximum, clear: 0) as a PNG; None without a
    map."""
    level = photo.maps.get(factor)
    if level is None:
        return None
    rgb = to_uint8(photo.array)
    rgb = np.repeat(rgb[:, :, None], 3, axis=2) if rgb.ndim == 2 else rgb[:, :, :3]
    share = (level / restorer.codec.max_levels[restorer.codec.names.index(factor)])[:, :, None] * 0.7
    tint = np.array([220.0, 30.0, 30.0])
    Image.fromarray(np.round(rgb * (1 - share) + tint * share).astype(np.uint8)).save(path, compress_level=1)
    return path
