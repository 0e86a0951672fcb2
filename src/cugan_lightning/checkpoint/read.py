"""Reading generator files: training checkpoints (``.ckpt``), exported ``.safetensors`` and the authors' released
state dicts, always as data (``weights_only``: a file never runs code)."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..degradations import LevelCodec
from ..zoo import model_path
from .metadata import (
    CHECKPOINT_KEY,
    FORMAT_TAG,
    GENERATOR_KINDS,
    CheckpointError,
    IncompatibleCheckpointsError,
    build_generator,
    describe_generator,
    generator_differences,
    kind_of,
    parse_metadata_strings,
)
from .released import is_released_layout, released_metadata, released_state, unwrap_released

__all__ = [
    "GENERATOR_PREFIX",
    "GeneratorFile",
    "checkpoint_kind",
    "generator_state_dict",
    "load_generator",
    "load_safetensors_generator",
    "load_weights_into",
    "read_checkpoint",
    "read_generator_file",
    "read_safetensors_generator",
]

GENERATOR_PREFIX = "net_g."
"""Prefix of the generator's entries in a training checkpoint's ``state_dict``."""


@dataclass
class GeneratorFile:
    """A generator read from disk: its metadata and, unless read with ``tensors=False``, its state dict."""

    path: str
    role: str
    metadata: dict[str, Any]
    state: dict[str, Tensor] | None = None

    @property
    def kind(self) -> str:
        return kind_of(self.metadata)

    @property
    def codec(self) -> LevelCodec:
        return LevelCodec.from_dict(self.metadata["codec"])

    def describe(self) -> str:
        return f"{self.role} checkpoint '{self.path}'"

    def build(self, map_location: str | torch.device = "cpu") -> nn.Module:
        """The generator with these weights loaded, in eval mode."""
        if self.state is None:
            raise ValueError(f"{self.describe()} was read without its tensors (tensors=False)")
        net_g = build_generator(self.metadata)
        try:
            net_g.load_state_dict(self.state, strict=True)
        except RuntimeError as err:
            first = " ".join(str(err).split()).split(". ")[0]
            raise CheckpointError(
                f"generator weights in {self.describe()} do not fit its own config: {first}"
            ) from None
        return net_g.to(map_location).eval()


def _is_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive (or, in the legacy format, a pickle starting with the protocol byte)."""
    with open(path, "rb") as handle:
        head = handle.read(1)
    return head == b"\x80" or zipfile.is_zipfile(path)


def _torch_load(path: Path, map_location: str | torch.device, mmap: bool = False) -> Any:
    """``torch.load`` of tensors and plain containers only; ``mmap`` maps tensor data instead of reading it."""
    try:
        try:
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except RuntimeError as err:
            if not mmap or "mmap" not in str(err):
                raise
            return torch.load(path, map_location=map_location, weights_only=True)  # legacy format: no mmap
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


def _open_torch_file(path: Path, map_location: str | torch.device, mmap: bool = False) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if not _is_torch_file(path):
        with open(path, "rb") as handle:
            zip_start = handle.read(4) == b"PK\x03\x04"
        if zip_start:  # a zip archive whose end (its table of contents) is missing
            raise CheckpointError(f"'{path}' is a truncated or damaged checkpoint: its archive is incomplete")
        raise CheckpointError(
            f"'{path}' is not a checkpoint file (a .ckpt written by torch.save or an exported .safetensors)"
        )
    return _torch_load(path, map_location, mmap)


def read_checkpoint(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    key: str = CHECKPOINT_KEY,
    hint: str = "use a .ckpt written by `cugan-train` (checkpoints/last.ckpt or best.ckpt)",
) -> dict[str, Any]:
    """A whole training checkpoint of this project (weights, optimizer states, metadata), loaded as data.
    ``key``: the metadata entry it must hold (a generator's by default); ``hint`` ends the error without it."""
    path = Path(path)
    checkpoint = _open_torch_file(path, map_location)
    if not isinstance(checkpoint, dict) or key not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"'{path}' is not a cugan-lightning training checkpoint (no '{key}' entry); {hint}"
        )
    return checkpoint


def generator_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The generator's own parameters and buffers of a training checkpoint (``net_g.`` prefix removed)."""
    state = {
        k[len(GENERATOR_PREFIX) :]: v
        for k, v in checkpoint["state_dict"].items()
        if k.startswith(GENERATOR_PREFIX)
    }
    if not state:
        raise CheckpointError("the checkpoint holds no generator weights (no 'net_g.' entries)")
    return state


def _from_loaded(obj: Any, where: str, tensors: bool) -> tuple[dict[str, Any], dict[str, Tensor] | None]:
    """Metadata and generator weights of a loaded ``.ckpt`` object (ours or a released state dict)."""
    if isinstance(obj, Mapping) and CHECKPOINT_KEY in obj and "state_dict" in obj:
        metadata = obj[CHECKPOINT_KEY]
        if not isinstance(metadata, Mapping) or "generator" not in metadata or "codec" not in metadata:
            raise CheckpointError(f"'{where}' does not describe its generator and codec")
        try:
            state = generator_state_dict(obj) if tensors else None
        except CheckpointError as err:
            raise CheckpointError(f"'{where}': {err}") from None
        return dict(metadata), state
    released = unwrap_released(obj)
    if released is not None:
        return released_metadata(released, where), released_state(released, where) if tensors else None
    raise CheckpointError(
        f"'{where}' is not a cugan-lightning training checkpoint (no '{CHECKPOINT_KEY}' entry) nor the "
        "authors' released generator; use a .ckpt written by `cugan-train`"
    )


def _widened(tensor: Tensor) -> Tensor:
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def _read_safetensors(
    path: Path, map_location: str | torch.device, tensors: bool
) -> tuple[dict[str, Any], dict[str, Tensor] | None]:
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"safetensors file '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            strings = handle.metadata() or {}
            keys = list(handle.keys())
            released = strings.get("format") != FORMAT_TAG and is_released_layout(keys)
            if tensors:
                # float16 files (export --half) are widened here: every network and blend works in float32
                state = {key: _widened(handle.get_tensor(key)).to(map_location) for key in keys}
            elif released:  # names and shapes tell the architecture; the header has both
                state = {key: handle.get_slice(key).get_shape() for key in keys}
            else:
                state = None
    except Exception as err:  # safetensors raises its own error type for a bad header
        raise CheckpointError(
            f"cannot read safetensors file '{path}': {' '.join(str(err).split())}"
        ) from None
    if released:
        metadata = released_metadata(state, str(path))
        return metadata, released_state(state, str(path)) if tensors else None
    return parse_metadata_strings(strings, str(path)), state


def read_generator_file(
    source: str | Path | Mapping[str, Any],
    role: str = "generator",
    *,
    map_location: str | torch.device = "cpu",
    kinds: Sequence[str] | None = GENERATOR_KINDS,
    tensors: bool = True,
) -> GeneratorFile:
    """Read a generator file: a training ``.ckpt``, an exported ``.safetensors``, the authors' released state
    dict (either format), a model of the zoo (``zoo:NAME``, fetched and verified by :mod:`cugan_lightning.zoo`),
    or an already loaded checkpoint dict.

    ``role`` ("MSE", "GAN", ...) names the file in error messages; ``kinds`` lists the accepted kinds (None
    accepts any). ``tensors=False`` reads the metadata only: tensor data are memory-mapped (``.ckpt``) or not
    touched (``.safetensors``), so telling the kind of a large checkpoint costs little.
    """
    if not isinstance(source, Mapping):
        source = model_path(source)
    try:
        if isinstance(source, Mapping):
            path = "<checkpoint>"
            metadata, state = _from_loaded(source, path, tensors)
        elif Path(source).suffix.lower() == ".safetensors":
            path = str(source)
            metadata, state = _read_safetensors(Path(source), map_location, tensors)
        else:
            path = str(source)
            loaded = _open_torch_file(Path(source), "cpu" if not tensors else map_location, mmap=not tensors)
            metadata, state = _from_loaded(loaded, path, tensors)
    except CheckpointError as err:
        raise CheckpointError(f"{role} checkpoint: {str(err).removeprefix('checkpoint ')}") from None
    out = GeneratorFile(path=path, role=role, metadata=metadata, state=state)
    if kinds is not None and out.kind not in kinds:
        raise CheckpointError(
            f"{out.describe()} is of kind '{out.kind}'; expected a generator file of kind "
            f"{', '.join(repr(k) for k in kinds)}"
        )
    return out


def read_safetensors_generator(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The metadata and the state dict of an exported (or released) safetensors file."""
    metadata, state = _read_safetensors(Path(path), map_location, tensors=True)
    assert state is not None
    return metadata, state


def load_safetensors_generator(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, LevelCodec]:
    """``(net_g, codec)`` of a safetensors file; :func:`load_generator` reads every format."""
    metadata, state = read_safetensors_generator(path, map_location)
    file = GeneratorFile(path=str(path), role="model", metadata=metadata, state=state)
    return file.build(map_location), file.codec


def checkpoint_kind(path: str | Path) -> str:
    """The kind of a generator file (``cunet``, ``cugan``, ``unet``, ``ugan``, ``dni``, ``released``, ...),
    read from its metadata without loading its tensors."""
    return read_generator_file(path, kinds=None, tensors=False).kind


def load_generator(
    path: str | Path, map_location: str | torch.device = "cpu", *, eval_mode: bool = True
) -> tuple[nn.Module, LevelCodec]:
    """Rebuild the generator of a file (``.ckpt``, exported ``.safetensors`` or the released weights) with its
    codec. Returns ``(net_g, codec)``; ``net_g`` is in eval mode unless ``eval_mode=False``."""
    file = read_generator_file(path, "model", map_location=map_location, kinds=None)
    net_g = file.build(map_location)
    return (net_g if eval_mode else net_g.train()), file.codec


def load_weights_into(
    net_g: nn.Module, path: str | Path, codec: LevelCodec, *, what: str = "init.ckpt"
) -> GeneratorFile:
    """Load the generator weights of ``path`` into ``net_g`` (strictly), after checking that the file's
    architecture and codec are those of ``net_g`` and ``codec``; each difference is named.

    ``what`` names the setting that gave the file (for the error message).
    """
    file = read_generator_file(path, "stage-1", kinds=None)
    differences = generator_differences(
        file.metadata, describe_generator("cunet", net_g, codec), ("checkpoint", "config")
    )
    if differences:
        raise IncompatibleCheckpointsError(
            f"{what}={path} does not fit model.net_g ({'; '.join(differences)}); set model.net_g to the "
            "stage-1 run's generator (its .hydra/config.yaml) or pick a matching checkpoint"
        )
    try:
        net_g.load_state_dict(file.state, strict=True)
    except RuntimeError as err:
        first = " ".join(str(err).split()).split(". ")[0]
        raise CheckpointError(f"{what}={path}: generator weights do not fit: {first}") from None
    return file
