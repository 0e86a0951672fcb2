"""Stage 1: the PSNR-oriented CUnet (generator and its condition network trained with a pixel loss)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn

from ..degradations import LevelCodec
from ..losses import PixelLoss
from .common import (
    align_log_step,
    assert_finite,
    assert_finite_parameters,
    attach_metadata,
    eval_epoch_end,
    eval_step,
    generator_metadata,
    mean_level,
    setup_eval_metrics,
)
from .speed import TrainingSpeed

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class CUnetModule(L.LightningModule):
    """Trains ``net_g`` (a :class:`~cugan_lightning.networks.CUnet`) on ``{"lq", "gt", "z"}`` batches.

    ``optimizer`` and ``scheduler`` are factories (Hydra ``_partial_``); the scheduler is stepped every
    iteration. ``level_weighted_losses`` (an option of the authors' released code) weights each sample's pixel
    loss by ``1.1 - mean(z)``. ``channels_last`` and ``compile`` are speed options (:mod:`.speed`). Validation logs PSNR / SSIM per evaluation setting (``val/psnr/b2_n30``) and their means
    (``val/psnr``), and a modulation figure of ``figure_setting``.
    """

    stage = "cunet"
    optimizer_steps_per_iteration = 1

    def __init__(
        self,
        net_g: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        pixel_loss: str = "mse",
        codec: Mapping[str, Any] | LevelCodec | None = None,
        figure_setting: str = "b2_n30",
        log_figures: bool = True,
        nan_check_every: int = 1,
        level_weighted_losses: bool = False,
        channels_last: bool = False,
        compile: bool | str = False,  # noqa: A002 (the config key)
    ) -> None:
        super().__init__()
        self.level_weighted_losses = bool(level_weighted_losses)
        self.net_g = net_g
        self.speed = TrainingSpeed(channels_last, compile)
        self.speed.format_networks(net_g)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.pixel_loss = PixelLoss(pixel_loss)
        self.codec = LevelCodec.coerce(codec)
        if getattr(net_g, "cond_dim", self.codec.cond_dim) != self.codec.cond_dim:
            raise ValueError(
                f"generator cond_dim {net_g.cond_dim} does not match the codec's {self.codec.cond_dim} factors "
                f"{list(self.codec.names)}"
            )
        self.figure_setting = figure_setting
        self.log_figures = log_figures
        self.nan_check_every = nan_check_every
        self.metrics: nn.ModuleDict = nn.ModuleDict()
        self._figure_sample: dict[str, Any] | None = None

    def forward(self, lq: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return self.net_g(lq, z)

    # ------------------------------------------------------------------------------------------ training
    def on_fit_start(self) -> None:
        self.speed.compile_for_fit(self, "net_g")

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        batch = self.speed.format_batch(batch)
        out = self.speed.forward("net_g", self.net_g)(batch["lq"], batch["z"])
        # the released code's option: each sample's loss times 1.1 - mean(z)
        weight = 1.1 - mean_level(batch["z"]) if self.level_weighted_losses else None
        loss = self.pixel_loss(out, batch["gt"], weight=weight)
        assert_finite("train/l_g_pix", loss, self.global_step, self.nan_check_every)
        self.log("train/l_g_pix", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---------------------------------------------------------------------------------------- evaluation
    def setup(self, stage: str) -> None:
        setup_eval_metrics(self, stage)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        eval_step(self, "val", batch)

    def on_train_epoch_start(self) -> None:
        align_log_step(self._trainer)

    def on_validation_epoch_end(self) -> None:
        eval_epoch_end(self, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        eval_step(self, "test", batch)

    def on_test_epoch_end(self) -> None:
        eval_epoch_end(self, "test")

    # --------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        assert_finite_parameters(self, self.global_step)
        attach_metadata(
            checkpoint,
            generator_metadata(
                self.stage,
                self.net_g,
                self.codec,
                self._trainer,
                train_config=getattr(self, "train_config", None),
            ),
        )
