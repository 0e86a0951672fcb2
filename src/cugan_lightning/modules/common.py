"""Helpers shared by the two training stages: evaluation metrics, image logging, checkpoint metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from ..checkpoint import CHECKPOINT_KEY, describe_generator
from ..degradations import LevelCodec
from ..evaluation.metrics import ImageScorer, rgb_to_y, to_255
from ..figures import modulation_rows, render_rows, save_png

MetricDict = dict[str, torch.Tensor]


class SettingMetrics(nn.Module):
    """PSNR (RGB and Y) and SSIM per evaluation setting, averaged per image, on rounded 8-bit values; with
    ``perceptual`` labels (``lpips``, ``dists``) also the per-image scores of a shared :class:`ImageScorer`."""

    def __init__(self, settings: list[str], perceptual: Sequence[str] = ()) -> None:
        super().__init__()
        self.settings = list(settings)
        self.perceptual = nn.ModuleDict(
            {label: nn.ModuleDict({s: MeanMetric() for s in self.settings}) for label in perceptual}
        )

        def psnr() -> PeakSignalNoiseRatio:
            return PeakSignalNoiseRatio(data_range=255.0, reduction="elementwise_mean", dim=(1, 2, 3))

        self.psnr = nn.ModuleDict({s: psnr() for s in self.settings})
        self.psnr_y = nn.ModuleDict({s: psnr() for s in self.settings})
        self.psnr_input = nn.ModuleDict({s: psnr() for s in self.settings})
        self.ssim = nn.ModuleDict(
            {s: StructuralSimilarityIndexMeasure(data_range=255.0) for s in self.settings}
        )

    def update(
        self,
        out: torch.Tensor,
        lq: torch.Tensor,
        gt: torch.Tensor,
        settings: list[str],
        scorer: ImageScorer | None = None,
    ) -> None:
        out255, lq255, gt255 = to_255(out), to_255(lq), to_255(gt)
        scores = scorer(out, gt) if scorer is not None and len(self.perceptual) else {}
        for name in dict.fromkeys(settings):
            if name not in self.psnr:
                raise KeyError(f"evaluation setting '{name}' is not one of {self.settings}")
            idx = [i for i, s in enumerate(settings) if s == name]
            o, q, g = out255[idx], lq255[idx], gt255[idx]
            self.psnr[name].update(o, g)
            self.psnr_y[name].update(rgb_to_y(o), rgb_to_y(g))
            self.psnr_input[name].update(q, g)
            self.ssim[name].update(o, g)
            for label, values in scores.items():
                self.perceptual[label][name].update(values[idx])

    def compute(self, prefix: str) -> MetricDict:
        """``{prefix}/psnr/<setting>``, ``{prefix}/ssim/<setting>``, ... and their means over settings."""
        result: MetricDict = {}
        groups = {"psnr": self.psnr, "psnr_y": self.psnr_y, "psnr_input": self.psnr_input, "ssim": self.ssim}
        groups.update(self.perceptual)
        for metric, per_setting in groups.items():
            values = []
            for name in self.settings:
                if per_setting[name].update_count == 0:
                    continue
                value = per_setting[name].compute().float()
                result[f"{prefix}/{metric}/{name}"] = value
                values.append(value)
            if values:
                result[f"{prefix}/{metric}"] = torch.stack(values).mean()
        if f"{prefix}/psnr" in result and f"{prefix}/psnr_input" in result:
            result[f"{prefix}/psnr_gain"] = result[f"{prefix}/psnr"] - result[f"{prefix}/psnr_input"]
        return result

    def reset(self) -> None:
        for group in (self.psnr, self.psnr_y, self.psnr_input, self.ssim, *self.perceptual.values()):
            for metric in group.values():
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
    rows = modulation_rows(lambda x, z: net_g(x, z), lq, gt, codec, sample["blur"], sample["noise"])
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
            }
    return None


def generator_metadata(kind: str, net_g: nn.Module, codec: LevelCodec, **extra: Any) -> dict[str, Any]:
    """Plain data stored beside the weights: enough to rebuild the generator and label its sliders."""
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
