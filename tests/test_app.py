"""The Hydra app: configs compose and instantiate, stage 1 trains, resumes exactly, fails clearly."""

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import lightning as L
import pytest
import torch

from conftest import CONFIG_MODULE, TINY, compose_config, fit_recording
from cugan_lightning.apps.train import build, train
from cugan_lightning.checkpoint import load_generator, read_checkpoint
from cugan_lightning.data import center_crop, load_embedded_image
from cugan_lightning.data.io import to_float
from cugan_lightning.degradations import degrade_fixed

EXPERIMENTS = sorted(
    p.name.removesuffix(".yaml") for p in resources.files(CONFIG_MODULE).joinpath("experiment").iterdir()
)


def _experiment_overrides(name):
    # GAN experiments need a stage-1 checkpoint and ImageNet VGG weights; give them stand-ins here.
    extra = []
    if "gan" in name:
        extra = ["init.ckpt=null", "model.perceptual.weights=null", "model.val_metrics=[]"]
    return [f"experiment={name}", *extra]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tmp_path):
    cfg = compose_config(_experiment_overrides(name), tmp_path)
    assert cfg.trainer.accelerator in ("cpu", "gpu")
    # GPU presets are instantiated on the CPU here: the rest of the config is what is checked
    # the data folders are checked when the app is built: the embedded photographs stand in for DIV2K here
    cpu = ["trainer.accelerator=cpu", "trainer.devices=1", "data.train_dir=null", "data.val_dir=null"]
    cfg = compose_config([*_experiment_overrides(name), *cpu], tmp_path)
    _, model, trainer = build(cfg)
    assert isinstance(model, L.LightningModule) and isinstance(trainer, L.Trainer)
    # configs count iterations; the GAN stages make a G and a D optimizer step in each
    assert trainer.max_steps == cfg.iterations * (2 if "gan" in name else 1)


def test_paper_recipe_values(tmp_path):
    cfg = compose_config(["experiment=cunet_mse", "data.train_dir=/somewhere/DIV2K_train_HR"], tmp_path)
    assert cfg.data.patch_size == 64 and cfg.data.batch_size == 16
    assert cfg.model.optimizer.lr == 5e-4 and list(cfg.model.optimizer.betas) == [0.9, 0.999]
    assert cfg.model.scheduler.step_size == 200_000 and cfg.model.scheduler.gamma == 0.5
    assert cfg.trainer.accelerator == "gpu"
    assert cfg.model.net_g.channels == [64, 128, 256] and cfg.model.net_g.conditional


def test_unet_baseline_is_unconditional_on_one_level(tmp_path):
    cfg = compose_config(["experiment=unet_baseline", "baseline_level=[2,50]"], tmp_path)
    assert cfg.task_name == "unet_b2_n50"
    assert cfg.model.net_g.conditional is False
    assert list(cfg.degradation.sampler.fixed) == [2, 50]
    assert [list(s) for s in cfg.data.eval_settings] == [[2, 50]]


def test_user_max_steps_is_read_as_iterations(tmp_path):
    cfg = compose_config([*TINY, "trainer.max_steps=7"], tmp_path)
    _, _, trainer = build(cfg)
    assert trainer.max_steps == 7


def test_fast_dev_run_trains_two_steps(tmp_path):
    cfg = compose_config([*TINY, "debug=fast_dev_run"], tmp_path)
    result = train(cfg)
    assert torch.isfinite(torch.tensor(result["metrics"]["train/l_g_pix"]))
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]


LOSSES = ("train/l_g_pix",)


def test_resume_reproduces_the_uninterrupted_loss_sequence(tmp_path):
    common = [*TINY, "data.batches_per_epoch=3", "logger=csv", "model.log_figures=false"]
    full, full_losses = fit_recording(compose_config([*common, "iterations=5"], tmp_path / "full"), LOSSES)
    assert len(full_losses) == 5
    # stop mid-epoch after 2 iterations and save as the checkpoint callback would
    first, first_losses = fit_recording(compose_config([*common, "iterations=2"], tmp_path / "first"), LOSSES)
    ckpt = tmp_path / "first" / "stop.ckpt"
    first.save_checkpoint(ckpt)
    resumed, resumed_losses = fit_recording(
        compose_config([*common, "iterations=5"], tmp_path / "second"), LOSSES, ckpt
    )
    assert len(resumed_losses) == 3
    for (expected,), (got,) in zip(full_losses, first_losses + resumed_losses, strict=True):
        assert torch.equal(expected, got)
    for (name, a), b in zip(
        full.lightning_module.state_dict().items(),
        resumed.lightning_module.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b), name


def test_checkpoint_alone_restores_images(tmp_path):
    cfg = compose_config([*TINY, "iterations=3", "data.batches_per_epoch=3"], tmp_path)
    result = train(cfg)
    last = Path(result["last_checkpoint"])
    assert last.name == "last.ckpt" and Path(result["best_checkpoint"]).name == "best.ckpt"
    metadata = read_checkpoint(last)["cugan"]
    assert metadata["kind"] == "cunet" and metadata["codec"]["max_levels"] == [4.0, 50.0]
    assert metadata["train_config"]["model"]["net_g"]["channels"] == [4, 8, 16]
    net, codec = load_generator(last)
    assert net.config["channels"] == [4, 8, 16]
    x = torch.rand(1, 3, 21, 30)
    with torch.no_grad():
        assert net(x, codec.encode({"blur": 1.0, "noise": 20.0})).shape == x.shape
    assert list((tmp_path / "images").glob("val_modulation_*.png"))
    assert (tmp_path / "csv" / "metrics.csv").is_file()


@pytest.mark.slow
def test_app_reports_a_missing_folder_in_one_line(tmp_path):
    missing = tmp_path / "DIV2K_train_HR"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cugan_lightning",
            *TINY,
            f"data.train_dir={missing}",
            f"hydra.run.dir={tmp_path}/run",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert f"error: image folder '{missing}' does not exist (set `data.train_dir`)" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_multirun_sweeps_an_ablation(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cugan_lightning",
            "-m",
            *TINY,
            "debug=fast_dev_run",
            "model.net_g.conditional=true,false",
            f"hydra.sweep.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for job, conditional in (("0", True), ("1", False)):
        assert (tmp_path / job / "metrics.json").is_file()
        config = (tmp_path / job / ".hydra" / "config.yaml").read_text()
        assert f"conditional: {str(conditional).lower()}" in config


def test_gpu_preset_without_a_gpu_says_what_to_use(tmp_path, monkeypatch):
    from cugan_lightning.apps.train import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = compose_config([*TINY, "trainer=gpu"], tmp_path)
    with pytest.raises(ConfigError, match="use trainer=cpu"):
        build(cfg)


@pytest.mark.slow
def test_stage1_learns_to_denoise_and_listens_to_the_condition(tmp_path):
    cfg = compose_config(
        [
            *TINY,
            "model.net_g.channels=[8,16,32]",
            "iterations=300",
            "data.batches_per_epoch=300",
            "data.batch_size=4",
            "data.patch_size=32",
            "data.eval_settings=[[0,30]]",
            "data.val_crop=64",
            "model.log_figures=false",
        ],
        tmp_path,
    )
    result = train(cfg)
    assert result["metrics"]["val/psnr_gain"] > 2.0  # dB over the noisy input, on held-out photographs
    net, codec = load_generator(result["last_checkpoint"])
    gt = torch.from_numpy(to_float(center_crop(load_embedded_image("chelsea"), 64))).permute(2, 0, 1)
    lq = degrade_fixed(gt, 0, 30, image_key="chelsea")[None]

    def psnr(noise_level):
        with torch.no_grad():
            out = net(lq, codec.encode({"noise": noise_level})).clamp(0, 1)
        return float(10 * torch.log10(1 / ((out - gt) ** 2).mean()))

    assert psnr(30) > psnr(0) + 1.0  # telling the network the true noise level restores better
