"""Tables from long-format scores: the summary (models x settings, per metric) and the paper's distance tables
(Tables 1 and 2: a modulated model against the per-level baselines), written as Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_bytes_atomic
from ..degradations.factors import lookup
from .metrics import HIGHER_IS_BETTER
from .models import BLIND_SUFFIX, EvalModel
from .settings import Setting

__all__ = [
    "conventions",
    "distance_tables",
    "estimation_tables",
    "format_value",
    "markdown_table",
    "mean_scores",
    "summary_tables",
    "write_csv",
    "write_json",
    "write_text",
]


def conventions(channels: int = 3) -> str:
    """How the scores are made, for the summary's header: RGB tables, or gray ones (``channels=1``)."""
    planes = "RGB in 0..255" if channels == 3 else "the gray channel in 0..255"
    luma = (
        "psnr_y on the BT.601 luma Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255"
        if channels == 3
        else "psnr_y, LPIPS and DISTS on the gray image repeated to RGB"
    )
    return (
        "Scores are means over the test images. Outputs are clamped and rounded to 8 bits before scoring; whole "
        f"images, no border crop. PSNR and SSIM on {planes} (SSIM: 11x11 Gaussian window, sigma 1.5); {luma}. "
        "LPIPS: AlexNet, v0.1; DISTS: VGG16."
    )


def base_metric(label: str) -> str:
    """``lpips_unverified`` -> ``lpips``: the metric a column label reports."""
    return label.removesuffix("_unverified")


def mean_scores(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], tuple[float, int]]:
    """``(model, setting, metric) -> (mean over images, number of images)``."""
    sums: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for row in rows:
        sums[(row["model"], row["setting"], row["metric"])].append(float(row["value"]))
    return {key: (math.fsum(values) / len(values), len(values)) for key, values in sums.items()}


def format_value(value: float | None, metric: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if base_metric(metric).startswith("psnr") else f"{value:.4f}"


def markdown_table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def summary_tables(
    means: Mapping[tuple[str, str, str], tuple[float, int]],
    models: Sequence[str],
    settings: Sequence[str],
    metrics: Sequence[str],
    protocol: str | None = None,
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The summary as (Markdown: one table per metric, models x settings plus their mean, each titled with the
    ``protocol`` that made its inputs; CSV rows; JSON)."""
    blocks, rows, as_json = [], [], {}
    for metric in metrics:
        body, per_model = [], {}
        for model in models:
            values = {s: means[(model, s, metric)][0] for s in settings if (model, s, metric) in means}
            if not values:
                continue
            mean = math.fsum(values.values()) / len(values)
            per_model[model] = {**values, "mean": mean}
            # a row with n/a cells (a baseline, a classical method) averages its own settings only: say over how many
            shown = format_value(mean, metric) + (
                "" if len(values) == len(settings) else f" ({len(values)} of {len(settings)})"
            )
            body.append([model, *(format_value(values.get(s), metric) for s in settings), shown])
            for s, value in values.items():
                rows.append(
                    {
                        "metric": metric,
                        "model": model,
                        "setting": s,
                        "value": value,
                        "images": means[(model, s, metric)][1],
                    }
                )
        arrow = "higher is better" if HIGHER_IS_BETTER[base_metric(metric)] else "lower is better"
        named = f", {protocol} protocol" if protocol else ""
        blocks.append(
            f"### {metric} ({arrow}{named})\n\n" + markdown_table(["model", *settings, "mean"], body)
        )
        as_json[metric] = per_model
    return "\n\n".join(blocks) + "\n", rows, as_json


def distance_tables(
    means: Mapping[tuple[str, str, str], tuple[float, int]],
    models: Sequence[EvalModel],
    settings: Sequence[Setting],
    metrics: Sequence[str],
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """The paper's distance tables: each modulated stage-1 model against the ``unet`` baselines by PSNR
    (Table 2, distance = baseline - model) and each stage-2 model against the ``ugan`` baselines by LPIPS and
    DISTS (Table 1, distance = model - baseline); positive means the modulated model is behind its baseline.

    Returns (Markdown, CSV rows, the names of settings that lack a baseline). Empty without baselines.
    """
    baselines = {(m.kind, m.level): m for m in models if m.level is not None}
    if not baselines:
        return "", [], []
    names = [s.name for s in settings]
    plans = [("cunet", "unet", [m for m in metrics if base_metric(m) == "psnr"], "Table 2")]
    plans.append(("cugan", "ugan", [m for m in metrics if base_metric(m) in ("lpips", "dists")], "Table 1"))
    blocks, rows, missing = [], [], set()
    for model_kind, baseline_kind, chosen, table in plans:
        for model in (m for m in models if m.kind == model_kind):
            for metric in chosen:
                body = []
                for setting, name in zip(settings, names, strict=True):
                    base = baselines.get((baseline_kind, setting.triple))
                    ours = means.get((model.name, name, metric))
                    theirs = means.get((base.name, name, metric)) if base is not None else None
                    if theirs is None or ours is None:
                        if base is None:
                            missing.add(name)
                        body.append([name, "n/a", format_value(ours[0] if ours else None, metric), "n/a"])
                        continue
                    higher = HIGHER_IS_BETTER[base_metric(metric)]
                    distance = theirs[0] - ours[0] if higher else ours[0] - theirs[0]
                    body.append(
                        [
                            name,
                            format_value(theirs[0], metric),
                            format_value(ours[0], metric),
                            format_value(distance, metric),
                        ]
                    )
                    rows.append(
                        {
                            "table": table,
                            "metric": metric,
                            "model": model.name,
                            "baseline": base.name,
                            "setting": name,
                            "baseline_value": theirs[0],
                            "model_value": ours[0],
                            "distance": distance,
                        }
                    )
                sign = "baseline - model" if HIGHER_IS_BETTER[base_metric(metric)] else "model - baseline"
                title = f"### {table}: {metric} distance of {model.name} to the per-level {baseline_kind} baselines ({sign})"
                blocks.append(
                    title + "\n\n" + markdown_table(["setting", baseline_kind, model.name, "distance"], body)
                )
    ordered = [n for n in names if n in missing]
    if ordered:
        blocks.append("No baseline for: " + ", ".join(ordered))
    return ("\n\n".join(blocks) + "\n") if blocks else "", rows, ordered


def write_csv(
    path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> Path:
    buffer = io.StringIO()
    columns = list(columns or (rows[0].keys() if rows else []))
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_bytes_atomic(path, buffer.getvalue().encode())


def write_json(path: str | Path, data: Any) -> Path:
    return write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


UNITS = {
    "blur": "px",
    "noise": "0..255",
    "jpeg": "quality; none = 102",
    "poisson": "0..255 at white",
    "motion": "px",
}


def _linear(factor: str, level: float) -> float:
    """A level on its factor's linear scale, where estimate errors are measured: the level itself, but a JPEG
    quality ``q`` is ``102 - q`` and no compression 0 (so that reading quality 98 on an uncompressed input is an
    error of 4 units, as 98 for 100 would be, not of 98)."""
    internal = lookup(factor)().to_internal(torch.tensor([float(level)], dtype=torch.float64), validate=False)
    return float(internal[0])


def estimation_tables(
    rows: Sequence[Mapping[str, Any]],
    estimates: Sequence[Mapping[str, Any]],
    metric: str = "psnr",
    best_gaps: Mapping[tuple[str, str], float] | None = None,
) -> tuple[str, dict[str, Any]]:
    """For each blind row: the mean absolute error of each estimated factor per setting (a factor that got no
    estimate counts as level 0), and ``metric`` at the estimated levels minus ``metric`` at the true levels;
    with ``best_gaps`` (the modulation maps' best-z gap per model and setting) those beside them. An estimator
    measured alone (estimates of a name with no scores) gets the errors only."""
    best_gaps = best_gaps or {}
    means = mean_scores(rows)
    errors: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for item in estimates:
        estimate = item["estimate"] if item["estimate"] is not None else 0.0
        errors[(item["model"], item["setting"], item["factor"])].append(
            abs(_linear(item["factor"], estimate) - _linear(item["factor"], item["true"]))
        )
    blind_models = sorted({item["model"] for item in estimates})
    blocks, data = [], {}
    for blind in blind_models:
        told = blind.removesuffix(BLIND_SUFFIX)
        settings = list(dict.fromkeys(item["setting"] for item in estimates if item["model"] == blind))
        factors = list(dict.fromkeys(item["factor"] for item in estimates if item["model"] == blind))
        body, table = [], {}
        restored = any(model == blind for model, _, _ in means)  # else an estimator measured alone
        for setting in [*settings, "mean"]:
            chosen = settings if setting == "mean" else [setting]
            cells = {}
            for factor in factors:
                values = [e for s in chosen for e in errors[(blind, s, factor)]]
                cells[factor] = math.fsum(values) / len(values)
            if restored:
                gaps = [means[(blind, s, metric)][0] - means[(told, s, metric)][0] for s in chosen]
                cells["gap"] = math.fsum(gaps) / len(gaps)
            best = [best_gaps[(told, s)] for s in chosen if (told, s) in best_gaps]
            cells["best_z_gap"] = math.fsum(best) / len(best) if best and len(best) == len(chosen) else None
            table[setting] = cells
            row = [setting, *(f"{cells[f]:.2f}" for f in factors)]
            row += [f"{cells['gap']:+.2f}"] if restored else []
            body.append(row + ([format_value(cells["best_z_gap"], metric)] if best_gaps else []))
        header = ["setting", *(f"{f} MAE ({UNITS.get(f, '')})" for f in factors)]
        header += [f"{metric}: estimated - true"] if restored else []
        header += ["best z - true z (modulation map)"] if best_gaps else []
        title = (
            f"Blind levels: {told} at the levels estimated from each input ({blind})"
            if restored
            else f"Level estimator {blind} alone: the levels it reads off each input's pixels"
        )
        blocks.append(f"### {title}\n\n" + markdown_table(header, body))
        data[blind] = table
    return "\n\n".join(blocks), data
