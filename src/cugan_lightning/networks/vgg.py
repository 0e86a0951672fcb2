"""Frozen VGG19 feature extractor for the perceptual loss (paper section 4.1, docs/model.md: conv5_4 features before the ReLU).

The layers are laid out exactly like torchvision's ``vgg19().features`` (same indices and state-dict keys), so
torchvision's ImageNet weights, or any state dict of them, load directly. Weights are injectable: ``"imagenet"``
(torch hub cache, downloaded once if possible), a local file, or ``None`` (random, for tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from .pretrained import IMAGENET_WEIGHTS, PretrainedWeightsMissingError, ensure_imagenet_file, imagenet_file

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19_LAYERS",
    "PretrainedWeightsMissingError",
    "VGGFeatureExtractor",
    "imagenet_weights_path",
    "layer_index",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG19 ("E") configuration: widths of the convs, "M" for max pooling
_VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip


def _layer_names() -> dict[str, int]:
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 1
    for v in _VGG19_CFG:
        if v == "M":
            names[f"pool{block}"] = index
            index, block, conv = index + 1, block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            index, conv = index + 2, conv + 1
    return names


VGG19_LAYERS: dict[str, int] = _layer_names()
"""Layer name (``conv1_1`` .. ``conv5_4``, ``relu1_1`` .. ``relu5_4``, ``pool1`` .. ``pool5``) -> index in
torchvision's ``vgg19().features``; e.g. ``conv5_4`` -> 34."""


def layer_index(name: str) -> int:
    """Index of layer ``name`` (e.g. ``"conv5_4"`` -> 34) in torchvision's ``vgg19().features``."""
    try:
        return VGG19_LAYERS[name]
    except KeyError:
        convs = [n for n in VGG19_LAYERS if n.startswith("conv")]
        raise ValueError(
            f"unknown VGG19 layer {name!r}; use one of {', '.join(convs)} (or relu<b>_<i> / pool<b>)"
        ) from None


def imagenet_weights_path() -> tuple[Path, str]:
    """``(path in the torch hub cache, download URL)`` of torchvision's ``VGG19_Weights.IMAGENET1K_V1``."""
    return imagenet_file("vgg19")


def _load_imagenet_state_dict() -> Mapping[str, Tensor]:
    hint = (
        ", or pass weights=<path to a local state dict> (a full torchvision vgg19 state dict or its `features` "
        "part) to VGGFeatureExtractor"
    )
    path = ensure_imagenet_file("vgg19", hint=hint)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        url = imagenet_file("vgg19")[1]
        raise PretrainedWeightsMissingError(
            path.name,
            path.parent,
            url,
            f"{path} exists but cannot be read: {err}; delete it and fetch it again",
            IMAGENET_WEIGHTS["vgg19"][1],
            hint,
        ) from err


def _features_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys of ``vgg19().features`` (``"0.weight"``, ...) from a full or features-only state dict."""
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if any(k.startswith("features.") for k in sd):
        sd = {k.removeprefix("features."): v for k, v in sd.items() if k.startswith("features.")}
    return sd


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG19 ``features`` truncated right after ``layer``: ``(B, 3, H, W)`` in [0, 1] -> ``(B, C, h, w)``.

    For ``conv*`` layers the output is taken before the ReLU (``conv5_4``: ``features[:35]``, 512 channels at
    1/16 resolution). The ImageNet mean / std normalisation is done inside.

    Args:
        layer: ``conv1_1`` .. ``conv5_4`` (also ``relu<b>_<i>`` and ``pool<b>``, see :data:`VGG19_LAYERS`).
        weights: ``"imagenet"`` loads torchvision's ``VGG19_Weights.IMAGENET1K_V1`` from the torch hub cache,
            downloading it once when possible (15 s socket timeout; ``CUGAN_OFFLINE=1`` skips the attempt) and
            raising :class:`PretrainedWeightsMissingError` otherwise; a path (``str`` / ``Path``) or a mapping
            loads a local state dict (full vgg19 or ``features`` only); ``None`` keeps a random init and is meant
            for tests only.

    Parameters never require grad and the module stays in eval mode whatever ``.train()`` a parent calls.
    """

    def __init__(
        self, layer: str = "conv5_4", weights: str | os.PathLike | Mapping[str, Tensor] | None = "imagenet"
    ) -> None:
        super().__init__()
        self.layer = layer
        last = layer_index(layer)
        modules: list[nn.Module] = []
        in_channels = 3
        # on the meta device: the default init would be thrown away (loaded weights or our own init below)
        with torch.device("meta"):
            for v in _VGG19_CFG:
                if v == "M":
                    modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
                else:
                    modules += [nn.Conv2d(in_channels, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                    in_channels = int(v)
        self.features = nn.Sequential(*modules[: last + 1]).to_empty(device="cpu")
        self.out_channels = next(m.out_channels for m in reversed(self.features) if isinstance(m, nn.Conv2d))

        # constants, not state: keep them out of checkpoints
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        if weights is None:
            self._random_init()
        else:
            self.load_features(self._resolve_weights(weights))
        self.requires_grad_(False)
        self.train(False)

    @staticmethod
    def _resolve_weights(weights: str | os.PathLike | Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        if isinstance(weights, Mapping):
            return weights
        if isinstance(weights, str) and weights == "imagenet":
            return _load_imagenet_state_dict()
        if isinstance(weights, (str, os.PathLike)):
            path = Path(weights).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"VGG19 weights file {path} does not exist; pass an existing state-dict file, "
                    f"'imagenet' or None"
                )
            return torch.load(path, map_location="cpu", weights_only=True)
        raise TypeError(
            f"weights must be 'imagenet', a path, a state dict or None, got {type(weights).__name__}"
        )

    def _random_init(self) -> None:
        # torchvision's VGG init
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def load_features(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load the truncated layers from a full vgg19 or a ``features``-only state dict; deeper layers are ignored."""
        sd = _features_state_dict(state_dict)
        own = self.features.state_dict()
        missing = [k for k in own if k not in sd]
        if missing:
            raise ValueError(
                f"the VGG19 state dict does not fit features up to {self.layer}: missing keys {missing[:6]}"
                f"{' ...' if len(missing) > 6 else ''} (expected torchvision vgg19 keys like 'features.0.weight')"
            )
        bad = [
            f"{k}: {tuple(sd[k].shape)} != {tuple(v.shape)}" for k, v in own.items() if sd[k].shape != v.shape
        ]
        if bad:
            raise ValueError(f"the VGG19 state dict has wrong shapes: {'; '.join(bad[:4])}")
        self.features.load_state_dict({k: sd[k] for k in own})

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        # frozen: a parent's .train() must not switch it (or any future dropout / norm) to training
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        """Features ``(B, out_channels, h, w)`` of images ``(B, 3, H, W)`` in [0, 1]."""
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a (B, 3, H, W) tensor in [0, 1], got {shape}")
        return self.features((x - self.mean) / self.std)
