"""The authors' released generator files: a plain state dict in their key layout, read as one of ours.

Their test code saves ``model.state_dict()`` of its 3-scale ``CUGAN`` generator (keys such as
``conv_stage1_left.weight``, ``CResBlocks_stage2_right.1.local_scale.weight``), sometimes under ``module.``
(DataParallel) and sometimes wrapped in a dict (``{"state_dict": ...}``, ``{"params": ...}``). Such a file holds
no metadata: the architecture is read off the weight shapes and the paper's codec (blur sigma 0..4, noise sigma
0..50, docs/degradations.md) is attached, so every tool accepts the file as it accepts ours (kind ``released``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from torch import Tensor

from ..degradations import LevelCodec
from ..networks import load_released_state_dict
from .metadata import FORMAT_VERSION, CheckpointError

__all__ = ["is_released_layout", "released_metadata", "released_state", "unwrap_released"]

WRAPPER_KEYS = ("state_dict", "params", "params_ema", "model", "net_g", "generator")
"""Keys under which a released state dict may be wrapped."""
_MARKERS = ("conv_stage1_left.weight", "conv_stage1_right.weight")


def is_released_layout(keys: Iterable[str]) -> bool:
    """True when the weight names are those of the released generator (with or without ``module.``)."""
    names = {str(k).removeprefix("module.") for k in keys}
    return all(marker in names for marker in _MARKERS)


def unwrap_released(obj: Any) -> Mapping[str, Any] | None:
    """The released state dict inside a loaded file (the file itself, or one wrapper entry), else None."""
    if not isinstance(obj, Mapping):
        return None
    if is_released_layout(obj):
        return obj
    for key in WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and is_released_layout(inner):
            return inner
    return None


def _renamed(shapes: Mapping[str, Any], where: str) -> dict[str, Any]:
    try:
        return load_released_state_dict(shapes)
    except KeyError as err:
        raise CheckpointError(
            f"'{where}' looks like the authors' released generator but {str(err).strip(chr(39))}"
        ) from None


def released_metadata(shapes: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Metadata for a released state dict, from its weight names and shapes (tensors or ``torch.Size``).

    Raises :class:`CheckpointError` when the condition width is not the paper's two factors (no codec is
    known for another width) or a weight name is unexpected.
    """
    renamed = _renamed(shapes, where)

    def shape(key: str) -> tuple[int, ...]:
        value = renamed[key]
        return tuple(value.shape if isinstance(value, Tensor) else value)

    num_scales = 1 + sum(1 for k in renamed if k.startswith("downs.") and k.endswith(".weight"))
    channels = [shape("head.weight")[0]] + [shape(f"downs.{s}.weight")[0] for s in range(num_scales - 1)]
    blocks = [
        sum(1 for k in renamed if k.startswith(f"encoders.{s}.") and k.endswith(".conv1.weight"))
        for s in range(num_scales)
    ]
    conditional = "cond.out.weight" in renamed
    cond_dim = shape("cond.out.weight")[1] if conditional else 2
    codec = LevelCodec.default()
    if cond_dim != codec.cond_dim:
        raise CheckpointError(
            f"'{where}' is a released generator with a {cond_dim}-value condition; only the paper's "
            f"{codec.cond_dim} factors {list(codec.names)} have a known codec"
        )
    # CUnet's constructor arguments (its `config`); build_generator checks them when the network is built
    config = {
        "in_channels": shape("head.weight")[1],
        "cond_dim": cond_dim,
        "channels": channels,
        "blocks": blocks,
        "conditional": conditional,
    }
    return {
        "format": FORMAT_VERSION,
        "kind": "released",
        "generator": {"class": "CUnet", "config": config},
        "codec": codec.to_dict(),
        "released": {"source": str(where), "layout": "authors' test-code state dict"},
    }


def released_state(state: Mapping[str, Tensor], where: str) -> dict[str, Tensor]:
    """The released weights under this project's names (``module.`` dropped)."""
    return _renamed(state, where)
