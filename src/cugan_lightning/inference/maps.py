"""Level maps: the condition given per pixel, so that one region is restored for other levels than the rest
(docs/restore.md, "Level maps").

A map is a factor's level at every pixel, in the codec's physical units. Files: ``.npy`` holds levels as floats,
``(H, W)`` for one factor or ``(D, H, W)`` for all of them in the codec's order; a float TIFF holds levels too; a
gray 8- or 16-bit PNG / TIFF spans the factor's range (0 is level 0, the largest value the codec's maximum level),
which is how the web app saves a painted map. JPEG keeps one quality per image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.io import ImageReadError, read_image_raw, write_image
from ..degradations import LevelCodec
from ..degradations.spatial import MAP_FACTORS

__all__ = ["MAP_FACTORS", "MapError", "check_maps", "read_level_map", "read_z_map", "write_level_map"]


class MapError(ValueError):
    """A level map that cannot be used: the message names the factor or file and what is allowed."""


def _integer_to_levels(array: np.ndarray, maximum: float) -> np.ndarray:
    return array.astype(np.float32) / float(np.iinfo(array.dtype).max) * maximum


def read_level_map(path: str | Path, codec: LevelCodec, factor: str) -> np.ndarray:
    """One factor's map ``(H, W)`` float32 in physical units from a file (formats in the module docstring)."""
    path = Path(path)
    _check_factor(codec, factor)
    maximum = codec.max_levels[codec.names.index(factor)]
    suffix = path.suffix.lower()
    if not path.is_file():
        raise MapError(f"{factor} map '{path}' does not exist")
    if suffix == ".npy":
        array = _load_npy(path)
    elif suffix in (".tif", ".tiff") and (array := _float_tiff(path)) is not None:
        pass
    elif suffix in (".png", ".tif", ".tiff"):
        try:
            array = read_image_raw(path)
        except ImageReadError as err:
            raise MapError(str(err)) from None
        if array.ndim != 2:
            raise MapError(f"{factor} map '{path}' must be a gray image, got {array.shape[2]} channels")
        array = _integer_to_levels(array, maximum)
    else:
        raise MapError(f"{factor} map '{path}': use a .npy, a gray PNG or a TIFF")
    if array.ndim != 2:
        raise MapError(f"{factor} map '{path}' must be 2-D (H, W), got shape {array.shape}")
    return array.astype(np.float32)


def read_z_map(path: str | Path, codec: LevelCodec) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every factor from one ``.npy`` ``(D, H, W)`` of levels in the codec's order: ``(maps, levels)``, the blur
    and noise maps by name and the one value of each other factor (a JPEG quality plane must be constant)."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise MapError(
            f"a map of every factor is a .npy of shape (D, H, W); got '{path}' (use --map NAME=FILE)"
        )
    if not path.is_file():
        raise MapError(f"level map '{path}' does not exist")
    array = _load_npy(path)
    names = list(codec.names)
    if array.ndim != 3 or array.shape[0] != len(names):
        shape = f"({len(names)}, H, W)"
        raise MapError(
            f"level map '{path}' must have shape {shape} for the factors {names}, got {array.shape}"
        )
    maps, levels = {}, {}
    for d, name in enumerate(names):
        if name in MAP_FACTORS:
            maps[name] = array[d]
        elif float(array[d].min()) == float(array[d].max()):
            levels[name] = float(array[d].flat[0])
        else:
            raise MapError(f"level map '{path}': the {name} plane must be one value (it keeps one per image)")
    return maps, levels


def write_level_map(level: np.ndarray, path: str | Path, maximum: float) -> Path:
    """Save a factor's map ``(H, W)`` (physical units, ``0..maximum``) as a 16-bit gray PNG or TIFF spanning the
    range, or as ``.npy`` floats."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        np.save(path, np.asarray(level, dtype=np.float32))
        return path
    scaled = np.clip(np.asarray(level, dtype=np.float64) / maximum, 0.0, 1.0) * 65535.0
    return write_image(np.round(scaled).astype(np.uint16), path)


def check_maps(
    codec: LevelCodec, maps: Mapping[str, Any], base_z: Tensor, size: tuple[int, int]
) -> tuple[Tensor, list[str]]:
    """The condition for an image of ``size`` ``(H, W)``: maps ``(H, W)`` by factor name (numbers allowed), the
    other factors from ``base_z`` ``(1, D)``. Returns ``(z, notes)``: a map ``(1, D, H, W)``, or ``base_z``-shaped
    ``(1, D)`` when every map is constant (the vector path gives the same result, faster), and a note for each
    map that was resized. Wrong factors, NaN and levels out of range raise :class:`MapError`."""
    z = base_z.reshape(1, -1, 1, 1).expand(1, codec.cond_dim, *size).clone()
    notes: list[str] = []
    for name, value in maps.items():
        _check_factor(codec, name)
        d = codec.names.index(name)
        level = torch.as_tensor(np.asarray(value, dtype=np.float32))
        if level.dim() == 0:
            level = level.expand(size)
        if level.dim() != 2 or min(level.shape) < 1:
            raise MapError(f"the {name} map must be 2-D (H, W), got shape {tuple(level.shape)}")
        bad = ~torch.isfinite(level)
        if bool(bad.any()):
            y, x = (int(i) for i in bad.nonzero()[0])
            raise MapError(
                f"the {name} map holds {float(level[y, x])} at row {y}, column {x}: levels must be numbers"
            )
        low, high = float(level.min()), float(level.max())
        maximum = codec.max_levels[d]
        if low < 0 or high > maximum + 1e-6:
            value = low if low < 0 else high
            raise MapError(f"the {name} map holds {value:g}, outside {codec.describe(d)}")
        if tuple(level.shape) != tuple(size):
            notes.append(
                f"the {name} map is {level.shape[1]}x{level.shape[0]}, the image {size[1]}x{size[0]}: resized "
                "(bilinear) to the image"
            )
            level = F.interpolate(level[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        z[0, d] = (level / maximum).clamp(0.0, 1.0)
    flat = z.flatten(2)
    if bool((flat == flat[:, :, :1]).all()):
        return flat[:, :, 0], notes
    return z, notes


def _check_factor(codec: LevelCodec, name: str) -> None:
    if name not in codec.names:
        raise MapError(f"this model has no {name} factor; its factors are {list(codec.names)}")
    if name not in MAP_FACTORS:
        raise MapError(
            f"{name} keeps one value per image (give it as a level, not a map); maps: {list(MAP_FACTORS)}"
        )


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise MapError(f"cannot read level map '{path}': {err}") from None
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise MapError(f"level map '{path}' must hold real numbers, got dtype {array.dtype}")
    return array.astype(np.float32)


def _float_tiff(path: Path) -> np.ndarray | None:
    import tifffile

    try:
        array = tifffile.imread(path, key=0)
    except Exception:  # noqa: BLE001 - not a TIFF tifffile reads: the image reader names the problem
        return None
    return array.astype(np.float32) if np.issubdtype(array.dtype, np.floating) else None
