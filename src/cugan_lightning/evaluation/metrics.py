"""Image-quality scores per image, with the project's conventions (docs/evaluation.md), all from torchmetrics.

Conventions: outputs are clamped and rounded to 8 bits before scoring (``round(255 x)``), the whole image is
scored (no border crop), RGB unless the name says Y; gray images (one channel, a gray model's) are scored on their
one channel, and repeated to RGB where a metric needs colour (``psnr_y``, ``lpips``, ``dists``), so a gray image
scores the same as its RGB copy. ``psnr`` / ``ssim``: torchmetrics on 0..255 (SSIM with its
default 11x11 Gaussian window, sigma 1.5, averaged over the three channels). ``psnr_y``: PSNR of the BT.601 luma
``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` (MATLAB's ``rgb2ycbcr``, R, G, B in 0..255). ``lpips``:
torchmetrics' LPIPS, AlexNet, v0.1 linear heads, inputs mapped to [-1, 1]. ``dists``: torchmetrics' DISTS
network (VGG16). LPIPS and DISTS need torchvision's ImageNet files; a file whose SHA-256 does not match its
published digits is refused, or, where explicitly allowed (tests), scored under the label ``lpips_unverified``
/ ``dists_unverified`` so that such a number is never shown as LPIPS or DISTS.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..networks.pretrained import (
    PretrainedWeightsMissingError,
    ensure_imagenet_file,
    imagenet_file,
    matches_published_hash,
)

__all__ = [
    "BACKBONES",
    "HIGHER_IS_BETTER",
    "METRICS",
    "ImageScorer",
    "UnverifiedBackboneError",
    "build_validation_scorer",
    "check_metric_names",
    "rgb_to_y",
    "to_255",
]

METRICS = ("psnr", "psnr_y", "ssim", "lpips", "dists")
HIGHER_IS_BETTER = {"psnr": True, "psnr_y": True, "ssim": True, "lpips": False, "dists": False}
BACKBONES = {"lpips": "alexnet", "dists": "vgg16"}
"""Metric -> the torchvision ImageNet network whose weight file it needs."""
UNVERIFIED_SUFFIX = "_unverified"
log = logging.getLogger(__name__)
METRIC_DOWNLOAD_TIMEOUT_S = 4.0  # a missing file must stop the app within seconds, not minutes


class UnverifiedBackboneError(ValueError):
    """A backbone weight file is present but is not the published one (partial download or other weights)."""


def to_255(x: Tensor) -> Tensor:
    """[0, 1] images to the rounded 8-bit scale every reported number uses (float tensor in 0..255)."""
    return x.detach().float().clamp(0, 1).mul(255).round()


def rgb_to_y(x255: Tensor) -> Tensor:
    """ITU-R BT.601 luma (the 16..235 'Y' of MATLAB's rgb2ycbcr) of ``(B, 3, H, W)`` in 0..255."""
    weights = x255.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1) / 255.0
    return (x255 * weights).sum(dim=1, keepdim=True) + 16.0


def check_metric_names(names: Sequence[str]) -> list[str]:
    """The metric names, checked: unknown or repeated names raise ValueError naming the allowed ones."""
    names = [str(n) for n in names]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"metrics must be a non-empty list without repeats, got {names}")
    return names


def backbone_file(metric: str, *, allow_unverified: bool = False) -> tuple[bool, str]:
    """Make sure the weight file that ``metric`` needs is in the torch hub cache (fails fast, naming the file
    and the folder, when it is missing). Returns ``(verified, path)``; an unverified file raises
    :class:`UnverifiedBackboneError` unless ``allow_unverified``."""
    model = BACKBONES[metric]
    purpose = f"the {metric.upper()} metric ({model})"
    path = ensure_imagenet_file(model, purpose, timeout=METRIC_DOWNLOAD_TIMEOUT_S)
    verified = matches_published_hash(path)
    if not verified and not allow_unverified:
        raise UnverifiedBackboneError(
            f"{path} does not match the published checksum in its name (a partial download or other weights); "
            f"delete it and fetch it again from {imagenet_file(model)[1]}"
        )
    return verified, str(path)


class ImageScorer(nn.Module):
    """Per-image scores of restored images against their ground truth.

    ``scorer(out, gt)`` with ``out``, ``gt`` ``(B, 3, H, W)`` (or gray ``(B, 1, H, W)``) in [0, 1] returns ``{label: (B,)}`` for each
    requested metric. ``labels`` maps metric names to the labels the scores are reported under (``lpips``, or
    ``lpips_unverified`` for a backbone file that is not the published one, allowed only with
    ``allow_unverified``). The backbones of LPIPS and DISTS are built once and kept.
    """

    def __init__(self, metrics: Sequence[str] = METRICS, *, allow_unverified: bool = False) -> None:
        super().__init__()
        self.metrics = check_metric_names(metrics)
        self.labels: dict[str, str] = {}
        self.backbone_files: dict[str, str] = {}
        for name in self.metrics:
            self.labels[name] = name
            if name in BACKBONES:
                verified, path = backbone_file(name, allow_unverified=allow_unverified)
                self.backbone_files[name] = path
                if not verified:
                    self.labels[name] = name + UNVERIFIED_SUFFIX
        self.lpips = self.dists = None
        if "lpips" in self.metrics:
            from torchmetrics.image import LearnedPerceptualImagePatchSimilarity

            self.lpips = LearnedPerceptualImagePatchSimilarity(
                net_type="alex", normalize=True, reduction="none"
            )
        if "dists" in self.metrics:
            # torchmetrics' DISTS metric builds this network (and reads VGG16 from disk) in every update;
            # holding one network and calling it is the same computation without that cost
            from torchmetrics.functional.image.dists import DISTSNetwork

            self.dists = DISTSNetwork()
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def forward(self, out: Tensor, gt: Tensor) -> dict[str, Tensor]:
        # imported here: torchmetrics takes seconds to import, and a missing backbone file must stop the app first
        from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

        if out.shape != gt.shape or out.dim() != 4 or out.shape[1] not in (1, 3):
            raise ValueError(
                f"expected two (B, 3, H, W) or (B, 1, H, W) batches of one shape, got {tuple(out.shape)}, "
                f"{tuple(gt.shape)}"
            )
        out255, gt255 = to_255(out), to_255(gt)
        # PSNR and SSIM of a gray image equal those of its RGB copy; the others read RGB
        out_rgb, gt_rgb = out255.expand(-1, 3, -1, -1), gt255.expand(-1, 3, -1, -1)
        batch = out.shape[0]
        scores: dict[str, Tensor] = {}
        for name in self.metrics:
            if name == "psnr":
                value = peak_signal_noise_ratio(
                    out255, gt255, data_range=255.0, reduction="none", dim=(1, 2, 3)
                )
            elif name == "psnr_y":
                value = peak_signal_noise_ratio(
                    rgb_to_y(out_rgb), rgb_to_y(gt_rgb), data_range=255.0, reduction="none", dim=(1, 2, 3)
                )
            elif name == "ssim":
                value = structural_similarity_index_measure(out255, gt255, data_range=255.0, reduction="none")
            elif name == "lpips":
                assert self.lpips is not None
                self.lpips.reset()
                self.lpips.update(out_rgb / 255.0, gt_rgb / 255.0)
                value = self.lpips.compute()
            else:
                assert self.dists is not None
                value = self.dists(out_rgb / 255.0, gt_rgb / 255.0)
            scores[self.labels[name]] = value.reshape(batch).float()
        return scores


def build_validation_scorer(metrics: Sequence[str] = (), if_missing: str = "error") -> ImageScorer | None:
    """The LPIPS / DISTS scorer of the GAN stage's validation (the paper judges GAN models by them), or None.

    ``if_missing="error"`` stops at once, naming the backbone file and its folder, when a file is missing;
    ``"disable"`` switches these scores off and says so in the log (demos on machines without the files).
    A backbone file that is not the published one is used, with a warning, under the ``_unverified`` labels.
    """
    metrics = list(metrics or ())
    if not metrics:
        return None
    if if_missing not in ("error", "disable"):
        raise ValueError(f"val_metrics_if_missing must be 'error' or 'disable', got {if_missing!r}")
    wrong = [m for m in metrics if m not in BACKBONES]
    if wrong:
        raise ValueError(
            f"val_metrics takes {sorted(BACKBONES)} (PSNR and SSIM are always logged), got {wrong}"
        )
    try:
        scorer = ImageScorer(metrics, allow_unverified=True)
    except PretrainedWeightsMissingError as err:
        if if_missing == "error":
            raise
        log.warning("LPIPS / DISTS VALIDATION SWITCHED OFF (val_metrics_if_missing=disable): %s", err)
        return None
    unverified = [label for label in scorer.labels.values() if label.endswith(UNVERIFIED_SUFFIX)]
    if unverified:
        log.warning("validation scores %s use backbone files that are not the published ones", unverified)
    return scorer
