"""The MSE-to-GAN curve: a DNI blend scored at several alphas, in one process or merged from a multirun's jobs.

Entries are mean scores ``{blend, alpha, setting, metric, value}``; the table gives, per alpha and setting, the
distortion (PSNR) and the perception score (LPIPS, else DISTS), and the plot draws one line per setting.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .plots import plot_curve
from .tables import base_metric, format_value, markdown_table, write_csv, write_json, write_text

__all__ = ["curve_axes", "write_curve"]


def curve_axes(metrics: Iterable[str]) -> tuple[str | None, str | None]:
    """(perception metric label, distortion metric label) among the scored ones: LPIPS before DISTS, PSNR."""
    metrics = list(metrics)
    perception = next((m for want in ("lpips", "dists") for m in metrics if base_metric(m) == want), None)
    distortion = next((m for m in metrics if base_metric(m) == "psnr"), None)
    return perception, distortion


def write_curve(
    entries: Sequence[Mapping[str, Any]], folder: str | Path, settings: Sequence[str]
) -> tuple[str, list[Path]]:
    """Write ``curve.md`` / ``.csv`` / ``.json`` (and ``curve.png`` when a perception metric was scored) into
    ``folder``; returns the Markdown and the files written. Nothing is written without entries."""
    if not entries:
        return "", []
    folder = Path(folder)
    values: dict[tuple[str, float, str], dict[str, float]] = defaultdict(dict)
    for e in entries:
        values[(e["blend"], float(e["alpha"]), e["setting"])][e["metric"]] = float(e["value"])
    metrics = sorted({e["metric"] for e in entries})
    perception, distortion = curve_axes(metrics)
    shown = [m for m in (distortion, perception) if m is not None] or metrics[:2]
    rows, blocks, written = [], [], []
    for blend in sorted({key[0] for key in values}):
        alphas = sorted({key[1] for key in values if key[0] == blend})
        body = []
        for alpha in alphas:
            cells = [f"{alpha:g}"]
            for setting in settings:
                scores = values.get((blend, alpha, setting), {})
                cells.append(" / ".join(format_value(scores.get(m), m) for m in shown))
                rows.extend(
                    {"blend": blend, "alpha": alpha, "setting": setting, "metric": m, "value": v}
                    for m, v in sorted(scores.items())
                )
            body.append(cells)
        title = f"### {blend}: {' / '.join(shown)} per alpha (0 = GAN, 1 = MSE)"
        blocks.append(title + "\n\n" + markdown_table(["alpha", *settings], body))
        if perception is not None and distortion is not None:
            points = {
                setting: [
                    (
                        alpha,
                        values[(blend, alpha, setting)][perception],
                        values[(blend, alpha, setting)][distortion],
                    )
                    for alpha in alphas
                    if {perception, distortion} <= set(values.get((blend, alpha, setting), {}))
                ]
                for setting in settings
            }
            name = "curve.png" if blend == sorted({k[0] for k in values})[0] else f"curve_{blend}.png"
            written.append(plot_curve(points, perception, distortion, folder / name))
    if perception is None:
        blocks.append("No LPIPS or DISTS was scored, so there is no perception-distortion plot.")
    text = "\n\n".join(blocks) + "\n"
    written += [
        write_text(folder / "curve.md", text),
        write_csv(folder / "curve.csv", rows, ["blend", "alpha", "setting", "metric", "value"]),
        write_json(folder / "curve.json", rows),
    ]
    return text, written
