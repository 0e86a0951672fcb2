"""Speed options: channels_last, torch.compile and mixed precision train to the same place as float32 eager,
resume exactly on the CPU, and fall back clearly."""

from __future__ import annotations

import logging

import pytest
import torch

from conftest import TINY, TINY_GAN, compose_config, fit_recording
from cugan_lightning.apps.train import build
from cugan_lightning.inference import precision
from cugan_lightning.inference.precision import native_bf16
from cugan_lightning.modules.speed import TrainingSpeed, check_compile, resolve_precision

SHORT = [*TINY, "iterations=24", "data.batches_per_epoch=12", "logger=csv", "model.log_figures=false"]
PSNR_TOLERANCE = {"channels_last": 0.02, "bf16": 0.3, "compile": 0.05}
"""dB between the validation PSNR after 24 iterations with an option and with float32 eager (tiny widths)."""
OPTIONS = {
    "channels_last": ["model.channels_last=true"],
    "bf16": ["trainer.precision=bf16-mixed"],
    "compile": ["model.compile=true"],
}


def psnr_after(tmp_path, overrides):
    trainer, losses = fit_recording(compose_config([*SHORT, *overrides], tmp_path), ("train/l_g_pix",))
    return float(trainer.callback_metrics["val/psnr"]), losses, trainer


@pytest.fixture(scope="module")
def eager_psnr(tmp_path_factory):
    return psnr_after(tmp_path_factory.mktemp("eager"), [])[0]


@pytest.mark.parametrize("option", ["channels_last", "bf16", pytest.param("compile", marks=pytest.mark.slow)])
def test_each_option_reaches_the_eager_float32_psnr(tmp_path, eager_psnr, option):
    psnr, losses, trainer = psnr_after(tmp_path, OPTIONS[option])
    assert len(losses) == 24
    assert abs(psnr - eager_psnr) <= PSNR_TOLERANCE[option], (option, psnr, eager_psnr)
    module = trainer.lightning_module
    if option == "channels_last":
        weight = (
            module.net_g.head.weight
            if hasattr(module.net_g, "head")
            else next(p for p in module.net_g.parameters() if p.dim() == 4)
        )
        assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    if option == "compile":
        assert module.speed.compiled == {"net_g": True}
    if option == "bf16":
        assert trainer.precision == "bf16-mixed"


@pytest.mark.parametrize("option", ["channels_last", "bf16", pytest.param("compile", marks=pytest.mark.slow)])
def test_each_option_resumes_exactly_on_the_cpu(tmp_path, option):
    common = [*TINY, "data.batches_per_epoch=3", "logger=csv", "model.log_figures=false", *OPTIONS[option]]
    full, full_losses = fit_recording(
        compose_config([*common, "iterations=5"], tmp_path / "full"), ("train/l_g_pix",)
    )
    first, first_losses = fit_recording(
        compose_config([*common, "iterations=2"], tmp_path / "first"), ("train/l_g_pix",)
    )
    ckpt = tmp_path / "first" / "stop.ckpt"
    first.save_checkpoint(ckpt)
    resumed, resumed_losses = fit_recording(
        compose_config([*common, "iterations=5"], tmp_path / "second"), ("train/l_g_pix",), ckpt
    )
    assert len(resumed_losses) == 3
    for (expected,), (got,) in zip(full_losses, first_losses + resumed_losses, strict=True):
        assert torch.equal(expected, got)
    a, b = full.lightning_module.state_dict(), resumed.lightning_module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_gan_stage_trains_with_channels_last_and_bf16(tmp_path, stage1_ckpt):
    stage1 = stage1_ckpt
    overrides = [
        *TINY, *TINY_GAN, f"init.ckpt={stage1}", "data.patch_size=32", "model.log_figures=false",
        "iterations=3", "data.batches_per_epoch=3", "logger=csv", "callbacks=gan", "callbacks.rich_progress_bar=null",
        "model.channels_last=true", "trainer.precision=bf16-mixed",
    ]  # fmt: skip
    trainer, values = fit_recording(compose_config(overrides, tmp_path / "run"), ("train/l_d_real",))
    assert len(values) == 3 and all(torch.isfinite(v).all() for (v,) in values)
    net_d = trainer.lightning_module.net_d
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in net_d.parameters() if p.dim() == 4)


def test_a_network_that_cannot_compile_trains_eagerly_and_the_log_says_why(tmp_path, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise RuntimeError("no C++ compiler found\nsecond line")

    monkeypatch.setattr(torch, "compile", refuse)
    with caplog.at_level(logging.WARNING):
        _, losses, trainer = psnr_after(
            tmp_path, ["model.compile=max-autotune", "iterations=3", "data.batches_per_epoch=3"]
        )
    assert len(losses) == 3
    assert trainer.lightning_module.speed.compiled == {"net_g": False}
    (record,) = [r for r in caplog.records if "model.compile" in r.getMessage()]
    assert record.getMessage() == (
        "model.compile: torch.compile (mode max-autotune) of net_g failed (RuntimeError: no C++ compiler found); "
        "training it eagerly"
    )


def test_the_try_compile_leaves_buffers_and_gradients_untouched():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    speed = TrainingSpeed(compile=True)
    speed.compile_networks({"net": (net, (torch.randn(2, 3, 8, 8),))})
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm's running stats included
    assert all(p.grad is None for p in net.parameters())


def test_bad_speed_values_are_named(tmp_path):
    with pytest.raises(ValueError, match="model.compile must be false, true or a torch.compile mode"):
        check_compile("fast")
    with pytest.raises(ValueError, match="model.channels_last must be true or false"):
        TrainingSpeed(channels_last="yes")
    with pytest.raises(ValueError, match="model.compile must be"):
        build(compose_config([*TINY, "model.compile=turbo"], tmp_path))


def test_precision_auto_is_bf16_only_where_it_is_native(tmp_path, monkeypatch):
    assert resolve_precision("16-mixed", "gpu") == "16-mixed"  # an explicit value is kept
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_precision("auto", "gpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "gpu") == "bf16-mixed"
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "fma"})
    assert resolve_precision("auto", "cpu") == "32-true"
    assert "emulated" in native_bf16("cpu")[1]
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2"})
    _, _, trainer = build(compose_config([*TINY, "trainer.precision=auto"], tmp_path))
    assert trainer.precision == "32-true"
