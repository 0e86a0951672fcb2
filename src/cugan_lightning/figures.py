"""Modulation figures: one degraded input restored under sweeps of its conditions (pure torch + PIL).

Two layouts: :func:`modulation_rows` (training and demo figures: the restoration at the true condition, then
sweeps of the noise and blur conditions) and :func:`slider_rows` (the restore tool's ``--sweep``: one row per
slider, like the paper's Figure 4). :func:`render_rows` draws either; :func:`save_png` writes it atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .atomic import atomic_write
from .data.io import tensor_to_uint8
from .degradations import LevelCodec

NOISE_SWEEP = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0)
BLUR_SWEEP = (0.0, 0.8, 1.6, 2.4, 3.2, 4.0)
JPEG_SWEEP = (0.0, 90.0, 70.0, 50.0, 30.0, 10.0)  # qualities, 0: no compression
SLIDER_STEPS = 6
Rows = list[tuple[str, list[tuple[str, torch.Tensor]]]]


@torch.no_grad()
def sweep(
    restore: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    lq: torch.Tensor,
    codec: LevelCodec,
    blur_levels: Sequence[float],
    noise_levels: Sequence[float],
    jpeg_levels: Sequence[float] | None = None,
) -> torch.Tensor:
    """Restore one input ``lq`` ``(1, 3, H, W)`` under each (blur, noise[, jpeg quality]) condition; returns
    ``(N, 3, H, W)``."""
    blur = torch.tensor(list(blur_levels), dtype=torch.float32)
    noise = torch.tensor(list(noise_levels), dtype=torch.float32)
    jpeg = torch.tensor(list(jpeg_levels), dtype=torch.float32) if jpeg_levels is not None else None
    z = codec.levels_to_z(blur, noise, jpeg).to(device=lq.device, dtype=lq.dtype)
    return restore(lq.expand(len(z), -1, -1, -1), z).clamp(0, 1)


def modulation_rows(
    restore: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    lq: torch.Tensor,
    gt: torch.Tensor,
    codec: LevelCodec,
    blur: float,
    noise: float,
    jpeg: float = 0.0,
) -> Rows:
    """The labelled panels of a modulation figure for an input degraded with (blur, noise[, jpeg quality]).

    Row 1: input, output at the true condition, ground truth. Row 2: a sweep of the noise condition at the true
    blur. Row 3: a sweep of the blur condition at the true noise. With a jpeg factor, row 4: a sweep of the JPEG
    quality condition. Tensors are ``(3, H, W)`` in [0, 1] on the CPU.
    """
    has_jpeg = "jpeg" in codec.names
    quality = [jpeg] if has_jpeg else None

    def at(values: Sequence[float]) -> list[float] | None:
        return [jpeg] * len(values) if has_jpeg else None

    true_out = sweep(restore, lq, codec, [blur], [noise], quality)[0]
    noise_out = sweep(restore, lq, codec, [blur] * len(NOISE_SWEEP), NOISE_SWEEP, at(NOISE_SWEEP))
    blur_out = sweep(restore, lq, codec, BLUR_SWEEP, [noise] * len(BLUR_SWEEP), at(BLUR_SWEEP))
    condition = f"{blur:g}, {noise:g}" + (f", q{jpeg:g}" if has_jpeg else "")
    rows = [
        (
            "restoration",
            [
                (f"input {condition}", lq[0].cpu()),
                (f"output z=({condition})", true_out.cpu()),
                ("ground truth", gt[0].cpu()),
            ],
        ),
        ("noise sweep", [(f"noise {n:g}", o.cpu()) for n, o in zip(NOISE_SWEEP, noise_out, strict=True)]),
        ("blur sweep", [(f"blur {b:g}", o.cpu()) for b, o in zip(BLUR_SWEEP, blur_out, strict=True)]),
    ]
    if has_jpeg:
        outs = sweep(restore, lq, codec, [blur] * len(JPEG_SWEEP), [noise] * len(JPEG_SWEEP), JPEG_SWEEP)
        rows.append(("jpeg sweep", [(jpeg_label(q), o.cpu()) for q, o in zip(JPEG_SWEEP, outs, strict=True)]))
    return rows


def jpeg_label(quality: float) -> str:
    return "no jpeg" if quality == 0 else f"jpeg q{quality:g}"


@torch.no_grad()
def slider_rows(
    restore: Callable[[torch.Tensor, torch.Tensor, float | None], torch.Tensor],
    lq: torch.Tensor,
    z: torch.Tensor,
    codec: LevelCodec,
    with_alpha: bool,
    steps: int = SLIDER_STEPS,
) -> Rows:
    """Panels of a modulation grid (paper Figure 4) for one input ``lq`` ``(1, 3, H, W)`` restored around ``z``.

    One row per codec factor (blur: "deblurring", noise: "denoising", jpeg: "deblocking"), its z swept from 0 to 1 with
    the others fixed, and with ``with_alpha`` a last "MSE to GAN" row sweeping the DNI weight. Each row starts
    with the input. ``restore(lq, z, alpha)`` returns ``(1, 3, H, W)`` in [0, 1].
    """
    input_panel = ("input", lq[0].cpu())
    titles = {"blur": "deblurring", "noise": "denoising", "jpeg": "deblocking"}
    rows = []
    for index, name in enumerate(codec.names):
        panels = [input_panel]
        maximum = codec.max_levels[index]
        for level in np.linspace(0.0, maximum, steps):
            swept = z.clone()
            swept[0, index] = float(level) / maximum
            physical = float(codec.decode(swept.cpu(), validate=False)[0, index])  # JPEG: the quality
            label = jpeg_label(round(physical)) if name == "jpeg" else f"{name} {physical:.3g}"
            panels.append((label, restore(lq, swept, None)[0].cpu()))
        rows.append((titles.get(name, f"{name} sweep"), panels))
    if with_alpha:
        panels = [input_panel]
        for value in np.linspace(0.0, 1.0, steps):
            label = {0.0: " GAN", 1.0: " MSE"}.get(float(value), "")
            panels.append((f"alpha {float(value):.2g}{label}", restore(lq, z, float(value))[0].cpu()))
        rows.append(("MSE to GAN", panels))
    return rows


def render_rows(rows: Rows, gap: int = 4, label_h: int = 14) -> np.ndarray:
    """Lay labelled panels out in titled rows on a white canvas; returns a uint8 ``(H, W, 3)`` array."""
    tile_h = max(p.shape[1] for _, panels in rows for _, p in panels)
    tile_w = max(p.shape[2] for _, panels in rows for _, p in panels)
    cols = max(len(panels) for _, panels in rows)
    row_h = label_h + tile_h + label_h + gap  # row title, panel labels, panels
    canvas = Image.new("RGB", (cols * (tile_w + gap) + gap, len(rows) * row_h + gap), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (title, panels) in enumerate(rows):
        y = gap + r * row_h
        draw.text((gap + 2, y), title.upper(), fill=(90, 90, 90))
        for c, (label, panel) in enumerate(panels):
            x = gap + c * (tile_w + gap)
            draw.text((x + 2, y + label_h), label, fill="black")
            canvas.paste(Image.fromarray(tensor_to_uint8(panel)), (x, y + 2 * label_h))
    return np.asarray(canvas)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 image atomically (temporary file, then rename) and return its path."""
    return atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))
