"""Figures of an evaluation: modulation-map heatmaps, the MSE-to-GAN (perception-distortion) curve, and a grid
of restorations, and the modulation maps' tables beside their heatmaps. Drawn with matplotlib's object API (no
pyplot state, no display needed), saved atomically."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from .modulation import ModulationMap
from .tables import markdown_table, write_csv, write_json, write_text

__all__ = ["plot_curve", "plot_modulation_map", "save_figure", "write_modulation"]


def save_figure(figure, path: str | Path) -> Path:  # noqa: ANN001 - a matplotlib Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))


def plot_modulation_map(result: ModulationMap, path: str | Path) -> Path:
    """Heatmap of the scores over the condition grid, the true condition (x) and the best one (star) marked."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.6))
    axes = figure.add_subplot()
    image = axes.imshow(result.scores, origin="lower", aspect="auto", cmap="viridis")
    axes.set_xticks(range(len(result.noise_values)), [f"{v:g}" for v in result.noise_values])
    axes.set_yticks(range(len(result.blur_values)), [f"{v:g}" for v in result.blur_values])
    axes.set_xlabel("noise condition (sigma, 0-255 scale)")
    axes.set_ylabel("blur condition (sigma, pixels)")

    def position(
        blur: float, noise: float
    ) -> tuple[float, float]:  # grid coordinates, between cells if needed
        return (
            float(np.interp(noise, result.noise_values, range(len(result.noise_values)))),
            float(np.interp(blur, result.blur_values, range(len(result.blur_values)))),
        )

    best_blur, best_noise, best_score = result.best
    axes.plot(*position(result.blur, result.noise), "wx", markersize=12, mew=3, label="true condition")
    axes.plot(*position(best_blur, best_noise), "r*", markersize=14, label="best condition")
    axes.legend(loc="upper right", fontsize=8)
    axes.set_title(
        f"{result.model} on {result.setting}: best ({best_blur:g}, {best_noise:g}) {best_score:.3f}, "
        f"true {result.true_score:.3f}, gap {result.gap:.3f}",
        fontsize=9,
    )
    figure.colorbar(image, ax=axes, label=result.metric)
    return save_figure(figure, path)


def plot_curve(
    points: Mapping[str, Sequence[tuple[float, float, float]]], x_metric: str, y_metric: str, path: str | Path
) -> Path:
    """Perception-distortion plot: per setting a line through ``(x, y)`` points labelled by their alpha;
    ``points[setting] = [(alpha, x, y), ...]``."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.8))
    axes = figure.add_subplot()
    for setting, values in points.items():
        ordered = sorted(values)
        xs, ys = [p[1] for p in ordered], [p[2] for p in ordered]
        axes.plot(xs, ys, "o-", label=setting, markersize=4)
        for alpha, x, y in (ordered[0], ordered[-1]):
            axes.annotate(f"a={alpha:g}", (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
    axes.set_xlabel(f"{x_metric} (perception, lower is better)")
    axes.set_ylabel(f"{y_metric} (distortion, higher is better)")
    axes.set_title("MSE to GAN: one point per alpha (a=0 GAN, a=1 MSE)", fontsize=10)
    axes.legend(fontsize=7, ncols=2)
    axes.grid(alpha=0.3)
    return save_figure(figure, path)


def write_modulation(maps: Sequence[ModulationMap], out: Path) -> None:
    """``modulation.csv`` / ``.json`` / ``.md`` and one heatmap per map under ``modulation_maps/`` (nothing
    without maps)."""
    if not maps:
        return
    rows = [m.row() for m in maps]
    write_csv(out / "modulation.csv", rows)
    write_json(out / "modulation.json", rows)
    body = [
        [r["model"], r["setting"], f"({r['best_blur']:g}, {r['best_noise']:g})", f"{r['best_score']:.4g}",
         f"{r['true_score']:.4g}", f"{r['gap']:.4g}"]
        for r in rows
    ]  # fmt: skip
    heading = f"### Modulation maps ({maps[0].metric}): best condition against the true one\n\n"
    write_text(
        out / "modulation.md",
        heading
        + markdown_table(["model", "setting", "best z (blur, noise)", "best", "at true z", "gap"], body)
        + "\n",
    )
    for m in maps:
        plot_modulation_map(m, out / "modulation_maps" / f"{m.model}_{m.setting}.png")
