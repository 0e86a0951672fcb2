"""The paper's experiments as multiruns: every ablation composes, sweeps what it says, names its jobs; the local
launcher runs a real two-job sweep; an ablation of one app is refused by the other."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.types import RunMode
from omegaconf import OmegaConf

from conftest import TINY, compose_config
from cugan_lightning.apps.evaluate import prepare
from cugan_lightning.apps.hydra_app import ConfigError, sweep_group
from cugan_lightning.apps.train import build

LEVELS = "[0,30],[0,50],[2,0],[4,0],[1,15],[1,30],[2,30],[2,50],[4,30],[4,50]"
# ablation -> (app config, its sweep, one job's overrides, that job's folder name)
ABLATIONS = {
    "scales": (
        "train",
        {"model/generator": "cunet_1scale,cunet_2scale,cunet"},
        ["model/generator=cunet_2scale"],
        "scales=2",
    ),
    "gfm": ("train", {"model/discriminator": "gfm,plain"}, ["model/discriminator=plain"], "gfm=False"),
    "unet_levels": ("train", {"baseline_level": LEVELS}, ["baseline_level=[4,50]"], "level=b4_n50"),
    "ugan_levels": ("train", {"baseline_level": LEVELS}, ["baseline_level=[2,30]"], "level=b2_n30"),
    "seeds": ("train", {"seed": "0,1,2"}, ["seed=2"], "seed=2"),
    "released_options": (
        "train",
        {"model.update_order": "d_first,g_first", "model.level_weighted_losses": "false,true"},
        ["model.update_order=g_first", "model.level_weighted_losses=true"],
        "order=g_first,level_weighted=True",
    ),
    "dni_alpha": (
        "evaluate",
        {"models.blend.alpha": "0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0"},
        ["models.blend.alpha=0.3"],
        "alpha=0.3",
    ),
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_each_ablation_is_a_complete_multirun_with_named_jobs(name, tmp_path):
    app, sweep, job, folder = ABLATIONS[name]
    cfg = compose_config([f"ablation={name}"], tmp_path, config_name=app)
    assert cfg.hydra.mode == RunMode.MULTIRUN
    assert {k: str(v) for k, v in cfg.hydra.sweeper.params.items()} == sweep
    assert cfg.ablation_app == app
    job_cfg = compose_config([f"ablation={name}", *job], tmp_path, config_name=app)
    assert job_cfg.hydra.sweep.subdir == folder == job_cfg.variant
    if app == "train":
        assert job_cfg.logger.wandb.group is not None  # W&B: the paper recipes log there


def test_ablation_details_follow_the_paper(tmp_path):
    for generator, scales in (("cunet_1scale", 1), ("cunet_2scale", 2), ("cunet", 3)):
        cfg = compose_config(["ablation=scales", f"model/generator={generator}"], tmp_path)
        assert len(cfg.model.net_g.channels) == scales and 2 * sum(cfg.model.net_g.blocks) == 12
    cfg = compose_config(["ablation=ugan_levels", "baseline_level=[4,50]"], tmp_path)
    assert cfg.model.init_task == "unet_b4_n50" and cfg.model.net_g.conditional is False
    assert "ablation_ugan_levels/multiruns" in cfg.hydra.sweep.dir
    cfg = compose_config(["ablation=gfm"], tmp_path)
    assert cfg.task_name == "ablation_gfm" and cfg.model._target_.endswith("CUGANModule")


def test_an_ablation_of_one_app_is_refused_by_the_other(tmp_path):
    with pytest.raises(ConfigError, match="cugan-evaluate ablation="):
        build(compose_config([*TINY, "ablation=dni_alpha"], tmp_path))
    # a training ablation does not even compose in the evaluation app: it overrides the training experiment
    with pytest.raises(Exception, match="Could not override 'experiment'"):
        compose_config(["ablation=seeds"], tmp_path, config_name="evaluate")
    with pytest.raises(ConfigError, match="models.blend.gan, models.blend.model not set"):
        prepare(compose_config(["ablation=dni_alpha"], tmp_path, config_name="evaluate"))


def test_the_jobs_of_a_sweep_share_one_group_name():
    assert (
        sweep_group("logs/ablation_scales/multiruns/2026-12-01_10-00-00")
        == "ablation_scales-2026-12-01_10-00-00"
    )
    assert sweep_group("/scratch/sweeps/mine") == "mine"


def test_slurm_preset_asks_for_one_task_per_gpu(tmp_path):
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
