"""The paper's experiments as multiruns: every sweep expands (through Hydra's own sweeper) into jobs that compose,
each named by its variant; the per-level sweeps and the evaluation grids are the code's settings; the local
launcher runs a real two-job sweep; each app has its own group of sweeps."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
from pathlib import Path

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf

from conftest import TINY, compose_config
from cugan_lightning.apps.evaluate import prepare
from cugan_lightning.apps.hydra_app import ConfigError, sweep_group
from cugan_lightning.degradations import JPEG_SETTINGS, PAPER_SETTINGS

CONF = Path(str(importlib.resources.files("cugan_lightning.conf")))  # the configs as the package carries them
# Sweeps of each app's own group: the training app's ablations, the evaluation app's sweeps.
SWEEPS = [("train", "ablation", p.stem) for p in sorted((CONF / "ablation").glob("*.yaml"))] + [
    ("evaluate", "sweep", p.stem) for p in sorted((CONF / "sweep").glob("*.yaml"))
]
EVALUATE_MODELS = ["models.blend.model=m.ckpt", "models.blend.gan=g.ckpt"]


def sweep_jobs(cfg) -> list[list[str]]:
    """The jobs of a composed multirun config as the real sweeper expands them (one override list each)."""
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    parsed = OverridesParser.create().parse_overrides(params)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


@pytest.mark.parametrize(("app", "group", "name"), SWEEPS, ids=[f"{g}={n}" for _, g, n in SWEEPS])
def test_each_sweep_expands_into_jobs_that_compose_with_unique_names(app, group, name, tmp_path):
    base = [f"{group}={name}", *(EVALUATE_MODELS if app == "evaluate" else [])]
    cfg = compose_config(base, tmp_path, config_name=app)
    assert cfg.hydra.mode == RunMode.MULTIRUN
    jobs = sweep_jobs(cfg)
    assert len(jobs) >= 2
    folders = []
    for job in jobs:
        job_cfg = compose_config([*base, *job], tmp_path, config_name=app)
        assert job_cfg.hydra.sweep.subdir == job_cfg.variant  # each job's folder is named by its variant
        folders.append(job_cfg.variant)
        if app == "train":
            assert job_cfg.logger.wandb.group is not None  # W&B: the paper recipes log there
    assert len(set(folders)) == len(folders), folders


@pytest.mark.parametrize("name", ["unet_levels", "ugan_levels"])
def test_the_per_level_sweeps_cover_exactly_the_codes_paper_settings(name, tmp_path):
    cfg = compose_config([f"ablation={name}"], tmp_path)
    levels = [
        tuple(compose_config([f"ablation={name}", *job], tmp_path).baseline_level) for job in sweep_jobs(cfg)
    ]
    assert levels == [tuple(s) for s in PAPER_SETTINGS]


def test_the_evaluation_grids_are_the_codes_settings(tmp_path):
    cfg = compose_config([], tmp_path)
    assert [tuple(s) for s in cfg.degradation.eval_settings] == list(PAPER_SETTINGS)
    cfg = compose_config(["degradation=jpeg"], tmp_path)
    assert [tuple(s) for s in cfg.degradation.eval_settings] == [*PAPER_SETTINGS, *JPEG_SETTINGS]


def test_ablation_details_follow_the_paper(tmp_path):
    for generator, scales in (("cunet_1scale", 1), ("cunet_2scale", 2), ("cunet", 3)):
        cfg = compose_config(["ablation=scales", f"model/generator={generator}"], tmp_path)
        assert len(cfg.model.net_g.channels) == scales and 2 * sum(cfg.model.net_g.blocks) == 12
        assert cfg.variant == f"scales={scales}"
    cfg = compose_config(["ablation=ugan_levels", "baseline_level=[4,50]"], tmp_path)
    assert cfg.init.task == "unet_b4_n50" and cfg.init.ckpt == "auto" and cfg.model.net_g.conditional is False
    assert "ablation_ugan_levels/multiruns" in cfg.hydra.sweep.dir
    cfg = compose_config(["ablation=gfm"], tmp_path)
    assert cfg.task_name == "ablation_gfm" and cfg.model._target_.endswith("CUGANModule")


def test_each_app_knows_only_its_own_sweeps(tmp_path):
    with pytest.raises(Exception, match="Could not override 'sweep'"):
        compose_config(["sweep=dni_alpha"], tmp_path)
    with pytest.raises(Exception, match="Could not override 'ablation'"):
        compose_config(["ablation=seeds"], tmp_path, config_name="evaluate")
    with pytest.raises(ConfigError, match="models.blend.gan, models.blend.model not set"):
        prepare(compose_config(["sweep=dni_alpha"], tmp_path, config_name="evaluate"))


def test_the_jobs_of_a_sweep_share_one_group_name():
    assert (
        sweep_group("logs/ablation_scales/multiruns/2026-12-01_10-00-00")
        == "ablation_scales-2026-12-01_10-00-00"
    )
    assert sweep_group("/scratch/sweeps/mine") == "mine"


def test_slurm_presets_ask_for_one_task_per_gpu_or_per_cpu_process(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs pip install -e '.[cluster]'")
    cfg = compose_config(
        [
            "ablation=scales",
            "hydra/launcher=slurm",
            "trainer=slurm",
            "hydra.launcher.gpus_per_node=8",
            "hydra.launcher.nodes=2",
        ],
        tmp_path,
    )
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.tasks_per_node == 8
    assert OmegaConf.select(cfg, "trainer.devices") == 8 and cfg.trainer.num_nodes == 2
    assert cfg.trainer.strategy == "ddp"
    # the launcher that reports each failed job in one line
    assert cfg.hydra.launcher._target_ == "hydra_plugins.cugan_slurm_launcher.SlurmLauncher"
    cfg = compose_config(["ablation=seeds", "hydra/launcher=slurm_cpu", "trainer=slurm_cpu"], tmp_path)
    assert cfg.hydra.launcher.gpus_per_node is None and cfg.hydra.launcher.tasks_per_node == 2
    assert OmegaConf.select(cfg, "trainer.devices") == 2 and cfg.trainer.accelerator == "cpu"


@pytest.mark.slow
def test_the_local_launcher_runs_a_two_job_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs pip install -e '.[cluster]'")
    overrides = [
        "ablation=seeds", "seed=0,1", "hydra/launcher=local", *TINY, "trainer=cpu", "logger=csv",
        "data=embedded", "iterations=2", "data.batches_per_epoch=2", f"hydra.sweep.dir={tmp_path}/sweep",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "cugan_lightning", *overrides], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for seed in (0, 1):
        assert (tmp_path / "sweep" / f"seed={seed}" / "checkpoints" / "last.ckpt").is_file()
    assert f"cugan-evaluate runs={tmp_path}/sweep" in proc.stdout
