"""Helpers shared by the two training stages: evaluation metrics, image logging, checkpoint metadata."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import nn
from torchmetrics import MeanMetric

from ..checkpoint import CHECKPOINT_KEY, describe_generator
from ..degradations import LevelCodec
from ..evaluation.metrics import ImageScorer
from ..figures import modulation_rows, render_rows, save_png

MetricDict = dict[str, torch.Tensor]


class SettingMetrics(nn.Module):
    """Per evaluation setting, the mean over images of per-image scores, with the evaluation app's code and
    conventions (:mod:`cugan_lightning.evaluation.metrics`): ``psnr``, ``psnr_y``, ``ssim`` of the output,
    ``psnr_input`` of the degraded input, and the ``perceptual`` labels (``lpips``, ``dists``) of a shared scorer.

    The states are sums (``MeanMetric``), so under DDP each rank scores its own share of the grid and the
    synchronised means equal one process's.
    """

    OUTPUT_METRICS = ("psnr", "psnr_y", "ssim")

    def __init__(self, settings: list[str], perceptual: Sequence[str] = ()) -> None:
        super().__init__()
        self.settings = list(settings)
        self.index = {name: i for i, name in enumerate(self.settings)}
        self.output_scorer = ImageScorer(self.OUTPUT_METRICS)
        self.input_scorer = ImageScorer(["psnr"])
        self.labels = [*self.OUTPUT_METRICS, "psnr_input", *perceptual]
        # lists indexed like `settings`: setting names such as "b1.5_n25" cannot be module names
        self.means = nn.ModuleDict(
            {label: nn.ModuleList(MeanMetric() for _ in self.settings) for label in self.labels}
        )

    def update(
        self,
        out: torch.Tensor,
        lq: torch.Tensor,
        gt: torch.Tensor,
        settings: list[str],
        scorer: ImageScorer | None = None,
    ) -> None:
        unknown = [s for s in settings if s not in self.index]
        if unknown:
            raise KeyError(f"evaluation setting '{unknown[0]}' is not one of {self.settings}")
        scores = dict(self.output_scorer(out, gt))
        scores["psnr_input"] = self.input_scorer(lq, gt)["psnr"]
        if scorer is not None:
            scores.update({k: v for k, v in scorer(out, gt).items() if k in self.means})
        for label, values in scores.items():
            for value, name in zip(values, settings, strict=True):
                self.means[label][self.index[name]].update(value)

    def _settings_seen(self) -> list[int]:
        """Indices of the settings any rank has scored (the same list on every rank, so that every rank
        computes, and synchronises, the same metrics in the same order)."""
        first = self.means["psnr"]
        counts = torch.tensor([m.update_count for m in first], device=first[0].mean_value.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
        return [i for i, count in enumerate(counts.tolist()) if count > 0]

    def compute(self, prefix: str) -> MetricDict:
        """``{prefix}/psnr/<setting>``, ``{prefix}/ssim/<setting>``, ... and their means over settings."""
        result: MetricDict = {}
        seen = self._settings_seen()
        with warnings.catch_warnings():  # a rank that saw none of a setting's images still synchronises it
            warnings.filterwarnings("ignore", message=".*was called before the ``update`` method.*")
            for label in self.labels:
                values = []
                for i in seen:
                    value = self.means[label][i].compute().float()
                    result[f"{prefix}/{label}/{self.settings[i]}"] = value
                    values.append(value)
                if values:
                    result[f"{prefix}/{label}"] = torch.stack(values).mean()
        if f"{prefix}/psnr" in result and f"{prefix}/psnr_input" in result:
            result[f"{prefix}/psnr_gain"] = result[f"{prefix}/psnr"] - result[f"{prefix}/psnr_input"]
        return result

    def reset(self) -> None:
        for metrics in self.means.values():
            for metric in metrics:
                metric.reset()


def eval_setting_names(trainer: L.Trainer | None, stage: str) -> list[str]:
    """The evaluation settings of the data module attached to ``trainer`` (empty when there is none)."""
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    dataset = getattr(datamodule, f"{stage}_set", None)
    if dataset is None and datamodule is not None and hasattr(datamodule, "setup"):
        datamodule.setup(stage if stage != "val" else "validate")
        dataset = getattr(datamodule, f"{stage}_set", None)
    return list(getattr(dataset, "setting_names", []))


def log_image(module: L.LightningModule, key: str, image: Any) -> Path | None:
    """Send a uint8 ``(H, W, 3)`` image to every attached image-capable logger and save it as a PNG.

    The PNG goes to ``<default_root_dir>/images/`` so that even a CSV-logged run keeps its figures.
    """
    trainer = module.trainer
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


def figure_from_sample(
    module: L.LightningModule, net_g: nn.Module, sample: Mapping[str, Any], codec: LevelCodec
):
    """Render the modulation figure of one captured evaluation sample with ``net_g``."""
    lq = sample["lq"].unsqueeze(0).to(module.device)
    gt = sample["gt"].unsqueeze(0)
    was_training = net_g.training
    net_g.eval()
    rows = modulation_rows(
        lambda x, z: net_g(x, z), lq, gt, codec, sample["blur"], sample["noise"], sample.get("jpeg", 0.0)
    )
    net_g.train(was_training)
    return render_rows(rows)


def capture_sample(batch: Mapping[str, Any], setting: str, image_index: int = 0) -> dict[str, Any] | None:
    """The first sample of ``batch`` with the wanted setting, detached on the CPU (None if absent)."""
    for i, name in enumerate(batch["setting"]):
        if name == setting:
            return {
                "lq": batch["lq"][i].detach().cpu(),
                "gt": batch["gt"][i].detach().cpu(),
                "blur": float(batch["blur_sigma"][i]),
                "noise": float(batch["noise_sigma"][i]),
                "jpeg": float(batch["jpeg_quality"][i]) if "jpeg_quality" in batch else 0.0,
            }
    return None


def generator_metadata(
    kind: str, net_g: nn.Module, codec: LevelCodec, trainer: L.Trainer | None = None, **extra: Any
) -> dict[str, Any]:
    """Plain data stored beside the weights: enough to rebuild the generator and label its sliders, and the W&B
    run it was logged to (so that a resumed run continues that run)."""
    for logger in trainer.loggers if trainer is not None else []:
        if isinstance(logger, WandbLogger) and logger.version:
            extra["wandb_run_id"] = str(logger.version)
    return describe_generator(kind, net_g, codec, **extra)


def attach_metadata(checkpoint: dict[str, Any], metadata: dict[str, Any]) -> None:
    checkpoint[CHECKPOINT_KEY] = metadata


def setup_eval_metrics(module: L.LightningModule, stage: str) -> None:
    """Create per-setting metrics for the validation and test grids of the attached data module."""
    scorer = getattr(module, "val_scorer", None)
    perceptual = list(scorer.labels.values()) if scorer is not None else []
    for split in ("val", "test"):
        names = eval_setting_names(module.trainer, split) if stage in ("fit", "validate", "test") else []
        if names and split not in module.metrics:
            module.metrics[split] = SettingMetrics(names, perceptual)


def eval_step(module: L.LightningModule, split: str, batch: dict[str, Any]) -> None:
    """Restore one evaluation batch, update its metrics, keep the sample shown in the figure."""
    out = module.net_g(batch["lq"], batch["z"])
    scorer = getattr(module, "val_scorer", None)
    if scorer is not None:
        scorer.to(out.device)  # kept outside the module's state (never in a checkpoint): moved here, once
    module.metrics[split].update(out, batch["lq"], batch["gt"], list(batch["setting"]), scorer)
    if module._figure_sample is None and module.log_figures:
        module._figure_sample = capture_sample(batch, module.figure_setting)


def eval_epoch_end(module: L.LightningModule, split: str) -> None:
    """Log the per-setting metrics and their means, then the modulation figure."""
    if split not in module.metrics:
        return
    values = module.metrics[split].compute(split)
    module.metrics[split].reset()
    module.log_dict(values, sync_dist=True)
    if module._figure_sample is not None and not module.trainer.sanity_checking:
        figure = figure_from_sample(module, module.net_g, module._figure_sample, module.codec)
        log_image(module, f"{split}/modulation", figure)
    module._figure_sample = None


def assert_finite(name: str, value: torch.Tensor, iteration: int, every: int = 1) -> None:
    """Stop training with a clear message when a loss is NaN or infinite (the last checkpoint is kept).

    Checked every ``every`` iterations: on a GPU each check waits for the device, so the hot path can space
    them out; ``assert_finite_parameters`` guards every checkpoint in between.
    """
    if every > 1 and iteration % every:
        return
    if not torch.isfinite(value).all():
        raise FloatingPointError(
            f"{name} became {value.item()} at iteration {iteration}; training stopped. The last good checkpoint "
            "is kept (checkpoints/last.ckpt). Lower the learning rate or enable gradient clipping and resume "
            "with ckpt_path=..."
        )


def assert_finite_parameters(module: nn.Module, iteration: int) -> None:
    """Refuse to write a checkpoint of non-finite weights, so that last.ckpt always stays usable."""
    for name, param in module.named_parameters():
        if not torch.isfinite(param).all():
            raise FloatingPointError(
                f"parameter {name} is not finite at iteration {iteration}; training stopped without writing the "
                "checkpoint, the last good one is kept. Lower the learning rate or enable gradient clipping."
            )


def mean_level(z: torch.Tensor) -> torch.Tensor:
    """``mean(z)`` per sample ``(B,)`` in [0, 1]: how degraded each input is (the released code's level weights)."""
    return z.detach().float().mean(dim=1)


def current_iteration(module: L.LightningModule) -> int:
    """The index of the batch being trained, across epochs and resumes (0 outside training)."""
    trainer = module._trainer
    return max(trainer.fit_loop.epoch_loop.total_batch_idx, 0) if trainer is not None else 0


def align_log_step(trainer: L.Trainer | None) -> None:
    """Keep the logged step equal to the number of batches trained after a resume.

    Resuming from a checkpoint written at the end of an epoch (last.ckpt's usual moment), Lightning finishes the
    already finished epoch once more and counts one batch too many for the loggers, so every later point of the
    W&B/CSV curves would sit one step to the right of an uninterrupted run's. Called at the start of each training
    epoch; a no-op unless the counter is ahead of the batches actually trained (tests/test_robustness.py pins it).
    """
    if trainer is None or trainer.accumulate_grad_batches != 1:
        return
    loop = trainer.fit_loop.epoch_loop
    trained = loop.batch_progress.total.completed
    if loop._batches_that_stepped > trained:  # (a checkpoint rewritten during that replay carries one more)
        loop._batches_that_stepped = trained
