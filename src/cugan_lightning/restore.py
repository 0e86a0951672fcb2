"""User-facing restoration: the :class:`Restorer` Python API and the ``python -m cugan_lightning.restore`` tool.

Python::

    from cugan_lightning import load_restorer
    restorer = load_restorer("mse.ckpt", gan_ckpt="gan.ckpt")        # gan_ckpt optional (DNI)
    out = restorer.restore(image, blur=2.0, noise=30, alpha=0.5)       # PIL, numpy or tensor in, same kind out

Command line::

    python -m cugan_lightning.restore photo.png -o restored.png --ckpt mse.ckpt --blur 2 --noise 30
    python -m cugan_lightning.restore photos/ -o out/ --ckpt mse.ckpt --gan-ckpt gan.ckpt --alpha 0.3 --noise 25
    python -m cugan_lightning.restore photo.png -o grid.png --ckpt mse.ckpt --gan-ckpt gan.ckpt --sweep

Levels are in physical units (blur sigma in pixels, noise sigma on the 0-255 scale) and go through the codec stored
in the checkpoint; ``--z`` gives the raw condition vector instead. Images of any size work (the network pads
internally); ``--tile`` restores large images in overlapping tiles blended with linear ramps, so the result matches
the untiled one. Gray images are restored as RGB (the gray value repeated) and converted back by averaging the three
output channels; an alpha channel is passed through untouched; 16-bit images are processed in float and written back
at 16 bit (PNG or TIFF).
"""

from __future__ import annotations

import argparse
import math
import numbers
import struct
import sys
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from .checkpoint import CheckpointError
from .data.io import PNG_SIGNATURE, list_images, read_image_raw, to_float
from .degradations import LevelCodec
from .dni import (
    ALPHA_HELP,
    CliArgumentParser,
    CliError,
    DNIBlender,
    build_source_generator,
    check_alpha,
    check_output_path,
    parse_alpha,
    read_generator_source,
    run_cli,
)

# Inputs are read as stored (gray stays gray, alpha and 16 bits are kept): the data package's reader.
read_input_image = read_image_raw

__all__ = [
    "Restorer",
    "load_restorer",
    "main",
    "read_input_image",
    "resolve_device",
    "tile_spans",
    "tiled_forward",
    "write_output_image",
]

DEFAULT_TILE_OVERLAP = 32
MIN_TILE = 16
SWEEP_STEPS = 6
ImageT = TypeVar("ImageT")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when available; asking for CUDA without it is a ValueError."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available; use --device cpu or auto")
    return device


# ------------------------------------------------------------------------------------------------------ tiling


def tile_spans(size: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int]]:
    """``[start, end)`` spans covering ``0 .. size`` in tiles of about ``tile`` pixels overlapping by ``overlap``.

    Every start is a multiple of ``multiple`` (the network's downsampling factor), so each tile sees the same
    pixel grid phase as the whole image would; the last tile ends exactly at ``size``.
    """
    if size <= tile:
        return [(0, size)]
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    starts = list(range(0, size - tile, stride))
    last = (size - tile) // multiple * multiple
    if last > starts[-1]:
        starts.append(last)
    spans = [(s, s + tile) for s in starts]
    spans[-1] = (starts[-1], size)
    return spans


def _ramp(length: int, device: torch.device) -> Tensor:
    """Rising window over a shared strip of ``length`` pixels: 0 on the outer quarter, linear across the middle
    half, 1 on the inner quarter. Pixels next to a tile's border (where its padding shows) then get no weight."""
    margin = length / 4
    position = torch.arange(length, device=device, dtype=torch.float32) + 0.5
    return ((position - margin) / max(length - 2 * margin, 1.0)).clamp(0.0, 1.0)


def _windows(spans: list[tuple[int, int]], device: torch.device) -> list[Tensor]:
    """Per-span 1-D blending windows: ramps over the parts shared with a neighbour, 1 elsewhere."""
    out = []
    for i, (start, end) in enumerate(spans):
        window = torch.ones(end - start, device=device)
        if i > 0:
            shared = spans[i - 1][1] - start
            window[:shared] *= _ramp(shared, device)
        if i < len(spans) - 1:
            shared = end - spans[i + 1][0]
            window[end - start - shared :] *= _ramp(shared, device).flip(0)
        out.append(window)
    return out


def tiled_forward(
    run: Callable[[Tensor], Tensor], x: Tensor, tile: int, overlap: int, multiple: int = 1
) -> Tensor:
    """Apply ``run`` (``(B, C, h, w) -> (B, C, h, w)``) to ``x`` ``(B, C, H, W)`` in overlapping tiles.

    Overlaps are blended with linear ramps that give no weight to the quarter of the overlap nearest each tile's
    border (weights normalised per pixel): the pixels a tile gets wrong (its padding reaches them) are taken from
    its neighbour, there are no seams, and the result matches ``run(x)`` closely.
    """
    height, width = x.shape[-2:]
    rows = tile_spans(height, tile, overlap, multiple)
    cols = tile_spans(width, tile, overlap, multiple)
    if len(rows) == 1 and len(cols) == 1:
        return run(x)
    out = torch.zeros_like(x)
    total = torch.zeros((1, 1, height, width), dtype=x.dtype, device=x.device)
    row_w, col_w = _windows(rows, x.device), _windows(cols, x.device)
    for (y0, y1), wy in zip(rows, row_w, strict=True):
        for (x0, x1), wx in zip(cols, col_w, strict=True):
            window = (wy[:, None] * wx[None, :]).to(x.dtype)
            out[..., y0:y1, x0:x1] += run(x[..., y0:y1, x0:x1]) * window
            total[..., y0:y1, x0:x1] += window
    return out / total


# ---------------------------------------------------------------------------------------------- array layouts


def _split_channels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """``(H, W)``, ``(H, W, 1|2|3|4)`` -> float32 RGB ``(H, W, 3)`` in [0, 1], the alpha channel or None, gray?"""
    if array.dtype == bool or not (
        array.dtype in (np.uint8, np.uint16) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(f"image arrays must be uint8, uint16 or float in [0, 1], got dtype {array.dtype}")
    if array.ndim == 2:
        color, alpha = array[:, :, None], None
    elif array.ndim == 3 and array.shape[2] in (1, 2, 3, 4):
        channels = array.shape[2]
        color = array[:, :, : 1 if channels <= 2 else 3]
        alpha = array[:, :, channels - 1] if channels in (2, 4) else None
    else:
        raise ValueError(
            f"unsupported image shape {array.shape}; expected (H, W) or (H, W, C) with C in 1, 2, 3, 4"
        )
    if min(array.shape[:2]) < 1:
        raise ValueError(f"image is empty: shape {array.shape}")
    gray = color.shape[2] == 1
    rgb = to_float(np.repeat(color, 3, axis=2) if gray else color)
    return np.ascontiguousarray(rgb, dtype=np.float32), alpha, gray


def _from_float(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    values = np.clip(values, 0.0, 1.0)
    if dtype == np.uint8:
        return np.round(values * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(values * 65535.0).astype(np.uint16)
    return values.astype(dtype)


def _merge_channels(
    rgb: np.ndarray, alpha: np.ndarray | None, gray: bool, template: np.ndarray
) -> np.ndarray:
    """Restored float RGB ``(H, W, 3)`` back to ``template``'s layout and dtype, with its alpha untouched."""
    # Gray: the three outputs differ only by what the network does to a neutral input; their mean is the
    # least-squares gray value.
    color = rgb.mean(axis=2, keepdims=True) if gray else rgb
    color = _from_float(color, template.dtype)
    if template.ndim == 2:
        return color[:, :, 0]
    if alpha is not None:
        return np.concatenate([color, alpha[:, :, None].astype(template.dtype)], axis=2)
    return color


_PIL_DIRECT = ("RGB", "RGBA", "L", "LA")


def _pil_to_array(image: Image.Image) -> tuple[np.ndarray, str]:
    """A PIL image as an array plus the mode to give the result (same as the input where PIL can store it)."""
    mode = image.mode
    if mode in _PIL_DIRECT:
        return np.asarray(image), mode
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16), "I;16"
    if mode == "I":
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16), "I"
    if mode == "F":
        return np.asarray(image, dtype=np.float32), "F"
    if mode == "1":
        return np.asarray(image.convert("L")), "L"
    if mode in ("PA", "La") or "transparency" in image.info:
        return np.asarray(image.convert("RGBA")), "RGBA"
    return np.asarray(image.convert("RGB")), "RGB"


def _array_to_pil(array: np.ndarray, mode: str) -> Image.Image:
    if mode == "I":
        return Image.fromarray(array.astype(np.int32))
    return Image.fromarray(array)


# --------------------------------------------------------------------------------------------------- restorer


class Restorer:
    """A generator (optionally a DNI pair) ready to restore images under user-chosen conditions.

    Condition weights are cached per ``(alpha, z)`` and the DNI blend is redone only when alpha changes, so moving
    one slider costs one base-network pass. ``stats`` counts ``condition_calls`` (C_G evaluations),
    ``blend_calls`` (DNI re-blends) and ``forward_calls`` (base-network passes, one per tile).
    """

    def __init__(
        self,
        net_g: nn.Module,
        codec: LevelCodec,
        *,
        blender: DNIBlender | None = None,
        device: str | torch.device = "cpu",
        cache_size: int = 256,
    ) -> None:
        self.device = resolve_device(device)
        self.net_g = net_g.to(self.device).eval()
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

    @property
    def alpha(self) -> float:
        """The DNI weight the network holds now (1.0 = the MSE end; always 1.0 without a GAN checkpoint)."""
        return self._alpha

    # ------------------------------------------------------------------------------------------- conditions
    def z_for(
        self,
        blur: float | None = None,
        noise: float | None = None,
        z: Sequence[float] | Tensor | None = None,
        levels: Mapping[str, float] | None = None,
    ) -> Tensor:
        """The condition ``(1, cond_dim)`` for physical levels (factors left out are 0) or a raw ``z``."""
        if z is not None:
            if blur is not None or noise is not None or levels:
                raise ValueError("give either the levels (blur / noise) or a raw z, not both")
            values = torch.as_tensor(z, dtype=torch.float32).detach().cpu().reshape(-1)
            names = ", ".join(self.codec.names)
            if values.numel() != self.codec.cond_dim:
                raise ValueError(f"z must hold {self.codec.cond_dim} values ({names}), got {values.numel()}")
            bad = [float(v) for v in values if not 0.0 <= float(v) <= 1.0]  # NaN is bad too
            if bad:
                raise ValueError(f"z value {bad[0]:g} is outside 0..1 (z = level / max level for {names})")
            return values[None]
        mapping: dict[str, float] = dict(levels or {})
        for name, value in (("blur", blur), ("noise", noise)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise ValueError(f"{name} level must be a number, got {value!r}")
                mapping[name] = float(value)
        return self.codec.encode(mapping).to(torch.float32)

    def _check_alpha(self, alpha: float | None) -> float:
        if alpha is None:
            return 1.0
        if self.blender is None:
            raise ValueError("alpha blends two models and needs a GAN checkpoint (gan_ckpt / --gan-ckpt)")
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
        """Restore ``x`` ``(B, 3, H, W)`` in [0, 1] (on the restorer's device) under ``z`` ``(1, cond_dim)``.

        Returns ``(B, 3, H, W)`` clamped to [0, 1]. ``tile`` restores in overlapping tiles of that size.
        """
        weights = self.condition_weights(z, alpha)
        x = x.to(device=self.device, dtype=torch.float32)

        def run(part: Tensor) -> Tensor:
            self.stats["forward_calls"] += 1
            return self.net_g(part, weights=weights)

        if tile is None:
            return run(x).clamp(0.0, 1.0)
        tile, tile_overlap = check_tile(tile, tile_overlap)
        multiple = int(getattr(self.net_g, "pad_multiple", 1))
        return tiled_forward(run, x, tile, tile_overlap, multiple).clamp(0.0, 1.0)

    def restore_array(
        self,
        array: np.ndarray,
        z: Tensor,
        alpha: float | None = None,
        tile: int | None = None,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
    ) -> np.ndarray:
        """Restore a numpy image ``(H, W)`` / ``(H, W, 1|2|3|4)`` (uint8, uint16 or float in [0, 1]).

        Returns the same shape and dtype; an alpha channel (last of 2 or 4) is copied from the input.
        """
        rgb, alpha_channel, gray = _split_channels(np.asarray(array))
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        restored = self.restore_tensor(x, z, alpha, tile, tile_overlap)[0].permute(1, 2, 0).cpu().numpy()
        return _merge_channels(restored, alpha_channel, gray, np.asarray(array))

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
    ) -> ImageT:
        """Restore ``image`` assuming it was degraded with ``blur`` / ``noise`` (physical units) or raw ``z``.

        ``image``: a PIL image, a numpy array ``(H, W)`` / ``(H, W, 1|2|3|4)`` (uint8, uint16 or float in
        [0, 1]) or a float tensor ``(3, H, W)`` / ``(B, 3, H, W)`` in [0, 1]; the result is of the same kind, shape
        and dtype (tensors on the same device; palette PIL images come back as RGB or RGBA). ``alpha`` in [0, 1]
        blends the DNI pair (0 = GAN, 1 = MSE; None is the MSE model). ``levels`` sets further codec factors by
        name. ``tile`` restores in overlapping tiles of that size.
        """
        cond = self.z_for(blur, noise, z, levels)
        if isinstance(image, Image.Image):
            array, mode = _pil_to_array(image)
            restored = self.restore_array(array, cond, alpha, tile, tile_overlap)
            return _array_to_pil(restored, mode)  # type: ignore[return-value]
        if isinstance(image, Tensor):
            if not image.is_floating_point() or image.dim() not in (3, 4) or image.shape[-3] != 3:
                raise ValueError(
                    f"tensor images must be float (3, H, W) or (B, 3, H, W) in [0, 1], got {image.dtype} "
                    f"{tuple(image.shape)}"
                )
            batch = image if image.dim() == 4 else image[None]
            out = self.restore_tensor(batch, cond, alpha, tile, tile_overlap)
            out = out if image.dim() == 4 else out[0]
            return out.to(device=image.device, dtype=image.dtype)  # type: ignore[return-value]
        if isinstance(image, np.ndarray):
            return self.restore_array(image, cond, alpha, tile, tile_overlap)  # type: ignore[return-value]
        raise TypeError(
            f"image must be a PIL image, a numpy array or a torch tensor, got {type(image).__name__}"
        )


def check_tile(tile: int, overlap: int) -> tuple[int, int]:
    """Validate the tiling settings: ``tile >= 16`` and ``0 <= overlap < tile``."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < MIN_TILE:
        raise ValueError(f"tile size must be an integer >= {MIN_TILE}, got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be an integer in [0, tile size {tile}), got {overlap!r}")
    return tile, overlap


def load_restorer(
    ckpt: str | Path,
    gan_ckpt: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> Restorer:
    """A :class:`Restorer` for a generator checkpoint (``.ckpt`` or exported ``.safetensors``).

    With ``gan_ckpt`` the two are a DNI pair (``ckpt`` the MSE end, ``gan_ckpt`` the GAN end) and ``restore``
    accepts ``alpha``. ``device`` may be ``"auto"``.
    """
    device = resolve_device(device)
    main_source = read_generator_source(ckpt, "MSE" if gan_ckpt is not None else "model")
    net_g = build_source_generator(main_source, device)
    blender = None
    if gan_ckpt is not None:
        gan_source = read_generator_source(gan_ckpt, "GAN")
        blender = DNIBlender.from_sources(main_source, gan_source, device=device)
    return Restorer(net_g, main_source.codec, blender=blender, device=device)


# ------------------------------------------------------------------------------------------------ image files


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode_png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG of ``(H, W)`` or ``(H, W, 2|3|4)`` uint16 (PIL cannot write 16-bit colour PNGs)."""
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = np.ascontiguousarray(array.astype(">u2")).view(np.uint8).reshape(height, -1)
    rows = np.concatenate([np.zeros((height, 1), np.uint8), raw], axis=1)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def _check_writable_as(layout: tuple[int, ...], path: Path) -> None:
    """Refuse a layout that the output format cannot store (alpha in JPEG / BMP), before anything is written."""
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CliError(
            f"unsupported output extension '{path.suffix}' for '{path}'; use {', '.join(_FORMATS)}"
        )
    has_alpha = len(layout) == 3 and layout[2] in (2, 4)
    if has_alpha and fmt in ("JPEG", "BMP"):
        raise CliError(f"'{path}': {fmt} cannot store the alpha channel of the input; write .png or .tif")


def write_output_image(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 / uint16 image (layouts as :func:`read_input_image`) atomically, format from the extension.

    16-bit data stays 16-bit in PNG and TIFF; JPEG and BMP get 8 bits.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported output extension '{path.suffix}'; use {', '.join(_FORMATS)}")
    if array.dtype == np.uint16 and fmt in ("JPEG", "BMP"):
        array = np.round(array / 257.0).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "TIFF":
            import tifffile

            photometric = "minisblack" if array.ndim == 2 or array.shape[2] == 2 else "rgb"
            extrasamples = ["unassalpha"] if array.ndim == 3 and array.shape[2] in (2, 4) else None
            with open(tmp, "wb") as handle:
                tifffile.imwrite(handle, array, photometric=photometric, extrasamples=extrasamples)
        elif fmt == "PNG" and array.dtype == np.uint16:
            tmp.write_bytes(_encode_png16(array))
        else:
            options = {"quality": 95} if fmt == "JPEG" else {}
            Image.fromarray(array).save(tmp, format=fmt, **options)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ------------------------------------------------------------------------------------------------------ sweep


def sweep_rows(
    restorer: Restorer,
    array: np.ndarray,
    z: Tensor,
    alpha: float | None,
    tile: int | None = None,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
) -> list[tuple[str, list[tuple[str, Tensor]]]]:
    """Panels of a modulation figure (paper Figure 4) for one image restored around condition ``z``.

    One row per codec factor (blur: "deblurring", noise: "denoising"), its level swept from 0 to the maximum with
    the others fixed, and with a DNI pair a last "MSE to GAN" row sweeping alpha. Each row starts with the input.
    """
    rgb, _, _ = _split_channels(array)
    lq = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    input_panel = ("input", lq[0])
    titles = {"blur": "deblurring", "noise": "denoising"}
    rows = []
    for index, name in enumerate(restorer.codec.names):
        panels = [input_panel]
        maximum = restorer.codec.max_levels[index]
        for level in np.linspace(0.0, maximum, SWEEP_STEPS):
            zs = z.clone()
            zs[0, index] = float(level) / maximum
            out = restorer.restore_tensor(lq, zs, alpha, tile, tile_overlap)[0].cpu()
            panels.append((f"{name} {float(level):.3g}", out))
        rows.append((titles.get(name, f"{name} sweep"), panels))
    if restorer.blender is not None:
        panels = [input_panel]
        for value in np.linspace(0.0, 1.0, SWEEP_STEPS):
            label = {0.0: " GAN", 1.0: " MSE"}.get(float(value), "")
            out = restorer.restore_tensor(lq, z, float(value), tile, tile_overlap)[0].cpu()
            panels.append((f"alpha {float(value):.2g}{label}", out))
        rows.append(("MSE to GAN", panels))
    return rows


# ---------------------------------------------------------------------------------------------------- command


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="python -m cugan_lightning.restore",
        description="Restore images with a CUnet / CUGAN checkpoint under chosen degradation levels "
        "(and, with a GAN checkpoint, a chosen MSE-to-GAN balance).",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files and/or folders")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, help="output file (one input) or folder (created)"
    )
    parser.add_argument(
        "--ckpt", required=True, type=Path, help="generator checkpoint (.ckpt or .safetensors)"
    )
    parser.add_argument(
        "--gan-ckpt", type=Path, help="GAN checkpoint: blend with --ckpt by DNI (needs --alpha)"
    )
    parser.add_argument("--alpha", type=parse_alpha, help=f"DNI weight in [0, 1]: {ALPHA_HELP}")
    parser.add_argument(
        "--blur", type=float, help="blur sigma of the input in pixels (codec range, e.g. 0..4)"
    )
    parser.add_argument(
        "--noise", type=float, help="noise sigma of the input on the 0-255 scale (e.g. 0..50)"
    )
    parser.add_argument("--z", type=float, nargs="+", metavar="Z", help="raw condition vector in [0, 1]")
    parser.add_argument(
        "--tile", type=int, help=f"restore in tiles of this size (>= {MIN_TILE}) to save memory"
    )
    parser.add_argument(
        "--tile-overlap", type=int, default=DEFAULT_TILE_OVERLAP, help="overlap of neighbouring tiles"
    )
    parser.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"), help="default: auto")
    parser.add_argument("--ext", default="png", help="output extension when -o is a folder (default png)")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="write a modulation grid (one row per slider) instead of one result",
    )
    return parser


@dataclass
class _Job:
    source: Path
    target: Path


def _expand_inputs(inputs: Sequence[Path]) -> tuple[list[Path], bool]:
    """Input files (folders expanded, top level only) and whether any folder was given."""
    files: list[Path] = []
    any_folder = False
    for item in inputs:
        if item.is_dir():
            any_folder = True
            files.extend(list_images(item))
        elif item.is_file():
            files.append(item)
        else:
            raise CliError(f"input '{item}' does not exist")
    seen: set[Path] = set()
    unique = []
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique, any_folder


def _plan(args: argparse.Namespace, files: list[Path], any_folder: bool) -> list[_Job]:
    output: Path = args.output
    ext = "png" if args.sweep else args.ext.lower().lstrip(".")
    if f".{ext}" not in _FORMATS:
        raise CliError(f"unsupported --ext '{args.ext}'; use one of {', '.join(e[1:] for e in _FORMATS)}")
    folder_mode = len(files) > 1 or any_folder or output.is_dir() or output.suffix == ""
    if not folder_mode:
        if args.sweep and output.suffix.lower() != ".png":
            raise CliError(f"a sweep is written as PNG; give an output ending in .png, not '{output}'")
        jobs = [_Job(files[0], output)]
    else:
        if output.suffix.lower() in _FORMATS and not output.is_dir():
            raise CliError(
                f"-o '{output}' looks like a file but there are {len(files)} inputs; give a folder"
            )
        if output.exists() and not output.is_dir():
            raise CliError(f"-o '{output}' exists and is not a folder")
        jobs = [_Job(file, output / f"{file.stem}.{ext}") for file in files]
    targets: dict[Path, Path] = {}
    sources = {job.source.resolve() for job in jobs}
    for job in jobs:
        key = job.target.resolve()
        if key in targets:
            raise CliError(
                f"inputs '{targets[key]}' and '{job.source}' would both be written to '{job.target}'"
            )
        if key in sources:
            raise CliError(f"output '{job.target}' would overwrite an input image")
        targets[key] = job.source
        check_output_path(job.target)
    return jobs


KEEP_DECODED_BYTES = 1 << 30


def _run(args: argparse.Namespace) -> None:
    # 1. arguments that need no file
    if args.alpha is not None and args.gan_ckpt is None:
        raise CliError("--alpha blends two models and needs --gan-ckpt")
    if args.gan_ckpt is not None and args.alpha is None and not args.sweep:
        raise CliError(f"--gan-ckpt needs --alpha in [0, 1] ({ALPHA_HELP})")
    if args.alpha is not None:
        check_alpha(args.alpha)
    if args.z is not None and (args.blur is not None or args.noise is not None):
        raise CliError("give either --blur / --noise (physical units) or --z, not both")
    if args.z is None and args.blur is None and args.noise is None and not args.sweep:
        raise CliError("give the input's degradation: --blur SIGMA and/or --noise SIGMA, or --z Z1 Z2")
    for name in ("blur", "noise"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            raise CliError(f"--{name} must be a finite number, got {value}")
    if args.tile is not None:
        check_tile(args.tile, args.tile_overlap)
    device = resolve_device(args.device)

    # 2. inputs and outputs, all checked before anything is written
    files, any_folder = _expand_inputs(args.inputs)
    jobs = _plan(args, files, any_folder)
    decoded: dict[Path, np.ndarray] = {}  # kept for step 4 while they fit, so small runs read each file once
    budget = KEEP_DECODED_BYTES
    for job in jobs:
        array = read_input_image(job.source)
        if not args.sweep:
            _check_writable_as(array.shape, job.target)
        if array.nbytes <= budget:
            decoded[job.source] = array
            budget -= array.nbytes

    # 3. the model and the condition
    restorer = load_restorer(args.ckpt, args.gan_ckpt, device)
    z = restorer.z_for(args.blur, args.noise, args.z)

    # 4. restore and write (each file atomically)
    for job in jobs:
        array = decoded.pop(job.source, None)
        if array is None:
            array = read_input_image(job.source)
        try:
            _restore_job(restorer, job, array, z, args)
        except torch.cuda.OutOfMemoryError:  # the CPU allocator raises plain RuntimeError
            size = "x".join(str(n) for n in array.shape[:2])
            hint = "use a smaller --tile" if args.tile else "use --tile 512 (or smaller)"
            raise CliError(f"out of memory restoring '{job.source}' ({size}) on {device}; {hint}") from None
        print(f"wrote {job.target}")


def _restore_job(
    restorer: Restorer, job: _Job, array: np.ndarray, z: Tensor, args: argparse.Namespace
) -> None:
    if args.sweep:
        from .figures import render_rows, save_png

        rows = sweep_rows(restorer, array, z, args.alpha, args.tile, args.tile_overlap)
        save_png(render_rows(rows), job.target)
    else:
        restored = restorer.restore_array(array, z, args.alpha, args.tile, args.tile_overlap)
        write_output_image(restored, job.target)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cugan_lightning.restore INPUT... -o OUT --ckpt X.ckpt ...``; returns the exit status."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
