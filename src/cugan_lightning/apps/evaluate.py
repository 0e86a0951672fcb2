"""The evaluation app: the paper's tables, modulation maps and the MSE-to-GAN curve from one command::

    cugan-evaluate models.cunet=MSE.ckpt models.cugan=GAN.ckpt [data.test_dir=DIR]
    cugan-evaluate models.cunet=MSE.ckpt baselines=logs/unet_levels/   # paper Table 2
    cugan-evaluate models.blend="{model: MSE.ckpt, gan: GAN.ckpt, alpha: 0.5}" curve.enabled=true
    cugan-evaluate -m models.blend.model=.. models.blend.gan=.. models.blend.alpha=0,0.5,1

A Hydra app with the training app's conventions (``conf/evaluate.yaml``, run folder under ``logs/``, loggers
from the same group). Everything is checked (settings, metrics and their backbone files, model files, the test
images) before any scoring starts; the tables are written once all scores exist, each file atomically.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .. import zoo
from ..checkpoint.find import find_baselines, find_runs
from ..estimation import LearnedEstimator, find_estimator, load_estimator
from ..evaluation.curve import write_curve
from ..evaluation.metrics import ImageScorer, check_metric_names
from ..evaluation.models import (
    EvalModel,
    alpha_sweep,
    blind_twin,
    image_channels,
    load_models,
    parse_models,
    told_twins,
)
from ..evaluation.modulation import ModulationMap, grid_values, modulation_maps
from ..evaluation.plots import write_modulation
from ..evaluation.runner import (
    PROTOCOLS,
    EvalResult,
    check_protocol,
    estimate_alone,
    evaluate,
    example_rows,
    load_test_images,
    parse_settings,
    setting_columns,
    unscored,
)
from ..evaluation.settings import Setting
from ..evaluation.spatial import run_spatial
from ..evaluation.tables import (
    conventions,
    distance_tables,
    estimation_tables,
    mean_scores,
    summary_tables,
    write_csv,
    write_json,
    write_text,
)
from ..figures import render_rows, save_png
from ..inference import resolve_device
from .common import keep_freed_memory
from .hydra_app import (
    CONFIG_PATH,
    ConfigError,
    instantiate_group,
    name_multirun_job,
    plain_config,
    run_reporting_user_errors,
)

__all__ = ["MergeSweep", "Plan", "main", "prepare", "run"]

log = logging.getLogger("cugan_lightning.evaluate")


@dataclass
class Plan:
    """Everything an evaluation needs, checked and loaded."""

    settings: list[Setting]
    models: list[EvalModel]
    scorer: ImageScorer
    images: list[tuple[str, np.ndarray]]
    device: torch.device
    protocol: str = "paper"
    channels: int = 3
    """The image channels every model reads (1: gray models, scored on gray references)."""
    estimator: LearnedEstimator | None = None
    """``blind=FILE`` with no model: a level estimator measured alone (:func:`estimate_alone`)."""


def prepare(cfg: DictConfig) -> Plan:
    """Check and load the inputs in the order that fails fastest: settings and metric names, model files,
    the metrics' backbone files, the models themselves, then the test images."""
    missing = sorted(OmegaConf.missing_keys(cfg.models)) if cfg.get("models") else []  # full keys: models.x.y
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set; give it on the command line (=PATH)")
    protocol = check_protocol(str(cfg.protocol))
    settings = parse_settings(cfg.settings)
    metrics = check_metric_names(list(cfg.metrics))
    if int(cfg.batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {cfg.batch_size}")
    models_cfg = dict(cfg.get("models") or {})
    if cfg.get("runs"):
        found = find_runs(cfg.runs)
        clash = sorted(set(found) & set(models_cfg))
        if clash:
            raise ConfigError(f"models {clash} are also the names of runs under {cfg.runs}; rename them")
        models_cfg.update(found)
    if cfg.get("baselines"):
        baselines = find_baselines(
            list(cfg.baselines) if not isinstance(cfg.baselines, str) else cfg.baselines
        )
        clash = sorted(set(baselines) & set(models_cfg))
        if clash:
            raise ConfigError(f"models {clash} are also the names of found baselines; rename them")
        models_cfg.update(baselines)
    specs = parse_models(models_cfg)
    alone = _estimator_alone(cfg) if not specs else None
    if not specs and alone is None:
        raise ConfigError(
            "no model to evaluate: give models.NAME=PATH (a .ckpt / .safetensors) or baselines=FOLDER, "
            "or blind=FILE alone to measure a level estimator"
        )
    if cfg.modulation_map.enabled:
        check_metric_names([cfg.modulation_map.metric])
        grid = (
            max(grid_values(cfg.modulation_map.blur, "blur")),
            max(grid_values(cfg.modulation_map.noise, "noise")),
        )
    scorer = ImageScorer(metrics, allow_unverified=bool(cfg.allow_unverified_backbones))
    device = resolve_device(cfg.device)
    models = load_models(specs, device, str(cfg.precision))
    if cfg.curve.enabled:
        blends = [m for m in models if m.blender is not None]
        if not blends:
            raise ConfigError("curve.enabled needs a blend: models.NAME={model: PATH, gan: PATH, alpha: A}")
        models = [row for m in models for row in (alpha_sweep(m, cfg.curve.alphas) if m.blender else [m])]
    if cfg.get("told"):  # each conditional model with those factors again, told fixed levels (e.g. poisson 0)
        models += told_twins(models, cfg.told)
    if cfg.get("blind"):  # each conditional model again, at levels estimated from each input
        blind = str(cfg.blind)
        models += [
            blind_twin(m, None if blind == "classical" else find_estimator(blind, m.codec, _model_file(m)))
            for m in models
            if m.conditional and not m.is_twin  # a told row's blind twin would be the plain blind row again
        ]
    for model in models:
        if cfg.modulation_map.enabled and model.conditional:
            try:
                model.codec.levels_to_z(torch.tensor([grid[0]]), torch.tensor([grid[1]]))
            except ValueError as err:
                raise ValueError(f"modulation_map grid for models.{model.name}: {err}") from None
        for setting in settings:
            if model.conditional and model.applies_to(setting):
                try:
                    model.z_for(**setting_columns([setting]))
                except ValueError as err:
                    raise ValueError(f"setting {setting.name} for models.{model.name}: {err}") from None
    channels = image_channels(models)
    images = load_test_images(cfg.data.test_dir, cfg.data.crop, channels)
    return Plan(settings, models, scorer, images, device, protocol, channels, alone)


def _estimator_alone(cfg: DictConfig) -> LearnedEstimator | None:
    """``blind=FILE`` (or ``zoo:NAME``) and no model: the estimator to measure alone; None without ``blind``."""
    blind = str(cfg.get("blind") or "")
    if not blind:
        return None
    if blind in ("auto", "classical"):
        raise ConfigError(
            f"blind={blind} estimates levels for a model's codec, and no model is given: add "
            "models.NAME=PATH, or measure a level estimator alone with blind=FILE (or zoo:NAME)"
        )
    return load_estimator(zoo.model_path(blind))


def _estimator_name(reference: str) -> str:
    """The estimation table's name for an estimator measured alone: its zoo name or its file's stem."""
    text = str(reference)
    return text.removeprefix(zoo.PREFIX) if zoo.is_zoo_reference(text) else Path(text).stem


def _model_file(model: EvalModel) -> str | None:
    return model.source.get("path") or model.source.get("model")


def _model_rows(models: list[EvalModel]) -> list[dict[str, Any]]:
    return [
        {
            "name": m.name,
            "kind": m.kind,
            "alpha": m.alpha,
            "level": list(m.level) if m.level else None,
            **m.source,
        }
        for m in models
    ]


def write_outputs(
    cfg: DictConfig, plan: Plan, result: EvalResult, maps: list[ModulationMap], out: Path
) -> dict:
    """Every table and figure of the run folder; returns the summary (also written as summary.json)."""
    names = [s.name for s in plan.settings]
    notes = unscored(plan.models, plan.settings)
    labels = list(plan.scorer.labels.values())
    means = mean_scores(result.rows)
    text, summary_rows, summary = summary_tables(
        means, [m.name for m in plan.models], names, labels, plan.protocol
    )
    timing = {
        "network_seconds": result.network_seconds,
        "degrade_seconds": result.degrade_seconds,
        "score_seconds": result.score_seconds,
        "total_seconds": result.total_seconds,
        "network_share": result.network_share,
        "network_passes": result.network_passes,
    }
    header = (
        f"Test images: {len(plan.images)} ({cfg.data.test_dir or 'the embedded validation photographs'}"
        f"{f', central {cfg.data.crop}px crops' if cfg.data.crop else ''}). Inputs: {PROTOCOLS[plan.protocol]}. "
        f"{conventions(plan.channels)}\n\n"
    )
    if notes:
        text += "\nNot scored (a factor the row lacks):\n\n" + "".join(f"- {line}\n" for line in notes)
    write_csv(
        out / "scores.csv",
        result.rows,
        ["image", "setting", *setting_columns(plan.settings), "model", "alpha", "metric", "value"],
    )
    write_text(out / "summary.md", header + text)
    write_csv(out / "summary.csv", summary_rows, ["metric", "model", "setting", "value", "images"])
    distances, distance_rows, missing = distance_tables(means, plan.models, plan.settings, labels)
    if distances:
        write_text(out / "distances.md", distances)
        write_csv(out / "distances.csv", distance_rows)
        write_json(out / "distances.json", {"rows": distance_rows, "settings_without_baseline": missing})
    write_modulation(maps, out)
    estimation = ""
    if result.estimates:
        best = {(r["model"], r["setting"]): r["gap"] for r in (m.row() for m in maps)}
        estimation, estimation_data = estimation_tables(result.rows, result.estimates, labels[0], best)
        write_text(out / "estimation.md", estimation + "\n")
        write_json(out / "estimation.json", estimation_data)
        write_csv(
            out / "estimates.csv",
            result.estimates,
            ["image", "setting", "model", "factor", "true", "estimate"],
        )
    curve_entries = [
        {"blend": m.name.split("@")[0], "alpha": m.alpha, "setting": s, "metric": metric, "value": v}
        for m in plan.models if m.blender is not None
        for (model, s, metric), (v, _) in means.items() if model == m.name
    ]  # fmt: skip
    curve_text, _ = write_curve(curve_entries, out, names) if cfg.curve.enabled else ("", [])
    if cfg.figures and plan.images:
        rows = example_rows(
            plan.models, plan.images[0], plan.settings, device=plan.device, seed=int(cfg.seed),
            protocol=plan.protocol,
        )  # fmt: skip
        save_png(render_rows(rows), out / "examples.png")
    document = {
        "conventions": conventions(plan.channels),
        "protocol": plan.protocol,
        "precision": sorted({m.fast.precision for m in plan.models if m.fast is not None}),
        "test_set": {
            "folder": cfg.data.test_dir,
            "crop": cfg.data.crop,
            "images": [n for n, _ in plan.images],
        },
        "settings": names,
        "metrics": labels,
        "models": _model_rows(plan.models),
        "summary": summary,
        "scores": summary_rows,
        "timing": timing,
        "settings_without_baseline": missing,
        "not_scored": notes,
    }
    write_json(out / "summary.json", document)
    return {
        **document,
        "markdown": text,
        "distances_markdown": distances,
        "curve_markdown": curve_text,
        "estimation_markdown": estimation,
    }


def _log(cfg: DictConfig, summary: dict, out: Path) -> None:
    """The config, the summary and the figures to every configured logger (W&B: a table and images)."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
    from PIL import Image

    loggers = instantiate_group(cfg.get("logger"))
    figures = sorted(out.glob("*.png")) + sorted((out / "modulation_maps").glob("*.png"))
    flat = {
        f"eval/{metric}/{model}/{setting}": value
        for metric, per_model in summary["summary"].items()
        for model, per_setting in per_model.items()
        for setting, value in per_setting.items()
    }
    for logger in loggers:
        logger.log_hyperparams(plain_config(cfg))
        logger.log_metrics(flat, step=0)
        if isinstance(logger, WandbLogger):
            columns = ["metric", "model", "setting", "value", "images"]
            logger.log_table(
                "eval/summary", columns=columns, data=[[r[c] for c in columns] for r in summary["scores"]]
            )
            for path in figures:
                logger.log_image(f"eval/{path.stem}", images=[str(path)])
        elif isinstance(logger, TensorBoardLogger):
            for path in figures:
                logger.experiment.add_image(
                    f"eval/{path.stem}", np.asarray(Image.open(path).convert("RGB")), 0, dataformats="HWC"
                )
        logger.save()
        logger.finalize("success")
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def run(cfg: DictConfig) -> dict:
    """Evaluate as configured; writes the run folder and returns the summary."""
    keep_freed_memory()  # every network pass reuses the previous one's pages
    out = Path(cfg.paths.output_dir)
    plan = prepare(cfg)
    if cfg.spatial.enabled:  # the level-map table instead of the grid
        text = run_spatial(plan.models, plan.images, plan.scorer, cfg.spatial, out, device=plan.device,
                           seed=int(cfg.seed), estimator=str(cfg.blind or "auto"), batch_size=int(cfg.batch_size))  # fmt: skip
        print(text)
        return {"spatial_markdown": text}
    for line in unscored(plan.models, plan.settings):
        log.info(line)
    sizes = (len(plan.models), len(plan.images), len(plan.settings))
    log.info("scoring %d model(s) on %d image(s) x %d setting(s)", *sizes)
    result = evaluate(
        plan.models, plan.images, plan.settings, plan.scorer,
        device=plan.device, batch_size=int(cfg.batch_size), seed=int(cfg.seed), progress=log.info,
        protocol=plan.protocol,
    )  # fmt: skip
    if plan.estimator is not None:  # blind=FILE alone: its error per factor, no restoration
        result.estimates += estimate_alone(
            plan.estimator, plan.images, plan.settings, name=_estimator_name(cfg.blind),
            seed=int(cfg.seed), protocol=plan.protocol, progress=log.info,
        )  # fmt: skip
    maps: list[ModulationMap] = []
    if cfg.modulation_map.enabled:
        # one map per network (the estimation table reads a blind row's from the row it was made from)
        conditional = [m for m in plan.models if m.conditional and not m.is_twin]
        map_scorer = ImageScorer(
            [cfg.modulation_map.metric], allow_unverified=bool(cfg.allow_unverified_backbones)
        )
        maps = modulation_maps(
            conditional, plan.images, plan.settings, map_scorer,
            grid_values(cfg.modulation_map.blur, "blur"), grid_values(cfg.modulation_map.noise, "noise"),
            device=plan.device, batch_size=int(cfg.batch_size), seed=int(cfg.seed), protocol=plan.protocol,
        )  # fmt: skip
    summary = write_outputs(cfg, plan, result, maps, out)
    _log(cfg, summary, out)
    share = f"{100 * result.network_share:.0f}%"
    print(
        summary["markdown"]
        + (("\n" + summary["distances_markdown"]) if summary["distances_markdown"] else "")
        + (("\n\n" + summary["estimation_markdown"]) if summary["estimation_markdown"] else "")
    )
    seconds = (result.network_seconds, result.total_seconds)
    log.info("network passes took %.1f s of %.1f s (%s); run folder: %s", *seconds, share, out)
    return summary


class MergeSweep(Callback):
    """At the end of a multirun of this app, merge the jobs' summaries into the sweep folder: one summary table
    and, for blends scored at several alphas, the MSE-to-GAN curve (table and plot)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        documents = [(p, json.loads(p.read_text())) for p in sorted(sweep.glob("*/summary.json"))]
        if not documents:
            return
        scores, entries, settings = [], [], documents[0][1]["settings"]
        for _, doc in documents:
            alphas = {m["name"]: m.get("alpha") for m in doc["models"]}
            kinds = {m["name"]: m["kind"] for m in doc["models"]}
            for row in doc["scores"]:
                name = row["model"]
                alpha = alphas.get(name)
                shown = f"{name}@{alpha:g}" if alpha is not None and "@" not in name else name
                scores.append({**row, "model": shown})
                if kinds.get(name) == "dni" and alpha is not None:
                    entries.append(
                        {
                            "blend": name.split("@")[0],
                            "alpha": alpha,
                            "setting": row["setting"],
                            "metric": row["metric"],
                            "value": row["value"],
                        }
                    )
        means = {(r["model"], r["setting"], r["metric"]): (r["value"], r["images"]) for r in scores}
        models = list(dict.fromkeys(r["model"] for r in scores))
        metrics = list(dict.fromkeys(r["metric"] for r in scores))
        text, rows, _ = summary_tables(means, models, settings, metrics, documents[0][1].get("protocol"))
        write_text(sweep / "summary.md", text)
        write_csv(sweep / "summary.csv", rows, ["metric", "model", "setting", "value", "images"])
        curve_text, _ = write_curve(entries, sweep, settings)
        print(f"merged {len(documents)} job(s) into {sweep}\n\n" + (curve_text or text))


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    name_multirun_job(cfg)
    run_reporting_user_errors(run, cfg)


if __name__ == "__main__":
    main()
