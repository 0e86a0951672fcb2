"""Options of the authors' released model code as config flags: the update order, the D update ratio and
warm-up, and level-weighted losses; defaults stay on the paper's text."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from conftest import TINY, TINY_GAN, compose_config
from cugan_lightning.apps.train import build
from cugan_lightning.losses import GANLoss, PixelLoss

GAN = [
    *TINY,
    *TINY_GAN,
    "data.patch_size=32",
    "callbacks=gan",
    "logger=csv",
    "model.log_figures=false",
    "+trainer.limit_val_batches=0",
]


class StepRecorder(Callback):
    """Per batch: did G change, did D change, and was D still untouched when G's step began?"""

    def __init__(self):
        self.rows: list[tuple[bool, bool, bool | None]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.g = [p.detach().clone() for p in module.net_g.parameters()]
        self.d = [p.detach().clone() for p in module.net_d.parameters()]
        self.d_untouched_at_g = None
        original = module.generator_step

        def generator_step(batch, out):
            self.d_untouched_at_g = all(
                torch.equal(a, b) for a, b in zip(self.d, module.net_d.parameters(), strict=True)
            )
            return original(batch, out)

        module.generator_step = generator_step
        self._restore = lambda: setattr(module, "generator_step", original)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self._restore()
        g_changed = any(not torch.equal(a, b) for a, b in zip(self.g, module.net_g.parameters(), strict=True))
        d_changed = any(not torch.equal(a, b) for a, b in zip(self.d, module.net_d.parameters(), strict=True))
        self.rows.append((g_changed, d_changed, self.d_untouched_at_g))


def fit(tmp_path, stage1_ckpt, *extra):
    cfg = compose_config([*GAN, f"init.ckpt={stage1_ckpt}", *extra], tmp_path)
    datamodule, model, trainer = build(cfg)
    recorder = StepRecorder()
    trainer.callbacks.append(recorder)
    trainer.fit(model, datamodule=datamodule)
    return trainer, recorder.rows


def test_paper_default_steps_d_then_g_every_iteration(tmp_path, stage1_ckpt):
    trainer, rows = fit(tmp_path, stage1_ckpt, "iterations=2")
    assert rows == [(True, True, False), (True, True, False)]  # D had stepped when G's step began
    assert trainer.global_step == 4


def test_released_order_steps_g_first_against_the_old_discriminator(tmp_path, stage1_ckpt):
    _, rows = fit(tmp_path, stage1_ckpt, "iterations=2", "model.update_order=g_first")
    assert rows == [(True, True, True), (True, True, True)]


def test_d_ratio_and_warmup_skip_generator_steps_and_count_them_in_max_steps(tmp_path, stage1_ckpt):
    extra = ["iterations=6", "model.d_updates_per_g_update=2", "model.d_warmup_iterations=1"]
    trainer, rows = fit(tmp_path, stage1_ckpt, *extra)
    assert [g for g, _, _ in rows] == [False, True, False, True, False, True]  # iterations 1, 3, 5
    assert all(d for _, d, _ in rows)
    assert len(rows) == 6 and trainer.global_step == 6 + 3


def test_bad_schedule_values_are_named(tmp_path, stage1_ckpt):
    with pytest.raises(ValueError, match="update_order must be"):
        build(compose_config([*GAN, f"init.ckpt={stage1_ckpt}", "model.update_order=sideways"], tmp_path))
    with pytest.raises(ValueError, match="d_updates_per_g_update must be >= 1"):
        build(compose_config([*GAN, f"init.ckpt={stage1_ckpt}", "model.d_updates_per_g_update=0"], tmp_path))


def test_weighted_losses_equal_their_per_sample_definition():
    logits = torch.tensor([0.3, -1.2, 2.0])
    weight = torch.tensor([0.5, 1.0, 2.0])
    expected = (F.binary_cross_entropy_with_logits(logits, torch.zeros(3), reduction="none") * weight).mean()
    assert torch.allclose(GANLoss("vanilla")(logits, real=False, weight=weight), expected)
    assert torch.equal(
        GANLoss("hinge")(logits, real=True), GANLoss("hinge")(logits, real=True, weight=torch.ones(3))
    )
    out, gt = torch.rand(3, 3, 4, 4), torch.rand(3, 3, 4, 4)
    per_sample = ((out - gt) ** 2).mean(dim=(1, 2, 3))
    assert torch.allclose(PixelLoss("mse")(out, gt, weight=weight), (per_sample * weight).mean())
    assert torch.allclose(PixelLoss("l1")(out, gt, weight=torch.ones(3)), PixelLoss("l1")(out, gt))


def test_level_weighted_stage1_loss_is_the_released_one(tmp_path):
    cfg = compose_config([*TINY, "model.level_weighted_losses=true", "debug=fast_dev_run"], tmp_path)
    _, model, _ = build(cfg)
    batch = {
        "lq": torch.rand(2, 3, 16, 16),
        "gt": torch.rand(2, 3, 16, 16),
        "z": torch.tensor([[0.0, 0.0], [1.0, 0.5]]),
    }
    loss = model.training_step(batch, 0)
    out = model.net_g(batch["lq"], batch["z"])
    per_sample = ((out - batch["gt"]) ** 2).mean(dim=(1, 2, 3))
    assert torch.allclose(loss, (per_sample * torch.tensor([1.1, 0.35])).mean())
