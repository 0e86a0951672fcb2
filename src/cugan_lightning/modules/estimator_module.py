"""The level estimator's training: degraded patches in, their condition z out (docs/estimation.md).

It trains on the batches every stage trains on (ground truth degraded on the device with levels drawn by the
same sampler), so the estimator learns exactly the degradations the restorer was trained to undo, in the same
codec. The loss is L1 between the estimator's pooled map and the batch's z. Validation scores each
factor's mean absolute error in the codec's units (blur sigma in pixels, noise sigma on 0..255, JPEG quality)
per evaluation setting, and ``val/level_error``, their mean in z, picks the best checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from ..degradations import LevelCodec
from ..estimation.learned import ESTIMATOR_KEY
from ..networks.estimator import LevelEstimator
from .base import optimizer_config
from .lightning_private import attached_trainer

__all__ = ["ESTIMATOR_KEY", "EstimatorModule"]

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class EstimatorModule(L.LightningModule):
    """Trains ``net`` (a :class:`~cugan_lightning.networks.estimator.LevelEstimator`) to read z off ``lq``."""

    stage = "estimator"

    def __init__(
        self,
        net: LevelEstimator,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        codec: Mapping[str, Any] | LevelCodec | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.codec = LevelCodec.coerce(codec)
        if net.cond_dim != self.codec.cond_dim:
            raise ValueError(
                f"estimator cond_dim {net.cond_dim} does not match the codec's {self.codec.cond_dim} factors "
                f"{list(self.codec.names)}"
            )
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.errors: nn.ModuleDict = nn.ModuleDict()

    def _input(self, lq: torch.Tensor) -> torch.Tensor:
        return lq.contiguous(memory_format=torch.channels_last) if self.channels_last else lq

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        z_hat = self.net.pooled(self._input(batch["lq"]))  # float32
        loss = F.l1_loss(z_hat, batch["z"])
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"train/l_est became {loss.item()}; training stopped, the last good checkpoint is kept. "
                "Lower the learning rate."
            )
        self.log("train/l_est", loss, prog_bar=True)
        return loss

    # ------------------------------------------------------------------------------------------- validation
    def setup(self, stage: str) -> None:
        if stage not in ("fit", "validate") or self.errors:
            return
        trainer = attached_trainer(self)
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        if datamodule is not None and getattr(datamodule, "val_set", None) is None:
            datamodule.setup("validate")
        settings = list(getattr(getattr(datamodule, "val_set", None), "setting_names", []))
        for key in ["all", *settings]:
            for name in (*self.codec.names, "z"):
                self.errors[f"{key}/{name}"] = MeanMetric()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        z_hat = self.net.global_z(self._input(batch["lq"])).float()
        error = (z_hat - batch["z"].float()).abs()  # (B, D) in z
        scale = torch.tensor(self.codec.max_levels, device=error.device)
        levels = error * scale  # physical units (a JPEG quality difference for the jpeg factor)
        for i, setting in enumerate(batch["setting"]):
            for key in ("all", setting):
                if f"{key}/z" not in self.errors:
                    continue
                self.errors[f"{key}/z"].update(error[i].mean())
                for d, name in enumerate(self.codec.names):
                    self.errors[f"{key}/{name}"].update(levels[i, d])

    def on_validation_epoch_end(self) -> None:
        values = {}
        for key, metric in self.errors.items():
            setting, name = key.split("/")
            if metric.update_count and (name != "z" or setting == "all"):
                label = "val/level_error" if name == "z" else f"val/mae/{name}"
                values[label if setting == "all" else f"{label}/{setting}"] = metric.compute()
            metric.reset()
        self.log_dict(values)

    # --------------------------------------------------------------------------------------------- training
    def configure_optimizers(self) -> Any:
        return optimizer_config(self.optimizer_factory, self.scheduler_factory, self.parameters())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for name, param in self.named_parameters():
            if not torch.isfinite(param).all():
                raise FloatingPointError(f"parameter {name} is not finite; the checkpoint was not written")
        checkpoint[ESTIMATOR_KEY] = {
            "kind": "estimator",
            "estimator": {"class": type(self.net).__name__, "config": dict(self.net.config)},
            "codec": self.codec.to_dict(),
            "train_config": getattr(self, "train_config", None),
        }
