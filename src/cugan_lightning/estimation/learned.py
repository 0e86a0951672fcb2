"""The learned level estimator, loaded from the checkpoint its training wrote (``experiment=estimator_cpu``)."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import zoo
from ..atomic import write_bytes_atomic
from ..checkpoint.metadata import CheckpointError
from ..checkpoint.read import read_checkpoint
from ..degradations import LevelCodec, gaussian_blur
from ..networks.estimator import TILES_PER_PASS, LevelEstimator
from .common import Estimate

__all__ = ["ESTIMATOR_KEY", "LearnedEstimator", "find_estimator", "load_estimator", "save_estimator"]

ESTIMATOR_KEY = "cugan_estimator"
"""The checkpoint entry that describes the estimator (written by :class:`~cugan_lightning.modules.EstimatorModule`)."""
_STATE_PREFIX = "net."

log = logging.getLogger(__name__)


def _as_batch(image: Any, device: torch.device) -> Tensor:
    """``(H, W[, C])`` uint8 / float numpy or ``(C, H, W)`` / ``(1, C, H, W)`` float tensor -> ``(1, 3, H, W)``."""
    if isinstance(image, Tensor):
        x = image.float()
        x = x.unsqueeze(0) if x.dim() == 3 else x
    else:
        array = np.asarray(image)
        array = array[:, :, None] if array.ndim == 2 else array
        scale = 255.0 if array.dtype == np.uint8 else 1.0
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32) / scale).permute(2, 0, 1)[None]
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"one image at a time: (H, W, C) or (C, H, W); got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"an RGB or gray image is needed; got {x.shape[1]} channels")
    return x.to(device)


class LearnedEstimator:
    """A trained :class:`LevelEstimator` with its codec: levels of an image in the codec's physical units.

    ``calibration``: ``{"blur": {"threshold": t, "scale": a}}`` maps the network's blur estimate ``b`` of an
    image to ``a * max(0, b - t)`` (docs/estimation.md: chosen on validation images by the restorer's PSNR, since
    blur read where there is none, or too much of it, costs far more than too little); None: as the network
    reads it. An optional ``"denoised_search_below": px`` in the blur entry has a noisy photo whose calibrated
    blur is under it searched by consistency once denoised (:attr:`denoised_search_below`). Any other factor of
    the codec may have ``{"points": [[reading, level], ...]}``: the network's reading mapped through those points
    (piecewise linear, held at the end levels outside them; readings increasing, levels not decreasing), chosen
    on validation images where the network reads a level systematically high or low (noise, docs/estimation.md);
    its per-region map goes through the same points. The blur map is not calibrated.
    """

    method = "learned"
    min_side = 16

    def __init__(
        self,
        net: LevelEstimator,
        codec: LevelCodec,
        source: str = "",
        calibration: dict | None = None,
        tile: int | None = None,
        tiled: Sequence[str] | None = None,
    ) -> None:
        self.net = net.eval()
        self.codec = codec
        self.source = source
        if tile is not None and not _is_tile(tile):
            raise ValueError(
                f"an estimator's reading tile is a multiple of 4 pixels, 16 or more; got {tile!r}"
            )
        self.tile = tile
        """The network reads an image on squares of this many pixels (the patch it was trained on) and pools
        them together; None: the whole image at once (docs/estimation.md)."""
        unknown = [name for name in tiled or () if name not in codec.names]
        if unknown or (tiled is not None and tile is None):
            problem = (
                f"'{unknown[0]}' is not a factor of the codec {list(codec.names)}" if unknown else "no tile"
            )
            raise ValueError(
                f"the factors read by tile must be the codec's, with a tile; got {tiled!r}: {problem}"
            )
        self.tiled = None if tiled is None else tuple(tiled)
        """The factors read by :attr:`tile` (the others whole: a second pass); None: every factor."""
        self.calibration = calibration or None
        self._blur_map = _blur_calibration(calibration) if "blur" in codec.names else None
        self._points = _points_calibrations(calibration, codec)
        self.denoised_search_below = _denoised_search_below(calibration) if "blur" in codec.names else None
        """Under noise, a calibrated blur under this (px) is searched on the denoised photo
        (:mod:`~cugan_lightning.estimation.consistency`); None: never, the reading stands."""

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.inference_mode()
    def z(self, image: Any) -> Tensor | None:
        """The image's condition ``(D,)`` in [0, 1], or None for an image under 16 pixels on a side."""
        x = _as_batch(image, self.device)
        if min(x.shape[-2:]) < self.min_side:
            return None
        z, weights = self._map_and_weights(x)
        return (z.float() * weights).sum(dim=(2, 3))[0].clamp(0.0, 1.0).cpu()

    def _map_and_weights(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The raw map and its pooling shares (:meth:`LevelEstimator.map_and_weights`), each factor read whole or
        by tile as the file says."""
        tile = self._tile_for(x)
        z, weights = self.net.map_and_weights(x, tile)
        if tile is None or self.tiled is None or set(self.tiled) >= set(self.codec.names):
            return z, weights  # one pass: every factor read alike (an image under a tile is read whole)
        z_whole, weights_whole = self.net.map_and_weights(x)
        tiled = torch.tensor([name in self.tiled for name in self.codec.names], device=z.device).view(
            1, -1, 1, 1
        )
        return torch.where(tiled, z, z_whole), torch.where(tiled, weights, weights_whole)

    @torch.inference_mode()
    def condition_map(self, image: Any) -> Tensor:
        """Per-region condition ``(D, ceil(H / 4), ceil(W / 4))`` in [0, 1]."""
        return self._map_and_weights(_as_batch(image, self.device))[0][0].float().clamp(0.0, 1.0).cpu()

    @torch.inference_mode()
    def level_maps(self, image: Any, factors: tuple[str, ...], smooth: float = 4.0) -> dict[str, np.ndarray]:
        """Levels per pixel ``(H, W)`` float32 in physical units for the linear ``factors`` of the codec: the
        per-region map smoothed (a Gaussian of ``smooth`` cells, 4 pixels each, each cell weighted by its pooling
        weight, so that an attention-pooled estimator's map leans on the cells it trusts, as its global estimate
        does) and upsampled to the image. An estimator with a reading :attr:`tile` maps every factor by windows of
        it instead (:meth:`_window_map`; a tile's cells are right only on average, and a window's pooled reading is
        what the network was trained to get right). Empty for an image under 16 pixels on a side."""
        x = _as_batch(image, self.device)
        if min(x.shape[-2:]) < self.min_side:
            return {}
        if self._tile_for(x) is not None:
            z = self._window_map(x)
        else:
            z, weights = self.net.map_and_weights(x)
            if self.net.weight is None:
                z = gaussian_blur(z.float().clamp(0.0, 1.0), smooth)
            else:  # weights relative to the image's most trusted cell, so that no neighbourhood's sum underflows
                weights = weights / weights.amax(dim=(2, 3), keepdim=True)
                z = z.float().clamp(0.0, 1.0)
                z = gaussian_blur(z * weights, smooth) / gaussian_blur(weights, smooth).clamp_min(1e-30)
            z = F.interpolate(z, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[0].cpu()
        out = {}
        for name in factors:
            if name in self.codec.names:
                d = self.codec.names.index(name)
                levels = (z[d].clamp(0.0, 1.0) * self.codec.max_levels[d]).numpy()
                if name in self._points:
                    levels = np.interp(levels, *self._points[name]).astype(np.float32)
                out[name] = levels
        return out

    def _tile_for(self, x: Tensor) -> int | None:
        """The reading tile for ``x``: None without one, or for an image under a tile (read whole)."""
        return self.tile if self.tile is not None and min(x.shape[-2:]) >= self.tile else None

    def _window_map(self, x: Tensor) -> Tensor:
        """``(D, H, W)`` raw z: the pooled reading of every ``tile x tile`` window at a stride of half a tile (the
        image padded by reflection to whole strides), placed at the window's centre and interpolated bilinearly
        between centres (held beyond the outer ones). About four readings of every pixel."""
        tile, stride = self.tile, self.tile // 2
        h, w = x.shape[-2:]
        rows, cols = -(-(h - tile) // stride) + 1, -(-(w - tile) // stride) + 1
        x = F.pad(x, (0, (cols - 1) * stride + tile - w, 0, (rows - 1) * stride + tile - h), mode="reflect")
        windows = x.unfold(2, tile, stride).unfold(3, tile, stride)  # (1, C, rows, cols, tile, tile)
        windows = windows.permute(0, 2, 3, 1, 4, 5).reshape(rows * cols, x.shape[1], tile, tile)
        values = torch.cat(
            [self.net.pooled(part) for part in windows.split(TILES_PER_PASS)]
        )  # (rows * cols, D)
        values = values.T.reshape(1, -1, rows, cols).float()

        def along(n: int, size: int) -> Tensor:  # each pixel's place between the centres, from -1 to 1
            position = (torch.arange(size, dtype=torch.float32) - (tile - 1) / 2) / stride
            return (position.clamp(0, n - 1) / max(n - 1, 1) * 2 - 1).to(values.device)

        grid = torch.stack(torch.meshgrid(along(cols, w), along(rows, h), indexing="xy"), dim=-1)[None]
        return F.grid_sample(values, grid, mode="bilinear", padding_mode="border", align_corners=True)[
            0
        ].cpu()

    def estimate(self, image: Any) -> dict[str, Estimate]:
        """Every factor of the codec, in its physical units (JPEG as a quality; 0 when no compression is seen)."""
        z = self.z(image)
        if z is None:
            note = f"the image is under {self.min_side}x{self.min_side} pixels: too small"
            return {name: Estimate(name, None, self.method, note=note) for name in self.codec.names}
        levels = self.codec.decode(z, validate=False)[0].tolist()
        if self._blur_map is not None:
            d = self.codec.names.index("blur")
            threshold, scale = self._blur_map
            levels[d] = min(scale * max(0.0, levels[d] - threshold), self.codec.max_levels[d])
        for name, (readings, values) in self._points.items():
            d = self.codec.names.index(name)
            levels[d] = float(np.interp(levels[d], readings, values))
        return {
            name: Estimate(name, round(float(levels[d]), 2), self.method)
            for d, name in enumerate(self.codec.names)
        }


def _blur_calibration(calibration: dict | None) -> tuple[float, float] | None:
    """``(threshold, scale)`` of a calibration's blur entry (None without one); a malformed one is a ValueError."""
    blur = (calibration or {}).get("blur")
    if blur is None:
        return None
    try:
        threshold, scale = float(blur["threshold"]), float(blur["scale"])
    except (KeyError, TypeError, ValueError):
        threshold = scale = float("nan")
    if not (threshold >= 0 and scale > 0):
        raise ValueError(f"a blur calibration needs threshold >= 0 and scale > 0, got {blur!r}")
    return threshold, scale


def _denoised_search_below(calibration: dict | None) -> float | None:
    """The blur entry's ``denoised_search_below`` (px), None without one; a malformed one is a ValueError."""
    value = ((calibration or {}).get("blur") or {}).get("denoised_search_below")
    if value is None:
        return None
    try:
        below = float(value)
    except (TypeError, ValueError):
        below = float("nan")
    if not below >= 0:
        raise ValueError(
            f"a blur calibration's denoised_search_below is a blur in pixels >= 0, got {value!r}"
        )
    return below


def _points_calibrations(
    calibration: dict | None, codec: LevelCodec
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{factor: (readings, levels)}`` of a calibration's ``points`` entries (every factor but blur); a malformed
    entry, or one for a factor the codec lacks, is a ValueError."""
    out = {}
    for name, entry in (calibration or {}).items():
        if name == "blur":
            continue
        if name not in codec.names:
            raise ValueError(
                f"the calibration has an entry for '{name}', which the estimator's codec {list(codec.names)} "
                "does not have"
            )
        try:
            points = np.asarray(entry["points"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            points = np.empty((0, 0))
        if (
            points.ndim != 2
            or points.shape[0] < 2
            or points.shape[1] != 2
            or not np.isfinite(points).all()
            or not (np.diff(points[:, 0]) > 0).all()
            or not (np.diff(points[:, 1]) >= 0).all()
        ):
            raise ValueError(
                f"a '{name}' calibration needs points [[reading, level], ...]: two or more, readings increasing "
                f"and levels not decreasing; got {entry!r}"
            )
        out[name] = (points[:, 0].copy(), points[:, 1].copy())
    return out


def load_estimator(path: str | Path, map_location: str | torch.device = "cpu") -> LearnedEstimator:
    """The estimator of a checkpoint written by ``cugan-train experiment=estimator_cpu`` (weights read as data)."""
    hint = "a level estimator's checkpoint is written by cugan-train experiment=estimator_cpu"
    checkpoint = read_checkpoint(path, map_location, key=ESTIMATOR_KEY, hint=hint)
    meta = checkpoint[ESTIMATOR_KEY]
    spec = meta.get("estimator", {})
    if spec.get("class") != LevelEstimator.__name__:
        raise CheckpointError(f"'{path}': unknown estimator class '{spec.get('class')}'")
    net = LevelEstimator(**spec.get("config", {}))
    state = {
        k[len(_STATE_PREFIX) :]: v
        for k, v in checkpoint.get("state_dict", {}).items()
        if k.startswith(_STATE_PREFIX)
    }
    net.load_state_dict(state)
    codec = LevelCodec.from_dict(meta["codec"])
    tile = _reading_tile(meta)
    return LearnedEstimator(
        net.to(map_location), codec, str(path), meta.get("calibration"), tile, meta.get("tiled")
    )


def _reading_tile(meta: dict) -> int | None:
    """The file's reading tile: its own entry, else the patch size it was trained on (a training checkpoint),
    else None (read whole: files written before tiles were read)."""
    if "tile" in meta:
        return meta["tile"]
    patch = ((meta.get("train_config") or {}).get("data") or {}).get("patch_size")
    return patch if _is_tile(patch) else None


def _is_tile(value: Any) -> bool:
    """Whether ``value`` can be a reading tile: an int number of pixels, 16 or more, a multiple of 4 (one map
    cell each)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 16 and value % 4 == 0


def save_estimator(estimator: LearnedEstimator, path: str | Path, half: bool = True) -> Path:
    """The estimator alone (no optimizer state): its weights (float16 with ``half``) and its description, in
    the layout :func:`load_estimator` reads; for the zoo."""
    state = {
        _STATE_PREFIX + k: (v.half() if half and v.is_floating_point() else v).cpu().contiguous()
        for k, v in estimator.net.state_dict().items()
    }
    meta = {
        "kind": "estimator",
        "estimator": {"class": type(estimator.net).__name__, "config": dict(estimator.net.config)},
        "codec": estimator.codec.to_dict(),
        **({"calibration": estimator.calibration} if estimator.calibration else {}),
        **({"tile": estimator.tile} if estimator.tile is not None else {}),
        **({"tiled": list(estimator.tiled)} if estimator.tiled is not None else {}),
    }
    buffer = io.BytesIO()
    torch.save({"state_dict": state, ESTIMATOR_KEY: meta}, buffer)
    return write_bytes_atomic(Path(path), buffer.getvalue())


def _zoo_estimator_for(codec: LevelCodec, model: str | Path | None) -> str | None:
    """The zoo estimator named by a zoo model's entry, else the first zoo estimator with this codec."""
    entries = zoo.entries()
    if model is not None and zoo.is_zoo_reference(model):
        entry = entries.get(str(model).removeprefix(zoo.PREFIX) or zoo.default_model())
        if entry is not None and entry.extra.get("estimator"):
            return str(entry.extra["estimator"])
    for entry in entries.values():
        if entry.extra.get("kind") == "estimator" and LevelCodec.from_dict(entry.codec) == codec:
            return entry.name
    return None


def find_estimator(
    reference: str | Path | None,
    codec: LevelCodec,
    model: str | Path | None = None,
    map_location: str | torch.device = "cpu",
) -> LearnedEstimator | None:
    """The level estimator for a model of ``codec``: ``reference`` a file or ``zoo:NAME``; ``auto``, the zoo's
    estimator for this model or codec (None when the zoo has none, or it cannot be fetched: then only noise and a
    JPEG file's quality are estimated); None, no learned estimator."""
    if reference is None:
        return None
    if str(reference) != "auto":
        learned = load_estimator(zoo.model_path(reference), map_location)
        if tuple(learned.codec.names) != tuple(codec.names):
            raise ValueError(
                f"the level estimator {reference} estimates {list(learned.codec.names)} but the model's factors are "
                f"{list(codec.names)}; give an estimator trained for this model's codec"
            )
        return learned
    name = _zoo_estimator_for(codec, model)
    if name is None:
        return None
    try:
        return load_estimator(zoo.resolve(zoo.PREFIX + name), map_location)
    except zoo.ZooError as err:
        log.warning("no learned level estimator (%s); noise and JPEG files are still estimated", err)
        return None
