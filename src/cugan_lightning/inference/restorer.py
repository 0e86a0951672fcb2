"""The :class:`Restorer` API: a generator (or a DNI pair) restoring images under user-chosen conditions.

Python::

    from cugan_lightning import load_restorer
    restorer = load_restorer("mse.ckpt", gan="gan.ckpt")              # gan optional (DNI)
    out = restorer.restore(image, blur=2.0, noise=30, alpha=0.5)       # PIL, numpy or tensor in, same kind out

    small = restorer.preview(image, blur=2.0, noise=30, max_side=512)  # a quick look at a large image

Levels are in physical units (blur sigma in pixels, noise sigma on the 0-255 scale) and go through the codec
stored in the generator file; ``z`` gives the raw condition vector instead. An RGB model restores a gray image
as RGB (the gray value repeated) and averages the three outputs back; a gray model (``in_channels`` 1 in its
file) restores gray and gives a colour image back gray, its BT.601 luma restored (:meth:`Restorer.channel_note`
says which applies). An alpha channel is passed through untouched; 16-bit images are processed in float and come
back at 16 bits.

A preview restores the image shrunk so that its long side is at most ``max_side`` pixels: on a large image it
costs about ``(max_side / long side)^2`` of the full restoration, so a slider can show something at once and the
full-resolution result after.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..checkpoint import CheckpointError, read_generator_file
from ..data.datasets import center_crop
from ..degradations import LevelCodec, lookup
from ..dni import DNIBlender, check_alpha
from ..estimation import (
    Estimate,
    LearnedEstimator,
    blur_by_consistency,
    consistency_applies,
    estimate_levels,
    find_estimator,
)
from ..estimation.consistency import SIDE as CONSISTENCY_SIDE
from ..estimation.levels import estimate_crop, to_rgb_float
from .images import (
    PREVIEW_SIDE,
    SCALED_FACTORS,
    ImageT,
    channel_note,
    image_size,
    model_input,
    preview_size,
    run_on_array,
)
from .images import apply_to_image as _apply
from .images import shrink as _shrink
from .maps import MAP_FACTORS, check_maps
from .precision import FastPath, resolve_device
from .tiling import DEFAULT_TILE_OVERLAP, check_tile, tiled_forward

__all__ = ["PREVIEW_SIDE", "Restorer", "load_restorer", "preview_size", "resolve_device"]


class Restorer:
    """A generator (optionally a DNI pair) ready to restore images under user-chosen conditions.

    Condition weights are cached per ``(alpha, z)`` and the DNI blend is redone only when alpha changes, so moving
    one slider costs one base-network pass. ``stats`` counts ``condition_calls`` (C_G evaluations),
    ``blend_calls`` (DNI re-blends) and ``forward_calls`` (base-network passes, one per tile).

    ``precision``: ``auto`` (bfloat16 autocast with channels-last weights where bfloat16 is native, float32
    elsewhere), ``float32`` or ``bf16`` (:mod:`.precision`). ``estimator``: the learned level estimator behind
    :meth:`estimate` and ``restore(auto=True)``, or a function that loads it on first use (without one, noise and a
    JPEG file's quality are still estimated).
    """

    def __init__(
        self,
        net_g: nn.Module,
        codec: LevelCodec,
        *,
        blender: DNIBlender | None = None,
        device: str | torch.device = "cpu",
        cache_size: int = 256,
        precision: str = "auto",
        estimator: LearnedEstimator | Callable[[], LearnedEstimator | None] | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self._estimator = estimator
        self.fast = FastPath(precision, self.device)
        self.net_g = self.fast.prepare(net_g.to(self.device).eval())
        self.channels = int(getattr(net_g, "in_channels", 3))  # 1: a gray model
        self.codec = codec
        self.blender = blender
        self.cache_size = int(cache_size)
        self.stats = {"condition_calls": 0, "blend_calls": 0, "forward_calls": 0}
        self._alpha = 1.0  # the network starts with the weights it was given: the MSE end of a DNI pair
        self._weights: OrderedDict[tuple[float, tuple[float, ...]], tuple[Tensor, ...]] = OrderedDict()
        cond_dim = getattr(net_g, "cond_dim", codec.cond_dim)
        if getattr(net_g, "conditional", True) and cond_dim != codec.cond_dim:
            raise CheckpointError(
                f"the generator takes a {cond_dim}-value condition but the codec describes {codec.cond_dim} "
                f"factors {list(codec.names)}"
            )

    def channel_note(self, image: Any) -> str | None:
        """One line saying how ``image`` is converted to this model's channels (None when they match)."""
        return channel_note(image, self.channels)

    @property
    def alpha(self) -> float:
        """The DNI weight the network holds now (1.0 = the MSE end; always 1.0 without a GAN checkpoint)."""
        return self._alpha

    # ------------------------------------------------------------------------------------------- conditions
    def estimate(
        self,
        image: Any,
        source: str | Path | Image.Image | None = None,
        factors: Collection[str] | None = None,
    ) -> dict[str, Estimate]:
        """Every factor of the model's codec estimated blind from ``image`` (docs/estimation.md); ``source`` is
        the file it came from, whose JPEG tables give the quality exactly. The blur of a photo without noise is
        read off its edges (:mod:`~cugan_lightning.estimation.edges`, no restoration); with an estimator whose
        calibration asks for it, a noisy photo read as little blur is searched for where this model stops
        explaining it, denoised (:mod:`~cugan_lightning.estimation.consistency`, up to 18 passes over its central
        256x256 pixels). Both only when ``factors``, the factors wanted, leave blur in; otherwise the blur given
        back is the network's reading."""
        rgb = estimate_crop(to_rgb_float(image))  # converted once, for both
        estimates = estimate_levels(rgb, self.codec, self.estimator, source, factors)
        below = self.estimator.denoised_search_below if self.estimator is not None else None
        if (factors is not None and "blur" not in factors) or not consistency_applies(estimates, below):
            return estimates
        x = model_input(center_crop(rgb, CONSISTENCY_SIDE, multiple=1), False, self.channels)
        return blur_by_consistency(
            estimates,
            x,
            self.codec,
            lambda part, levels: self.restore_tensor(part, self.z_for(levels=levels)),
            below,
        )

    @property
    def estimator(self) -> LearnedEstimator | None:
        """The learned level estimator, loaded on first use (a restoration with given levels never loads it)."""
        if callable(self._estimator) and not isinstance(self._estimator, LearnedEstimator):
            self._estimator = self._estimator()
        return self._estimator

    def z_for(
        self,
        blur: float | None = None,
        noise: float | None = None,
        z: Sequence[float] | Tensor | None = None,
        levels: Mapping[str, float] | None = None,
        jpeg: float | None = None,
        **factor_levels: float | None,
    ) -> Tensor:
        """The condition ``(1, cond_dim)`` for levels by factor name (0 if left out; ``jpeg`` a quality) or a raw z."""
        given = {"blur": blur, "noise": noise, "jpeg": jpeg, **factor_levels}
        if z is not None:
            if any(v is not None for v in given.values()) or levels:
                raise ValueError("give either the levels (blur / noise / jpeg) or a raw z, not both")
            values = torch.as_tensor(z, dtype=torch.float32).detach().cpu().reshape(-1)
            names = ", ".join(self.codec.names)
            if values.numel() != self.codec.cond_dim:
                raise ValueError(f"z must hold {self.codec.cond_dim} values ({names}), got {values.numel()}")
            bad = [float(v) for v in values if not 0.0 <= float(v) <= 1.0]  # NaN is bad too
            if bad:
                raise ValueError(f"z value {bad[0]:g} is outside 0..1 (z = level / max level for {names})")
            return values[None]
        mapping: dict[str, float] = dict(levels or {})
        for name, value in given.items():
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise ValueError(f"{name} level must be a number, got {value!r}")
                if name not in self.codec.names:
                    lookup(name)  # an unknown name lists the known factors
                    lacks = f"this model has no {name} slider: it conditions on {list(self.codec.names)}"
                    raise ValueError(f"{lacks}, not on {name}")
                mapping[name] = float(value)
        return self.codec.encode(mapping).to(torch.float32)

    def with_maps(self, image: Any, z: Tensor, maps: Mapping[str, Any] | None) -> Tensor:
        """``z`` ``(1, D)`` with the factors in ``maps`` given per pixel: a condition map ``(1, D, H, W)`` for the
        image's size (``z`` itself when there are no maps or all are constant). A resized map is noted in a
        warning; a bad one raises :class:`~.maps.MapError`."""
        if not maps:
            return z
        z, notes = check_maps(self.codec, maps, z, image_size(image))
        for note in notes:
            warnings.warn(note, stacklevel=3)
        return z

    def estimate_maps(self, image: Any) -> dict[str, np.ndarray]:
        """The learned estimator's level maps ``(H, W)`` for blur and noise (physical units, smoothed), for
        ``restore(maps=...)``; empty without a learned estimator."""
        learned = self.estimator
        return {} if learned is None else learned.level_maps(to_rgb_float(image), MAP_FACTORS)

    def _check_alpha(self, alpha: float | None) -> float:
        if alpha is None:
            return 1.0
        if self.blender is None:
            raise ValueError("alpha blends two models and needs a GAN model (gan= / --gan)")
        return check_alpha(alpha)

    def set_alpha(self, alpha: float | None) -> float:
        """Blend the DNI pair for ``alpha`` into the network (a no-op when it already holds that blend)."""
        alpha = self._check_alpha(alpha)
        if self.blender is not None and alpha != self._alpha:
            self.blender.blend_into(self.net_g, alpha)
            self.stats["blend_calls"] += 1
            self._alpha = alpha
        return alpha

    @torch.no_grad()
    def condition_weights(self, z: Tensor, alpha: float | None = None) -> tuple[Tensor, ...]:
        """Modulation weights (each ``(1, C, 1, 1)``) for ``z`` ``(1, cond_dim)`` under the blend for ``alpha``.

        C_G is blended too, so the cache key is ``(alpha, z)``.
        """
        alpha = self.set_alpha(alpha)
        key = (alpha, tuple(float(v) for v in z.reshape(-1)))
        cached = self._weights.get(key)
        if cached is not None:
            self._weights.move_to_end(key)
            return cached
        weights = tuple(self.net_g.condition(z.to(self.device)))
        self.stats["condition_calls"] += 1
        self._weights[key] = weights
        if len(self._weights) > self.cache_size:
            self._weights.popitem(last=False)
        return weights

    # ------------------------------------------------------------------------------------------- restoring
    @torch.no_grad()
    def restore_tensor(
        self,
        x: Tensor,
        z: Tensor,
        alpha: float | None = None,
        tile: int | None = None,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
    ) -> Tensor:
        """Restore ``x`` ``(B, C, H, W)`` in [0, 1] (C: the model's channels, 3 or 1) under ``z`` ``(1, cond_dim)``
        or a condition map ``(1, cond_dim, H, W)`` (:mod:`.maps`).

        Returns ``(B, C, H, W)`` clamped to [0, 1]. ``tile`` restores in overlapping tiles of that size.
        """
        x = x.to(device=self.device, dtype=torch.float32)
        channels = x.shape[1]
        if channels != self.channels:
            raise ValueError(
                f"this model restores {self.channels}-channel images, got x of shape {tuple(x.shape)}"
            )
        if z.dim() == 4:
            self.set_alpha(alpha)

            def run_map(image: Tensor, z_part: Tensor) -> Tensor:
                self.stats["forward_calls"] += 1
                self.stats["condition_calls"] += 1
                return self.fast.run(self.net_g, image, z_part)  # each point's weights made as it is used

            if tile is None:
                return run_map(x, z.to(x)).clamp(0.0, 1.0)
            # tiled: the map travels with the image as extra channels, so each tile gets its own part of it
            x = torch.cat([x, z.to(x).expand(x.shape[0], -1, -1, -1)], dim=1)

            def run(part: Tensor) -> Tensor:
                restored = run_map(part[:, :channels], part[:1, channels:])
                return torch.cat([restored, part[:, channels:]], 1)
        else:
            weights = self.condition_weights(z, alpha)

            def run(part: Tensor) -> Tensor:
                self.stats["forward_calls"] += 1
                return self.fast.run(self.net_g, part, weights=weights)

        if tile is None:
            return run(x)[:, :channels].clamp(0.0, 1.0)
        tile, tile_overlap = check_tile(tile, tile_overlap)
        multiple = int(getattr(self.net_g, "pad_multiple", 1))
        return tiled_forward(run, x, tile, tile_overlap, multiple)[:, :channels].clamp(0.0, 1.0)

    def restore_array(
        self,
        array: np.ndarray,
        z: Tensor,
        alpha: float | None = None,
        tile: int | None = None,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
    ) -> np.ndarray:
        """Restore a numpy image ``(H, W)`` / ``(H, W, 1|2|3|4)`` (uint8, uint16 or float in [0, 1]).

        Returns the same shape and dtype (a gray model: the gray layout); an alpha channel (last of 2 or 4) is
        copied from the input.
        """
        return run_on_array(
            array, self.channels, lambda x: self.restore_tensor(x, z, alpha, tile, tile_overlap)
        )

    @torch.no_grad()
    def preview_tensor(
        self,
        x: Tensor,
        z: Tensor,
        alpha: float | None = None,
        max_side: int = PREVIEW_SIDE,
        scale_levels: bool = True,
    ) -> Tensor:
        """Restore ``x`` ``(B, C, H, W)`` shrunk (area average) so that its long side is at most ``max_side``.

        Returns ``(B, C, h, w)``, the size :func:`preview_size` gives (``x``'s own when it fits: then this is
        :meth:`restore_tensor`). Shrinking by a factor ``s`` divides a blur sigma (in pixels) and the noise sigma
        (averaging ``s x s`` pixels) by ``s``, so with ``scale_levels`` the blur and noise entries of ``z`` are
        divided by ``s`` too and the preview looks like the full result shrunk; other factors (JPEG) are kept.
        """
        height, width = x.shape[-2:]
        size = preview_size(height, width, max_side)
        if size == (height, width):
            return self.restore_tensor(x, z, alpha)
        x = _shrink(x.to(device=self.device, dtype=torch.float32), size)
        if z.dim() == 4:
            z = _shrink(z.to(device=self.device, dtype=torch.float32), size)
        if scale_levels:
            scale = max(height, width) / max_side
            z = z.clone()
            for index, name in enumerate(self.codec.names):
                if name in SCALED_FACTORS:
                    z[:, index] /= scale
        return self.restore_tensor(x, z, alpha)

    def preview_array(
        self,
        array: np.ndarray,
        z: Tensor,
        alpha: float | None = None,
        max_side: int = PREVIEW_SIDE,
        scale_levels: bool = True,
    ) -> np.ndarray:
        """:meth:`preview_tensor` for a numpy image (layouts as :meth:`restore_array`): the same dtype and
        channels at the preview size; an alpha channel is shrunk like the colours, not restored."""
        return run_on_array(
            array, self.channels, lambda x: self.preview_tensor(x, z, alpha, max_side, scale_levels)
        )

    def restore(
        self,
        image: ImageT,
        blur: float | None = None,
        noise: float | None = None,
        alpha: float | None = None,
        z: Sequence[float] | Tensor | None = None,
        tile: int | None = None,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        levels: Mapping[str, float] | None = None,
        jpeg: float | None = None,
        auto: bool = False,
        maps: Mapping[str, Any] | None = None,
    ) -> ImageT:
        """Restore ``image`` assuming it was degraded with ``blur`` / ``noise`` (physical units) and, for a model
        with a JPEG factor, compressed at quality ``jpeg`` (0: none); or under a raw ``z``. ``auto``: the levels
        not given are estimated from the image (:meth:`estimate`).

        ``image``: a PIL image, a numpy array ``(H, W)`` / ``(H, W, 1|2|3|4)`` (uint8, uint16 or float in
        [0, 1]) or a float tensor ``(C, H, W)`` / ``(B, C, H, W)`` in [0, 1] (C 3 or 1); the result is of the same
        kind, shape and dtype (tensors on the same device; palette PIL images come back as RGB or RGBA), but gray
        from a gray model. ``alpha`` in [0, 1]
        blends the DNI pair (0 = GAN, 1 = MSE; None is the MSE model). ``levels`` sets further codec factors by
        name. ``tile`` restores in overlapping tiles of that size. ``maps``: a level map ``(H, W)`` per factor
        (blur, noise; physical units), which replaces that factor's level (:mod:`.maps`).
        """
        if auto:  # a factor with no estimate stays at level 0
            named = {"blur": blur, "noise": noise, "jpeg": jpeg, **(levels or {})}
            wanted = [name for name in self.codec.names if named.get(name) is None]
            estimated = {
                n: e.value for n, e in self.estimate(image, factors=wanted).items() if e.value is not None
            }
            levels = {**estimated, **(levels or {})}
        cond = self.with_maps(image, self.z_for(blur, noise, z, levels, jpeg), maps)
        return _apply(image, self.channels, lambda x: self.restore_tensor(x, cond, alpha, tile, tile_overlap))

    def preview(
        self,
        image: ImageT,
        blur: float | None = None,
        noise: float | None = None,
        alpha: float | None = None,
        z: Sequence[float] | Tensor | None = None,
        levels: Mapping[str, float] | None = None,
        jpeg: float | None = None,
        *,
        max_side: int = PREVIEW_SIDE,
        scale_levels: bool = True,
        maps: Mapping[str, Any] | None = None,
    ) -> ImageT:
        """A quick look at :meth:`restore` with the same arguments, for a large image: ``image`` shrunk so that
        its long side is at most ``max_side`` pixels, restored, and returned at that size (the same kind as the
        input; an image that already fits is restored at full size). Blur and noise levels are divided by the
        shrink factor, as shrinking divides them (see :meth:`preview_tensor`); ``scale_levels=False`` keeps them.
        """
        preview_size(1, 1, max_side)  # checks max_side before any work
        cond = self.with_maps(image, self.z_for(blur, noise, z, levels, jpeg), maps)
        return _apply(
            image, self.channels, lambda x: self.preview_tensor(x, cond, alpha, max_side, scale_levels)
        )


def load_restorer(
    model: str | Path,
    gan: str | Path | None = None,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    estimator: str | Path | None = "auto",
) -> Restorer:
    """A :class:`Restorer` for a generator file (``.ckpt``, exported ``.safetensors``, the released weights, or
    ``zoo:NAME``: a model of the zoo, :mod:`cugan_lightning.zoo`).

    With ``gan`` the two are a DNI pair (``model`` the MSE end, ``gan`` the GAN end) and ``restore``
    accepts ``alpha``. ``device`` may be ``"auto"``; ``precision`` as :class:`Restorer` takes it. ``estimator``:
    a level estimator file or ``zoo:NAME``; ``auto``, the zoo's estimator for the model's codec if there is one.
    """
    device = resolve_device(device)
    main_source = read_generator_file(model, "MSE" if gan is not None else "model")
    net_g = main_source.build(device)
    blender = None
    if gan is not None:
        gan_source = read_generator_file(gan, "GAN")
        blender = DNIBlender.from_sources(main_source, gan_source, device=device)
    learned = functools.partial(find_estimator, estimator, main_source.codec, model)  # loaded when first used
    return Restorer(
        net_g, main_source.codec, blender=blender, device=device, precision=precision, estimator=learned
    )
