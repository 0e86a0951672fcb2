"""Reading generators back from training checkpoints (pure torch: no Lightning or Hydra needed).

Every checkpoint written by the training stages carries, next to the weights, a plain-data entry under
``"cugan"``: the generator class and constructor arguments, and the level <-> z codec. That entry is enough to
rebuild the network and label its sliders in physical units, so a checkpoint alone restores images.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .degradations import LevelCodec

CHECKPOINT_KEY = "cugan"
FORMAT_VERSION = 1
GENERATOR_PREFIX = "net_g."


class CheckpointError(ValueError):
    """A file is not a usable cugan-lightning checkpoint; the message says why and what to do."""


def _is_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive (or, in the legacy format, a pickle starting with the protocol byte)."""
    with open(path, "rb") as handle:
        head = handle.read(1)
    return head == b"\x80" or zipfile.is_zipfile(path)


def _torch_load(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    try:
        # Only tensors and plain containers are accepted: a checkpoint is data, never code to run.
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"'{path}' is not a cugan-lightning checkpoint: it holds Python objects beyond tensors and plain "
            "data, which are never loaded (a checkpoint is data, not code)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"cannot read checkpoint '{path}' (truncated or not a checkpoint): {first_line}"
        ) from None


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint and check that it carries the generator description."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if not _is_torch_file(path):
        raise CheckpointError(
            f"'{path}' is not a checkpoint file (a .ckpt written by torch.save or an exported .safetensors)"
        )
    checkpoint = _torch_load(path, map_location)
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"'{path}' is not a cugan-lightning training checkpoint (no '{CHECKPOINT_KEY}' entry); "
            "use a .ckpt written by `python -m cugan_lightning` (checkpoints/last.ckpt or best.ckpt)"
        )
    return checkpoint


def build_generator(metadata: dict[str, Any]) -> nn.Module:
    """Instantiate the generator described by checkpoint metadata (weights not loaded)."""
    from . import networks

    spec = metadata.get("generator", {})
    cls = getattr(networks, str(spec.get("class")), None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise CheckpointError(f"unknown generator class '{spec.get('class')}' in checkpoint metadata")
    return cls(**spec.get("config", {}))


def generator_state_dict(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The generator's own parameters and buffers (the ``net_g.`` entries, prefix removed)."""
    state = {
        k[len(GENERATOR_PREFIX) :]: v
        for k, v in checkpoint["state_dict"].items()
        if k.startswith(GENERATOR_PREFIX)
    }
    if not state:
        raise CheckpointError("the checkpoint holds no generator weights (no 'net_g.' entries)")
    return state


def load_generator(
    path: str | Path, map_location: str | torch.device = "cpu", *, eval_mode: bool = True
) -> tuple[nn.Module, LevelCodec]:
    """Rebuild the generator of a checkpoint (``.ckpt`` or exported ``.safetensors``) with its codec.

    Returns ``(net_g, codec)``; ``net_g`` is in eval mode unless ``eval_mode=False``.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from .export import load_safetensors_generator

        net, codec = load_safetensors_generator(path, map_location)
    else:
        checkpoint = read_checkpoint(path, map_location)
        metadata = checkpoint[CHECKPOINT_KEY]
        net = build_generator(metadata)
        try:
            net.load_state_dict(generator_state_dict(checkpoint), strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"generator weights in '{path}' do not fit its own config: {err}") from None
        codec = LevelCodec.from_dict(metadata["codec"])
        net.to(map_location)
    return (net.eval() if eval_mode else net), codec


def checkpoint_kind(path: str | Path) -> str:
    """``"cunet"`` (stage 1) or ``"cugan"`` (stage 2) or whatever kind the checkpoint declares."""
    return str(read_checkpoint(path)[CHECKPOINT_KEY].get("kind", "unknown"))


def describe_generator(kind: str, net_g: nn.Module, codec: LevelCodec, **extra: Any) -> dict[str, Any]:
    """The plain-data checkpoint entry for ``net_g``: class, constructor arguments, codec, kind."""
    config = getattr(net_g, "config", None)
    if config is None:
        raise TypeError(f"{type(net_g).__name__} has no `config`; cannot describe it in a checkpoint")
    return {
        "format": FORMAT_VERSION,
        "kind": kind,
        "generator": {"class": type(net_g).__name__, "config": dict(config)},
        "codec": codec.to_dict(),
        **extra,
    }


def save_generator_checkpoint(
    path: str | Path, net_g: nn.Module, codec: LevelCodec, kind: str = "cunet", **extra: Any
) -> Path:
    """Write a generator-only checkpoint (same layout as a training checkpoint, without optimizer state).

    Used for blended (DNI) models and for tests. Written atomically: a temporary file, then a rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": {GENERATOR_PREFIX + k: v.detach().cpu() for k, v in net_g.state_dict().items()},
        CHECKPOINT_KEY: describe_generator(kind, net_g, codec, **extra),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(checkpoint, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
