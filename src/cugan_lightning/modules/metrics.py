"""Validation and test scores of the training stages, per evaluation setting, with the evaluation app's code."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn
from torchmetrics import MeanMetric

from ..evaluation.metrics import ImageScorer

__all__ = ["MetricDict", "SettingMetrics"]

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
