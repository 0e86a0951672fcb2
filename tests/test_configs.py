"""The configs compose the way users compose them: in a notebook, with nothing of the package imported first
(the resolvers register themselves when Hydra loads the config package), and every value resolves."""

from __future__ import annotations

import json
import subprocess
import sys

COMPOSE_EVERYTHING = """
import importlib.resources, json, sys
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

conf = importlib.resources.files("cugan_lightning.conf")
def names(group):
    return sorted(p.name[:-5] for p in conf.joinpath(group).iterdir() if p.name.endswith(".yaml"))

given = {"own_gray16": ["data.train_dir=my/train", "data.val_dir=my/val"]}  # what it requires from the user
jobs = [("train", [f"experiment={n}", *given.get(n, [])]) for n in names("experiment")]
jobs += [("train", [f"ablation={n}"]) for n in names("ablation")]
jobs += [("evaluate", [f"sweep={n}", "models.blend.model=m.ckpt", "models.blend.gan=g.ckpt"]) for n in names("sweep")]
done = []
with initialize_config_module(config_module="cugan_lightning.conf", version_base="1.3"):
    for app, overrides in jobs:
        cfg = compose(config_name=app, overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = "out"
        job = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
        sweep = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True) if cfg.hydra.sweeper.params else {}
        done.append([app, overrides[0], job.get("task_name"), sweep])
print(json.dumps(done))
"""


def test_every_experiment_ablation_and_sweep_composes_and_resolves_with_nothing_imported():
    proc = subprocess.run(
        [sys.executable, "-c", COMPOSE_EVERYTHING], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads(proc.stdout.strip().splitlines()[-1])
    by_name = {override: (task, sweep) for _, override, task, sweep in done}
    assert {"experiment=cunet_mse", "experiment=cpu_hour", "ablation=unet_levels", "sweep=dni_alpha"} <= set(
        by_name
    )
    # the sweep values come from the code through the resolvers, resolved as Hydra's sweeper reads them
    assert by_name["ablation=unet_levels"][1]["baseline_level"].startswith("[0,30],[0,50],[2,0]")
    assert by_name["sweep=dni_alpha"][1]["models.blend.alpha"].split(",")[::5] == ["0.0", "0.5", "1.0"]


def test_a_debug_preset_keeps_the_device_the_trainer_preset_names(tmp_path):
    """`trainer=gpu debug=fast_dev_run` checks the GPU path: the debug presets shorten a run, they do not move it
    to the CPU (they once did, so the `gpu` tests that use them trained on the CPU)."""
    from conftest import compose_config

    plain = compose_config(["debug=fast_dev_run"], tmp_path / "a").trainer
    assert plain.accelerator == "cpu" and plain.fast_dev_run == 2
    gpu = compose_config(["trainer=gpu", "debug=fast_dev_run"], tmp_path / "b").trainer
    assert gpu.accelerator == "gpu" and gpu.fast_dev_run == 2 and gpu.devices == 1
    ddp = compose_config(["trainer=ddp", "debug=limit"], tmp_path / "c")
    assert ddp.trainer.accelerator == "gpu" and ddp.trainer.strategy == "ddp" and ddp.trainer.sync_batchnorm
    assert ddp.trainer.devices == 1 and ddp.iterations == 12  # one process, whatever the ddp preset's -1 says
