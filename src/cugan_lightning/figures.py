"""Modulation figures: one degraded input restored under sweeps of its conditions (pure torch + PIL).

Two layouts: :func:`modulation_rows` (training and demo figures: the restoration at the true condition, then
sweeps of the noise and blur conditions) and :func:`slider_rows` (the restore tool's ``--sweep``: one row per
slider, like the paper's Figure 4). :func:`render_rows` draws either; :func:`save_png` writes it atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


SWEEPS = {"noise": NOISE_SWEEP, "blur": BLUR_SWEEP, "jpeg": JPEG_SWEEP}
"""The swept levels of the factors with their own; another factor sweeps 0 to its maximum in SLIDER_STEPS."""


def sweep_levels(codec: LevelCodec, name: str) -> tuple[float, ...]:
    """The levels a modulation figure sweeps factor ``name`` of ``codec`` through."""
    if name in SWEEPS:
        return SWEEPS[name]
    maximum = codec.max_levels[codec.names.index(name)]
    return tuple(maximum * i / (SLIDER_STEPS - 1) for i in range(SLIDER_STEPS))


@torch.no_grad()
def sweep(
    restore: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    lq: torch.Tensor,
    codec: LevelCodec,
    levels: Mapping[str, Sequence[float]],
) -> torch.Tensor:
    """Restore one input ``lq`` ``(1, C, H, W)`` under each condition: ``levels`` gives each factor's values,
    all of one length N (a factor left out is 0; a level of a factor the codec lacks is refused by name).
    Returns ``(N, C, H, W)``."""
    count = max(len(values) for values in levels.values())
    columns = {
        name: torch.tensor([float(v) for v in values], dtype=torch.float32) for name, values in levels.items()
    }
    z = codec.encode_all({name: columns.get(name, torch.zeros(count)) for name in {*codec.names, *columns}})
    return restore(lq.expand(len(z), -1, -1, -1), z.to(device=lq.device, dtype=lq.dtype)).clamp(0, 1)


def modulation_rows(
    restore: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    lq: torch.Tensor,
    gt: torch.Tensor,
    codec: LevelCodec,
    levels: Mapping[str, float],
) -> Rows:
    """The labelled panels of a modulation figure for an input degraded with ``levels`` (by factor name; a
    JPEG level is a quality, 0: none).

    Row 1: input, output at the true condition, ground truth. Then one row per factor of the codec (noise, blur,
    jpeg first, then the others in the codec's order), its condition swept with the others at their true levels.
    Tensors are ``(C, H, W)`` in [0, 1] on the CPU.
    """
    true = {name: float(levels.get(name, 0.0)) for name in codec.names}
    true_out = sweep(restore, lq, codec, {name: [value] for name, value in true.items()})[0]
    condition = ", ".join(f"q{value:g}" if name == "jpeg" else f"{value:g}" for name, value in true.items())
    rows = [
        (
            "restoration",
            [
                (f"input {condition}", lq[0].cpu()),
                (f"output z=({condition})", true_out.cpu()),
                ("ground truth", gt[0].cpu()),
            ],
        )
    ]
    order = [name for name in SWEEPS if name in codec.names]
    order += [name for name in codec.names if name not in SWEEPS]
    for name in order:
        values = sweep_levels(codec, name)
        swept = {other: [value] * len(values) for other, value in true.items()} | {name: list(values)}
        outs = sweep(restore, lq, codec, swept)
        label = jpeg_label if name == "jpeg" else (lambda v, n=name: f"{n} {v:g}")
        rows.append((f"{name} sweep", [(label(v), o.cpu()) for v, o in zip(values, outs, strict=True)]))
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
