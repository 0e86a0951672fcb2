"""Perceptual loss: distance between VGG19 features of the output and of the ground truth."""

from __future__ import annotations

import logging
import os
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..networks import PretrainedWeightsMissingError, VGGFeatureExtractor

log = logging.getLogger(__name__)


class PerceptualLoss(nn.Module):
    """L1 (or MSE) between VGG19 features of ``output`` and ``target``, both ``(B, 3, H, W)`` in [0, 1]; a gray
    ``(B, 1, H, W)`` pair is repeated to three channels (the gray image as an RGB photograph) for the VGG.

    The paper's term uses conv5_4 features before the ReLU with ImageNet weights. ``weights=None`` is a
    random-weight VGG, for tests only: a loss on random features is not a perceptual loss. The target's
    features are computed without gradients. The extractor's weights are not saved in checkpoints.
    """

    def __init__(
        self,
        layer: str = "conv5_4",
        weights: str | os.PathLike | None = "imagenet",
        criterion: Literal["l1", "mse"] = "l1",
    ) -> None:
        super().__init__()
        if criterion not in ("l1", "mse"):
            raise ValueError(f"perceptual criterion must be 'l1' or 'mse', got '{criterion}'")
        if weights is None:
            log.warning("perceptual loss on a RANDOM-weight VGG19 (weights=None): for tests only")
        self.extractor = VGGFeatureExtractor(layer=layer, weights=weights)
        self.criterion = criterion
        self.random_weights = weights is None
        # Frozen, reproducible from its source: keep it out of checkpoints and state dicts.
        self._register_state_dict_hook(_drop_extractor_state)
        self.register_load_state_dict_pre_hook(_ignore_extractor_state)
        self.register_load_state_dict_post_hook(_extractor_not_missing)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.dim() == 4 and output.shape[1] == 1:  # gray: the ImageNet VGG reads RGB
            output, target = output.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        with torch.no_grad():
            target_features = self.extractor(target)
        output_features = self.extractor(output)
        if self.criterion == "l1":
            return F.l1_loss(output_features, target_features)
        return F.mse_loss(output_features, target_features)


def _drop_extractor_state(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k.startswith(prefix + "extractor.")]:
        del state_dict[key]
    return state_dict


def _ignore_extractor_state(module, state_dict, prefix, *args):
    for key in [k for k in state_dict if k.startswith(prefix + "extractor.")]:
        del state_dict[key]


def _extractor_not_missing(module, incompatible_keys):
    # The extractor's weights are never saved, so they are never "missing" from a checkpoint either.
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if ".extractor." not in f".{k}"]


def build_perceptual_loss(
    layer: str = "conv5_4",
    weights: str | os.PathLike | None = "imagenet",
    criterion: Literal["l1", "mse"] = "l1",
    if_missing: Literal["error", "disable"] = "error",
) -> PerceptualLoss | None:
    """The perceptual loss, or ``None`` when its ImageNet weights are absent and ``if_missing="disable"``.

    ``if_missing="error"`` (the paper recipe) fails fast with the message that names the file to provide.
    ``"disable"`` switches the perceptual term off and says so in the run log; it exists for CPU demos on
    machines without the weights and is never the default.
    """
    if if_missing not in ("error", "disable"):
        raise ValueError(f"perceptual if_missing must be 'error' or 'disable', got '{if_missing}'")
    try:
        return PerceptualLoss(layer=layer, weights=weights, criterion=criterion)
    except PretrainedWeightsMissingError as err:
        if if_missing == "error":
            raise
        log.warning(
            "PERCEPTUAL TERM SWITCHED OFF (model.perceptual.if_missing=disable): the ImageNet VGG19 weights "
            "are missing, so this run trains with the GAN and pixel terms only. %s",
            err,
        )
        return None
