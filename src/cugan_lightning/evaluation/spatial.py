"""Restoration under levels that vary over the image (docs/spatial.md): each test image degraded with a level map,
then restored with the true map, with the best single condition vector, and with the learned estimator's map.

Two maps, as the spatial-z measurements define them:

- ``noise_ramp``: noise sigma rising linearly from 0 at the left edge to ``noise_max`` at the right, no blur;
- ``blur_halves``: the left half sharp, the right half blurred at ``blur`` pixels, no noise.

Inputs follow the paper's protocol (clipped and rounded to 8 bits), with noise drawn from a generator seeded by
(seed, image, map), so every model sees the same inputs. "Best vector" is an oracle: for each image the best of a
grid of single vectors (``noise 0, 5, .., noise_max`` or ``blur 0, 0.25, .., blur``), which no user could pick
better by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..degradations import degrade_map, encode_map, make_generator
from ..estimation import LearnedEstimator, find_estimator
from .metrics import ImageScorer
from .models import EvalModel
from .tables import write_csv, write_json, write_text

__all__ = ["SCENARIOS", "run_spatial", "scenario_maps", "score_spatial", "spatial_table", "write_spatial"]

SCENARIOS = ("noise_ramp", "blur_halves")
log = logging.getLogger(__name__)

COLUMNS = ("input", "true map", "best vector", "auto map")


def scenario_maps(
    name: str, height: int, width: int, noise_max: float = 50.0, blur: float = 2.0
) -> dict[str, Tensor]:
    """The level maps ``(H, W)`` (physical units) of scenario ``name`` for an image of that size."""
    if name == "noise_ramp":
        noise = torch.linspace(0.0, noise_max, width).expand(height, width).contiguous()
        return {"blur": torch.zeros(height, width), "noise": noise}
    if name == "blur_halves":
        level = torch.zeros(height, width)
        level[:, width // 2 :] = blur
        return {"blur": level, "noise": torch.zeros(height, width)}
    raise ValueError(f"spatial scenario must be one of {list(SCENARIOS)}, got {name!r}")


def _vectors(name: str, noise_max: float, blur: float) -> list[dict[str, float]]:
    if name == "noise_ramp":
        return [{"blur": 0.0, "noise": float(n)} for n in np.arange(0.0, noise_max + 1e-6, 5.0)]
    return [{"blur": float(b), "noise": 0.0} for b in np.arange(0.0, blur + 1e-6, 0.25)]


def _restore(model: EvalModel, lq: Tensor, z: Tensor, batch_size: int) -> Tensor:
    """``lq`` ``(1, 3, H, W)`` under each condition of ``z`` (``(K, D)``, or one map ``(1, D, H, W)``)."""
    parts = [
        model.restore(lq.expand(len(chunk), -1, -1, -1), chunk)
        for chunk in torch.split(z.to(lq.device), batch_size)
    ]
    return torch.cat(parts)


def score_spatial(
    models: Sequence[EvalModel],
    images: Sequence[tuple[str, np.ndarray]],
    scorer: ImageScorer,
    estimators: dict[str, LearnedEstimator | None],
    *,
    device: torch.device,
    seed: int = 0,
    noise_max: float = 50.0,
    blur: float = 2.0,
    batch_size: int = 4,
    progress: Callable[[str], Any] | None = None,
) -> list[dict[str, Any]]:
    """Rows ``image, scenario, model, column, value, best`` (``best``: the best vector's levels) for every
    conditional model with blur and noise factors; ``estimators[name]`` gives the model's auto map (None: no row).
    The metric is the scorer's first."""
    metric = next(iter(scorer.labels))
    rows: list[dict[str, Any]] = []
    for index, (image_name, array) in enumerate(images):
        gt = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        gt = gt.to(device)
        for scenario in SCENARIOS:
            maps = scenario_maps(scenario, *gt.shape[-2:], noise_max=noise_max, blur=blur)
            generator = make_generator("spatial-eval", seed, image_name, scenario)
            lq = degrade_map(gt.cpu(), {k: v[None] for k, v in maps.items()}, generator).to(device)

            def score(out: Tensor, gt: Tensor = gt) -> list[float]:
                return [float(v) for v in scorer(out, gt.expand(len(out), -1, -1, -1))[metric]]

            base = {"image": image_name, "scenario": scenario}
            rows.append({**base, "model": "input", "column": "input", "value": score(lq)[0], "best": None})
            for model in models:
                codec = model.codec
                true_z = encode_map(codec, {k: v[None] for k, v in maps.items()}).to(device)
                vectors = _vectors(scenario, noise_max, blur)
                z = codec.encode({k: torch.tensor([v[k] for v in vectors]) for k in ("blur", "noise")})
                scores = score(_restore(model, lq, z, batch_size))
                best = int(np.argmax(scores))
                found = {"true map": score(_restore(model, lq, true_z, 1))[0], "best vector": scores[best]}
                estimator = estimators.get(model.name)
                if estimator is not None:
                    level = estimator.level_maps(lq[0].cpu(), ("blur", "noise"))
                    auto_z = encode_map(codec, {k: torch.from_numpy(v)[None] for k, v in level.items()})
                    found["auto map"] = score(_restore(model, lq, auto_z.to(device), 1))[0]
                for column, value in found.items():
                    rows.append(
                        {**base, "model": model.name, "column": column, "value": value, "best": vectors[best]}
                    )
        if progress is not None:
            progress(f"spatial: {index + 1}/{len(images)} images")
    return rows


def spatial_table(rows: Sequence[dict[str, Any]], metric: str) -> tuple[str, list[dict[str, Any]]]:
    """The mean of each (model, scenario, column) over the images, as markdown and as rows."""
    means: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        means.setdefault((row["model"], row["scenario"], row["column"]), []).append(row["value"])
    inputs = {
        s: float(np.mean(means[("input", s, "input")])) for s in SCENARIOS if ("input", s, "input") in means
    }
    models = list(dict.fromkeys(r["model"] for r in rows if r["model"] != "input"))
    lines = [
        "| model | level map | input | true map | best vector | auto map | true map - best vector |",
        "|---|---|---|---|---|---|---|",
    ]
    table = []
    for model in models:
        for scenario in SCENARIOS:
            cells = {c: means.get((model, scenario, c)) for c in COLUMNS[1:]}
            value = {c: (float(np.mean(v)) if v else None) for c, v in cells.items()}
            gain = value["true map"] - value["best vector"]
            shown = [f"{value[c]:.2f}" if value[c] is not None else "n/a" for c in COLUMNS[1:]]
            lines.append(
                f"| {model} | {scenario} | {inputs[scenario]:.2f} | {' | '.join(shown)} | {gain:+.2f} |"
            )
            table.append({"model": model, "scenario": scenario, "metric": metric, "input": inputs[scenario],
                          **value, "images": len(cells["true map"] or [])})  # fmt: skip
    heading = f"### Levels that vary over the image ({metric}, mean over {table[0]['images'] if table else 0} images)\n\n"
    return heading + "\n".join(lines) + "\n", table


def write_spatial(rows: Sequence[dict[str, Any]], metric: str, out: Any) -> str:
    """``spatial.md`` / ``spatial.json`` (means) and ``spatial.csv`` (every image) in the run folder ``out``;
    returns the markdown."""
    text, table = spatial_table(rows, metric)
    write_text(out / "spatial.md", text)
    write_json(out / "spatial.json", table)
    flat = [
        {
            **r,
            "best": None
            if r["best"] is None
            else f"blur {r['best']['blur']:g}, noise {r['best']['noise']:g}",
        }
        for r in rows
    ]
    write_csv(out / "spatial.csv", flat, ["image", "scenario", "model", "column", "value", "best"])
    return text


def run_spatial(
    models: Sequence[EvalModel],
    images: Sequence[tuple[str, np.ndarray]],
    scorer: ImageScorer,
    options: Any,
    out: Any,
    *,
    device: torch.device,
    seed: int = 0,
    estimator: str = "auto",
    batch_size: int = 4,
) -> str:
    """The evaluation app's ``spatial.enabled``: score the conditional blur-and-noise models (``options``: the
    ``spatial`` config node), each with its estimator (``estimator``: auto, a file or zoo:NAME), write the tables
    into ``out`` and return the markdown."""
    chosen = [m for m in models if m.conditional and {"blur", "noise"} <= set(m.codec.names)]
    if not chosen:
        raise ValueError(
            "spatial.enabled needs a conditional model with blur and noise factors (models.NAME=...)"
        )
    estimators = {
        m.name: find_estimator(estimator, m.codec, m.source.get("path") or m.source.get("model"))
        for m in chosen
    }
    rows = score_spatial(
        chosen, images, scorer, estimators, device=device, seed=seed, noise_max=float(options.noise_max),
        blur=float(options.blur), batch_size=batch_size, progress=log.info,
    )  # fmt: skip
    return write_spatial(rows, next(iter(scorer.labels.values())), out)
