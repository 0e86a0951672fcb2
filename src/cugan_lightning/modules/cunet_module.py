"""Stage 1: the PSNR-oriented CUnet (generator and its condition network trained with a pixel loss)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..degradations import LevelCodec
from ..losses import PixelLoss
from .base import RestorationModule, mean_level, optimizer_config

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class CUnetModule(RestorationModule):
    """Trains ``net_g`` (a :class:`~cugan_lightning.networks.CUnet`) with a pixel loss.

    ``optimizer`` and ``scheduler`` are factories (Hydra ``_partial_``); the scheduler is stepped every
    iteration. ``level_weighted_losses`` (an option of the authors' released code) weights each sample's pixel
    loss by ``1.1 - mean(z)``. Validation, checkpoints and the other arguments: :class:`RestorationModule`.
    """

    stage = "cunet"

    def __init__(
        self,
        net_g: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        pixel_loss: str = "mse",
        codec: Mapping[str, Any] | LevelCodec | None = None,
        level_weighted_losses: bool = False,
        init_from: str | Path | None = None,
        figure_setting: str = "b2_n30",
        log_figures: bool = True,
        nan_check_every: int = 1,
        channels_last: bool = False,
        compile: bool | str = False,  # noqa: A002 (the config key)
    ) -> None:
        super().__init__(
            net_g, codec, init_from=init_from, figure_setting=figure_setting, log_figures=log_figures,
            nan_check_every=nan_check_every, channels_last=channels_last, compile=compile,
        )  # fmt: skip
        self.level_weighted_losses = bool(level_weighted_losses)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.pixel_loss = PixelLoss(pixel_loss)

    def on_fit_start(self) -> None:
        self.speed.compile_for_fit(self, "net_g")

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        batch = self.speed.format_batch(batch)
        out = self.speed.forward("net_g", self.net_g)(batch["lq"], batch["z"])
        # the released code's option: each sample's loss times 1.1 - mean(z)
        weight = 1.1 - mean_level(batch["z"]) if self.level_weighted_losses else None
        loss = self.pixel_loss(out, batch["gt"], weight=weight)
        self.check_finite("train/l_g_pix", loss, self.iteration)
        self.log("train/l_g_pix", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> Any:
        return optimizer_config(self.optimizer_factory, self.scheduler_factory, self.parameters())
