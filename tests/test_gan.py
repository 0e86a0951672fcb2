"""Stage 2: the CUGAN module with manual optimisation, its configs, losses and failure modes."""

import json
import subprocess
import sys

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from conftest import TINY, TINY_GAN, compose_config, fit_recording
from cugan_lightning.apps.train import build, train
from cugan_lightning.checkpoint import CheckpointError, read_checkpoint
from cugan_lightning.checkpoint.find import StartNotFoundError
from cugan_lightning.losses import GANLoss
from cugan_lightning.networks import PretrainedWeightsMissingError

GAN_TINY = [
    *TINY,
    *TINY_GAN,
    "data.patch_size=32",
    "data.batches_per_epoch=2",
    "callbacks=gan",
    "callbacks.rich_progress_bar=null",
    "model.log_figures=false",
]


def _cfg(tmp_path, stage1_ckpt, *extra):
    return compose_config([*GAN_TINY, f"init.ckpt={stage1_ckpt}", *extra], tmp_path)


def test_gan_losses_reference_values():
    logits = torch.tensor([2.0, -1.0, 0.5])
    bce = GANLoss("vanilla")
    expected_real = torch.nn.functional.softplus(-logits).mean()  # -log(sigmoid(x))
    torch.testing.assert_close(bce(logits, real=True), expected_real)
    torch.testing.assert_close(bce(logits, real=False), torch.nn.functional.softplus(logits).mean())
    hinge = GANLoss("hinge")
    torch.testing.assert_close(hinge(logits, real=True), torch.tensor((0 + 2 + 0.5) / 3))
    torch.testing.assert_close(hinge(logits, real=False), torch.tensor((3 + 0 + 1.5) / 3))
    torch.testing.assert_close(hinge(logits, real=True, for_discriminator=False), -logits.mean())
    torch.testing.assert_close(GANLoss("lsgan")(logits, real=True), ((logits - 1) ** 2).mean())
    with pytest.raises(ValueError, match="unknown GAN loss"):
        GANLoss("wgan")


def test_init_from_loads_stage1_weights(tmp_path, stage1_ckpt):
    _, model, trainer = build(_cfg(tmp_path, stage1_ckpt))
    saved = read_checkpoint(stage1_ckpt)["state_dict"]
    for key, value in model.net_g.state_dict().items():
        assert torch.equal(value, saved["net_g." + key])
    assert trainer.max_steps == 2 * 2000  # two optimizer steps per iteration


def test_init_from_mismatch_names_the_difference(tmp_path, stage1_ckpt):
    with pytest.raises(
        CheckpointError, match=r"does not fit model.net_g \(channels: checkpoint \[4, 8, 16\]"
    ):
        build(_cfg(tmp_path, stage1_ckpt, "model.net_g.channels=[8,8,16]"))


def test_auto_init_takes_the_newest_stage1_run_or_says_what_to_run(tmp_path, stage1_ckpt):
    overrides = [*GAN_TINY, "init.ckpt=auto", "init.task=cunet_mse"]
    with pytest.raises(StartNotFoundError, match="experiment=cunet_mse"):
        build(compose_config(overrides, tmp_path))
    run = tmp_path / "logs" / "cunet_mse" / "runs" / "2026-01-01_00-00-00" / "checkpoints"
    run.mkdir(parents=True)
    (run / "last.ckpt").write_bytes(stage1_ckpt.read_bytes())
    cfg = compose_config(overrides, tmp_path)
    _, model, _ = build(cfg)
    assert model.init_from == str(run / "last.ckpt")


class Snapshots(Callback):
    """Checks, on the first batch, that both networks change and that the D step leaves G untouched."""

    def __init__(self):
        self.checked = False

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.checked:
            return
        self.g_before = {k: v.clone() for k, v in module.net_g.state_dict().items()}
        self.d_before = {k: v.clone() for k, v in module.net_d.state_dict().items()}
        original = module.generator_step

        def generator_step(batch, out):
            # the discriminator has stepped, the generator not yet
            assert all(torch.equal(v, self.g_before[k]) for k, v in module.net_g.state_dict().items())
            assert any(not torch.equal(v, self.d_before[k]) for k, v in module.net_d.state_dict().items())
            module.generator_step = original
            return original(batch, out)

        module.generator_step = generator_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.checked:
            return
        self.checked = True
        assert any(not torch.equal(v, self.g_before[k]) for k, v in module.net_g.state_dict().items())
        changed_cond = [
            k
            for k, v in module.net_g.state_dict().items()
            if k.startswith("cond.") and not torch.equal(v, self.g_before[k])
        ]
        assert changed_cond, "C_G did not change"


@pytest.mark.parametrize("discriminator", ["gfm", "plain"])
def test_gan_stage_trains_with_and_without_gfm(tmp_path, stage1_ckpt, discriminator):
    cfg = _cfg(tmp_path, stage1_ckpt, f"model/discriminator={discriminator}", "debug=fast_dev_run")
    datamodule, model, trainer = build(cfg)
    snapshots = Snapshots()
    trainer.callbacks.append(snapshots)
    trainer.fit(model, datamodule=datamodule)
    assert snapshots.checked
    assert (model.net_d.cond is not None) == (discriminator == "gfm")
    metrics = trainer.callback_metrics
    for key in ("l_g_pix", "l_g_percep", "l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake"):
        assert torch.isfinite(metrics[f"train/{key}"]), key
    assert trainer.global_step == 2 * 2 and datamodule.train_batches_seen == 2


LOSSES = ("train/l_d_real", "train/l_g_total")


def test_gan_resume_is_exact(tmp_path, stage1_ckpt):
    common = ["data.batches_per_epoch=3", "model.scheduler_g.milestones=[2,3]"]
    full, full_losses = fit_recording(_cfg(tmp_path / "a", stage1_ckpt, *common, "iterations=4"), LOSSES)
    first, first_losses = fit_recording(_cfg(tmp_path / "b", stage1_ckpt, *common, "iterations=2"), LOSSES)
    ckpt = tmp_path / "stop.ckpt"
    first.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)
    assert len(saved["optimizer_states"]) == 2 and len(saved["lr_schedulers"]) == 2
    assert any(k.startswith("net_d.cond.") for k in saved["state_dict"])
    resumed, resumed_losses = fit_recording(
        _cfg(tmp_path / "c", stage1_ckpt, *common, "iterations=4"), LOSSES, ckpt
    )
    assert len(full_losses) == 4 and len(resumed_losses) == 2
    for (d1, g1), (d2, g2) in zip(full_losses, first_losses + resumed_losses, strict=True):
        assert torch.equal(d1, d2) and torch.equal(g1, g2)
    a, b = full.lightning_module.state_dict(), resumed.lightning_module.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert full.optimizers[0].param_groups[0]["lr"] == resumed.optimizers[0].param_groups[0]["lr"] == 5e-4 / 4


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, stage1_ckpt):
    cfg = _cfg(
        tmp_path,
        stage1_ckpt,
        "iterations=3",
        "data.batches_per_epoch=1",
        "callbacks.model_checkpoint=null",
        "model.nan_check_every=1",
    )
    datamodule, model, trainer = build(cfg)
    calls = {"n": 0}
    original = model.pixel_loss.forward

    def poisoned(output, target):
        calls["n"] += 1
        loss = original(output, target)
        return loss * float("nan") if calls["n"] == 3 else loss

    model.pixel_loss.forward = poisoned
    with pytest.raises(FloatingPointError, match="train/l_g became nan at iteration 2.*last good checkpoint"):
        trainer.fit(model, datamodule=datamodule)
    last = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 4  # two full iterations
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_paper_recipe_fails_fast_without_imagenet_vgg(tmp_path, stage1_ckpt, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("CUGAN_OFFLINE", "1")
    cfg = compose_config(
        [
            "experiment=cugan_gan",
            f"init.ckpt={stage1_ckpt}",
            *TINY[:3],
            "trainer.accelerator=cpu",
            "data.train_dir=null",
        ],
        tmp_path,
    )
    assert cfg.model.loss_weights.gan == 0.005 and cfg.model.loss_weights.pix == 0.01
    assert list(cfg.model.scheduler_g.milestones) == [50000, 100000, 200000, 300000, 400000]
    with pytest.raises(Exception, match="vgg19-dcbb9e9d.pth") as info:
        build(cfg)
    cause = info.value
    while cause.__cause__ is not None:
        cause = cause.__cause__
    assert isinstance(cause, PretrainedWeightsMissingError)


def test_quickstart_gan_switches_the_perceptual_term_off_explicitly(
    tmp_path, stage1_ckpt, monkeypatch, caplog
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    cfg = compose_config(["experiment=quickstart_cpu_gan", f"init.ckpt={stage1_ckpt}", *TINY[:3]], tmp_path)
    assert cfg.model.perceptual.if_missing == "disable"
    with caplog.at_level("WARNING"):
        _, model, _ = build(cfg)
    assert model.perceptual is None
    assert "PERCEPTUAL TERM SWITCHED OFF" in caplog.text


def test_gan_stage_checkpoint_restores_images(tmp_path, stage1_ckpt):
    result = train(_cfg(tmp_path, stage1_ckpt, "iterations=2"))
    metadata = read_checkpoint(result["last_checkpoint"])["cugan"]
    assert metadata["kind"] == "cugan" and metadata["init_from"] == str(stage1_ckpt)
    assert metadata["discriminator"]["config"]["gfm"] is True


def test_non_finite_weights_are_never_written(tmp_path, stage1_ckpt):
    _, model, _ = build(_cfg(tmp_path, stage1_ckpt))
    with torch.no_grad():
        next(model.net_d.parameters())[0] = float("inf")
    with pytest.raises(FloatingPointError, match="parameter net_d.* is not finite"):
        model.on_save_checkpoint({})


def test_ddp_preset_lets_the_gan_stage_leave_parameters_unused(tmp_path, stage1_ckpt):
    cfg = _cfg(tmp_path, stage1_ckpt, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1")
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.sync_batchnorm
    build(cfg)
    assert cfg.trainer.strategy == "ddp_find_unused_parameters_true"


@pytest.mark.slow
def test_gan_stage_trains_under_two_process_ddp(tmp_path, stage1_ckpt):
    # gloo on the CPU: two ranks, each with its own patches and levels, D and G alternating under DDP
    overrides = [
        *GAN_TINY,
        f"init.ckpt={stage1_ckpt}",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",  # SyncBatchNorm needs CUDA
        "callbacks.rich_progress_bar=null",
        "iterations=2",
        f"hydra.run.dir={tmp_path}",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "cugan_lightning", *overrides], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 4
    assert checkpoint["RestorationDataModule"]["train_batches_seen"] == 2


@pytest.mark.slow
def test_ddp_validation_scores_each_item_once_and_equals_one_process(tmp_path):
    """Two gloo ranks each score half of the evaluation grid; the synchronised means equal one process's."""
    common = [
        *TINY,
        "train=false",
        "test=true",
        "data.eval_settings=[[0,30],[2,0],[1,15]]",
        "trainer.accelerator=cpu",
        "logger=csv",
    ]
    results = {}
    for name, extra in (
        ("one", ["trainer.devices=1"]),
        (
            "two",
            [
                "trainer=ddp",
                "trainer.accelerator=cpu",
                "trainer.devices=2",
                "trainer.sync_batchnorm=false",
                "trainer.benchmark=false",
                "trainer.precision=32-true",  # the preset's auto is bf16 on a CPU with native bfloat16
            ],
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "cugan_lightning", *common, *extra, f"hydra.run.dir={tmp_path / name}"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = json.loads((tmp_path / name / "metrics.json").read_text())["metrics"]
    keys = [k for k in results["one"] if k.startswith("test/")]
    assert "test/psnr/b1_n15" in keys and "test/ssim/b0_n30" in keys
    for key in keys:
        assert results["two"][key] == pytest.approx(results["one"][key], abs=1e-4), key
