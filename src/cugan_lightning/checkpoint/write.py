"""Writing generator files, always atomically: a generator-only ``.ckpt`` and an exported ``.safetensors``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import atomic_write, write_bytes_atomic
from ..degradations import LevelCodec
from .metadata import CHECKPOINT_KEY, describe_generator, metadata_strings
from .read import GENERATOR_PREFIX

__all__ = ["save_generator_checkpoint", "save_safetensors_generator"]


def save_generator_checkpoint(
    path: str | Path, net_g: nn.Module, codec: LevelCodec, kind: str = "cunet", **extra: Any
) -> Path:
    """Write a generator-only checkpoint: the layout of a training checkpoint without optimizer states.

    Used for DNI blends and tests; ``extra`` entries join the metadata (e.g. ``dni={"alpha": 0.3, ...}``).
    """
    checkpoint = {
        "state_dict": {GENERATOR_PREFIX + k: v.detach().cpu() for k, v in net_g.state_dict().items()},
        CHECKPOINT_KEY: describe_generator(kind, net_g, codec, **extra),
    }
    return atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def save_safetensors_generator(
    path: str | Path,
    net_g: nn.Module,
    codec: LevelCodec,
    kind: str = "cunet",
    *,
    half: bool = False,
    **extra: Any,
) -> Path:
    """Write ``net_g``'s state dict with its description (config, codec, kind, ``extra``) as safetensors.

    ``half`` stores the floating-point tensors as float16 (half the size; a reader loads them into the float32
    network, so restorations move by far less than one 8-bit step); the metadata says so (``stored_dtype``).
    """
    from safetensors.torch import save

    # clones: safetensors refuses tensors that share storage, and wants them contiguous on the CPU
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in net_g.state_dict().items()}
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        extra = {**extra, "stored_dtype": "float16"}
    metadata = metadata_strings(describe_generator(kind, net_g, codec, **extra))
    return write_bytes_atomic(path, save(tensors, metadata=metadata))
