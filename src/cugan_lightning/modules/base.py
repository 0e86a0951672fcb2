"""What the two training stages share: :class:`RestorationModule`.

It owns the generator ``net_g`` with its level codec and speed options, the optional start from another
generator file (``init_from``), finiteness checks, validation and test (scores per evaluation setting and the
logged modulation figure), and what every checkpoint records beside the weights. A stage subclass adds only
what differs: its losses, ``training_step``, ``configure_optimizers`` and its own checkpoint entries
(:meth:`RestorationModule.checkpoint_extras`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import nn

from ..checkpoint import CHECKPOINT_KEY, describe_generator, load_weights_into
from ..degradations import LevelCodec, known_factors, lookup
from ..evaluation.metrics import ImageScorer
from ..figures import modulation_rows, render_rows, save_png
from .lightning_private import align_log_step, attached_trainer, batches_trained
from .metrics import SettingMetrics
from .speed import TrainingSpeed

__all__ = ["RestorationModule", "mean_level", "optimizer_config"]

log = logging.getLogger(__name__)


def mean_level(z: torch.Tensor) -> torch.Tensor:
    """``mean(z)`` per sample ``(B,)`` in [0, 1]: how degraded each input is (the released code's level weights);
    a condition map ``(B, D, H, W)`` is averaged over the image too."""
    return z.detach().float().flatten(1).mean(dim=1)


def optimizer_config(optimizer_factory: Any, scheduler_factory: Any, params: Any) -> Any:
    """``configure_optimizers``' answer for one optimizer and an optional scheduler stepped every iteration."""
    optimizer = optimizer_factory(params=params)
    if scheduler_factory is None:
        return optimizer
    scheduler = scheduler_factory(optimizer=optimizer)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class RestorationModule(L.LightningModule):
    """A generator ``net_g`` trained on ``{"lq", "gt", "z"}`` batches and validated on the fixed grid.

    ``codec``: the level <-> z mapping (stored in every checkpoint). ``init_from``: a generator file whose G and
    C_G start this run (stage 2 starts from stage 1; DNI later needs that shared start). ``figure_setting``: the
    evaluation setting of the logged modulation figure. ``nan_check_every``: iterations between loss checks.
    ``channels_last`` and ``compile``: speed options (:mod:`.speed`). ``val_scorer``: extra perceptual scores
    per setting (LPIPS, DISTS), kept out of the module's state so it never enters a checkpoint.
    """

    stage = ""
    """The kind this stage's checkpoints record (``cunet``, ``cugan``)."""
    optimizer_steps_per_iteration = 1

    def __init__(
        self,
        net_g: nn.Module,
        codec: Mapping[str, Any] | LevelCodec | None = None,
        *,
        init_from: str | Path | None = None,
        figure_setting: str = "b2_n30",
        log_figures: bool = True,
        nan_check_every: int = 1,
        channels_last: bool = False,
        compile: bool | str = False,  # noqa: A002 (the config key)
        val_scorer: ImageScorer | None = None,
        other_networks: tuple[nn.Module, ...] = (),
    ) -> None:
        super().__init__()
        object.__setattr__(self, "val_scorer", val_scorer)  # not a submodule: never in a checkpoint
        self.net_g = net_g
        self.codec = LevelCodec.coerce(codec)
        if getattr(net_g, "cond_dim", self.codec.cond_dim) != self.codec.cond_dim:
            raise ValueError(
                f"generator cond_dim {net_g.cond_dim} does not match the codec's {self.codec.cond_dim} factors "
                f"{list(self.codec.names)}"
            )
        self.speed = TrainingSpeed(channels_last, compile)
        self.speed.format_networks(net_g, *other_networks)
        self.figure_setting = figure_setting
        self.log_figures = log_figures
        self.nan_check_every = nan_check_every
        self.metrics: nn.ModuleDict = nn.ModuleDict()
        self._figure_sample: dict[str, Any] | None = None
        self.init_from = str(init_from) if init_from else None
        if self.init_from:
            load_weights_into(self.net_g, self.init_from, self.codec, what="init.ckpt")
            log.info("G and C_G initialised from %s", self.init_from)

    def forward(self, lq: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return self.net_g(lq, z)

    @property
    def iteration(self) -> int:
        """Index of the current batch (Lightning's global_step counts the optimizers' steps)."""
        return batches_trained(attached_trainer(self))

    def on_train_epoch_start(self) -> None:
        align_log_step(attached_trainer(self))

    # ------------------------------------------------------------------------------------------- finiteness
    def check_finite(self, name: str, value: torch.Tensor, iteration: int) -> None:
        """Stop training with a clear message when a loss is NaN or infinite (the last checkpoint is kept).

        Checked every ``nan_check_every`` iterations: on a GPU each check waits for the device, so the hot path
        spaces them out; the check of the weights before every checkpoint guards the iterations in between.
        """
        if self.nan_check_every > 1 and iteration % self.nan_check_every:
            return
        if not torch.isfinite(value).all():
            raise FloatingPointError(
                f"{name} became {value.item()} at iteration {iteration}; training stopped. The last good "
                "checkpoint is kept (checkpoints/last.ckpt). Lower the learning rate or enable gradient clipping "
                "and resume with ckpt_path=..."
            )

    def _check_finite_parameters(self, iteration: int) -> None:
        """Refuse to write a checkpoint of non-finite weights, so that last.ckpt always stays usable."""
        for name, param in self.named_parameters():
            if not torch.isfinite(param).all():
                raise FloatingPointError(
                    f"parameter {name} is not finite at iteration {iteration}; training stopped without writing "
                    "the checkpoint, the last good one is kept. Lower the learning rate or enable gradient clipping."
                )

    # ------------------------------------------------------------------------------------------- evaluation
    def setup(self, stage: str) -> None:
        """Per-setting metrics for the validation and test grids of the attached data module."""
        if stage not in ("fit", "validate", "test"):
            return
        perceptual = list(self.val_scorer.labels.values()) if self.val_scorer is not None else []
        for split in ("val", "test"):
            names = self._setting_names(split)
            if names and split not in self.metrics:
                self.metrics[split] = SettingMetrics(names, perceptual)

    def _setting_names(self, split: str) -> list[str]:
        trainer = attached_trainer(self)
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        dataset = getattr(datamodule, f"{split}_set", None)
        if dataset is None and datamodule is not None and hasattr(datamodule, "setup"):
            datamodule.setup(split if split != "val" else "validate")
            dataset = getattr(datamodule, f"{split}_set", None)
        return list(getattr(dataset, "setting_names", []))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def _eval_step(self, split: str, batch: dict[str, Any]) -> None:
        """Restore one evaluation batch, update its metrics, keep the sample shown in the figure."""
        out = self.net_g(batch["lq"], batch["z"])
        if self.val_scorer is not None:
            self.val_scorer.to(out.device)  # outside the module's state: moved here, once
        self.metrics[split].update(out, batch["lq"], batch["gt"], list(batch["setting"]), self.val_scorer)
        if self._figure_sample is None and self.log_figures:
            self._figure_sample = _capture_sample(batch, self.figure_setting)

    def _eval_epoch_end(self, split: str) -> None:
        """Log the per-setting metrics and their means, then the modulation figure."""
        if split not in self.metrics:
            return
        values = self.metrics[split].compute(split)
        self.metrics[split].reset()
        self.log_dict(values, sync_dist=True)
        if self._figure_sample is not None and not self.trainer.sanity_checking:
            self._log_image(f"{split}/modulation", self._render_figure(self._figure_sample))
        self._figure_sample = None

    def _render_figure(self, sample: Mapping[str, Any]) -> Any:
        """The modulation figure of one captured evaluation sample, rendered with ``net_g`` in eval mode."""
        lq = sample["lq"].unsqueeze(0).to(self.device)
        gt = sample["gt"].unsqueeze(0)
        was_training = self.net_g.training
        self.net_g.eval()
        rows = modulation_rows(lambda x, z: self.net_g(x, z), lq, gt, self.codec, sample["levels"])
        self.net_g.train(was_training)
        return render_rows(rows)

    def _log_image(self, key: str, image: Any) -> Path | None:
        """Send a uint8 ``(H, W, 3)`` image to every image-capable logger and save it as a PNG under
        ``<default_root_dir>/images/`` (so that even a CSV-logged run keeps its figures)."""
        trainer = self.trainer
        if not trainer.is_global_zero:
            return None
        step = trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[image], step=step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(key, image, step, dataformats="HWC")
        name = key.replace("/", "_")
        return save_png(image, Path(trainer.default_root_dir) / "images" / f"{name}_{step:08d}.png")

    # ------------------------------------------------------------------------------------------ checkpoints
    def checkpoint_extras(self) -> dict[str, Any]:
        """What this stage's checkpoints record beyond the generator, codec and run (none by default)."""
        return {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Weights are checked first; the checkpoint then carries plain metadata beside them: enough to rebuild
        the generator and label its sliders, the run's config, and the W&B run it was logged to (so that a
        resumed run continues that run)."""
        self._check_finite_parameters(self.iteration)
        extra = self.checkpoint_extras()
        trainer = attached_trainer(self)
        for logger in trainer.loggers if trainer is not None else []:
            if isinstance(logger, WandbLogger) and logger.version:
                extra["wandb_run_id"] = str(logger.version)
        checkpoint[CHECKPOINT_KEY] = describe_generator(
            self.stage, self.net_g, self.codec, **extra, train_config=getattr(self, "train_config", None)
        )


def _capture_sample(batch: Mapping[str, Any], setting: str) -> dict[str, Any] | None:
    """The first sample of ``batch`` with the wanted setting, detached on the CPU (None if absent)."""
    for i, name in enumerate(batch["setting"]):
        if name == setting:
            factors = (lookup(name) for name in known_factors())
            levels = {f.name: float(batch[f.batch_key][i]) for f in factors if f.batch_key in batch}
            return {
                "lq": batch["lq"][i].detach().cpu(),
                "gt": batch["gt"][i].detach().cpu(),
                "levels": levels,
            }
    return None
