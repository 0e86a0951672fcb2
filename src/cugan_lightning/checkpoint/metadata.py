"""What a generator file says about itself: the ``"cugan"`` metadata entry, kinds, and comparing two of them.

Every generator file this project writes carries, beside the weights, plain data (never code)::

    {"format": 1, "kind": "cunet", "generator": {"class": "CUnet", "config": {...}}, "codec": {...}, ...}

``generator`` rebuilds the network, ``codec`` labels its condition in physical units (blur sigma, noise sigma).
In ``.ckpt`` files it sits under the key ``"cugan"``; safetensors and ONNX files hold it as strings
(:func:`metadata_strings`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ..degradations import LevelCodec

__all__ = [
    "CHECKPOINT_KEY",
    "FORMAT_TAG",
    "FORMAT_VERSION",
    "GAN_KINDS",
    "GENERATOR_KINDS",
    "KINDS",
    "MSE_KINDS",
    "CheckpointError",
    "IncompatibleCheckpointsError",
    "baseline_level",
    "build_generator",
    "describe_generator",
    "generator_differences",
    "kind_of",
    "metadata_strings",
    "parse_metadata_strings",
]

CHECKPOINT_KEY = "cugan"
"""Key of the metadata entry in a ``.ckpt`` file."""
FORMAT_VERSION = 1
FORMAT_TAG = f"cugan-lightning/{FORMAT_VERSION}"
"""Value of the ``format`` entry in exported safetensors and ONNX files."""

KINDS = {
    "cunet": "stage 1 (CUnet, MSE)",
    "cugan": "stage 2 (CUGAN)",
    "unet": "per-level Unet baseline (stage 1, no condition)",
    "ugan": "per-level UGAN baseline (stage 2, no condition)",
    "dni": "DNI blend of an MSE and a GAN model",
    "released": "the authors' released generator",
}
"""Every kind of generator file, with what it is."""
GENERATOR_KINDS = tuple(KINDS)
MSE_KINDS = ("cunet", "unet")
GAN_KINDS = ("cugan", "ugan")
_BASELINE_OF = {"cunet": "unet", "cugan": "ugan"}


class CheckpointError(ValueError):
    """A file is not a usable generator file; the message names the file and says what to do."""


class IncompatibleCheckpointsError(CheckpointError):
    """Two generator files cannot be used together (blended, or one started from the other); the message names
    each difference."""


def kind_of(metadata: Mapping[str, Any]) -> str:
    """The file's kind; a stage whose generator has no condition network is that stage's baseline.

    (Files written before baselines had kinds of their own say ``cunet`` / ``cugan`` with an unconditional
    generator: they read as ``unet`` / ``ugan`` too.)
    """
    kind = str(metadata.get("kind", "unknown"))
    config = metadata.get("generator", {}).get("config", {})
    if kind in _BASELINE_OF and config.get("conditional", True) is False:
        return _BASELINE_OF[kind]
    return kind


def baseline_level(metadata: Mapping[str, Any]) -> dict[str, float] | None:
    """The single degradation level a baseline was trained on (``{"blur": 2.0, "noise": 30.0}``), from its
    ``level`` entry or, for files written before it existed, its training config's fixed sampler; None for a
    model trained on the whole range."""
    level = metadata.get("level")
    if level is None:
        config = metadata.get("train_config") or {}
        fixed = ((config.get("degradation") or {}).get("sampler") or {}).get("fixed")
        names = (metadata.get("codec") or {}).get("names", ("blur", "noise"))
        level = dict(zip(names, fixed, strict=False)) if fixed is not None else None
    return {str(k): float(v) for k, v in level.items()} if level is not None else None


def describe_generator(kind: str, net_g: nn.Module, codec: LevelCodec, **extra: Any) -> dict[str, Any]:
    """The plain-data metadata entry for ``net_g``: class, constructor arguments, codec, kind and ``extra``.

    A model trained on one fixed level (a per-level baseline: the training config's sampler is ``fixed``)
    records it as ``level``."""
    config = getattr(net_g, "config", None)
    if config is None:
        raise TypeError(f"{type(net_g).__name__} has no `config`; cannot describe it in a generator file")
    metadata = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "generator": {"class": type(net_g).__name__, "config": dict(config)},
        "codec": codec.to_dict(),
        **extra,
    }
    metadata["kind"] = kind_of(metadata)
    if "level" not in metadata and (level := baseline_level(metadata)) is not None:
        metadata["level"] = level
    return metadata


def build_generator(metadata: Mapping[str, Any]) -> nn.Module:
    """Instantiate the generator that ``metadata`` describes (weights not loaded)."""
    from .. import networks

    spec = metadata.get("generator", {})
    cls = getattr(networks, str(spec.get("class")), None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise CheckpointError(f"unknown generator class '{spec.get('class')}' in the file's metadata")
    try:
        return cls(**spec.get("config", {}))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"the generator config in the file's metadata is not valid: {err}") from None


CONFIG_LABELS = {"in_channels": "image channels (in_channels: 1 gray, 3 RGB)"}
"""Generator arguments named for people where two files differ."""


def generator_differences(
    first: Mapping[str, Any], second: Mapping[str, Any], names: Sequence[str] = ("first", "second")
) -> list[str]:
    """Each difference in generator class, constructor argument and level codec between two metadata entries,
    e.g. ``"channels: MSE [8, 16, 32], GAN [8, 16, 16]"`` with ``names=("MSE", "GAN")``; empty when they match."""
    a, b = names

    def differ(what: str, value_a: Any, value_b: Any) -> str:
        return f"{what}: {a} {value_a!r}, {b} {value_b!r}"

    spec_a, spec_b = first.get("generator", {}), second.get("generator", {})
    if spec_a.get("class") != spec_b.get("class"):
        return [differ("generator class", spec_a.get("class"), spec_b.get("class"))]
    config_a, config_b = spec_a.get("config", {}), spec_b.get("config", {})
    out = [
        differ(CONFIG_LABELS.get(key, key), _plain(config_a.get(key)), _plain(config_b.get(key)))
        for key in sorted(set(config_a) | set(config_b))
        if _plain(config_a.get(key)) != _plain(config_b.get(key))
    ]
    codec_a, codec_b = (LevelCodec.from_dict(m["codec"]) if "codec" in m else None for m in (first, second))
    if codec_a != codec_b:
        plain = [c.to_dict() if c is not None else None for c in (codec_a, codec_b)]
        out.append(differ("level codec", *plain) + " (the condition z would mean something else)")
    return out


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (configs come back from JSON as lists)."""
    return list(value) if isinstance(value, tuple) else value


# ------------------------------------------------------------------------------------ string form (exports)


def metadata_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Metadata as the string key/values that safetensors and ONNX files store (JSON for non-strings)."""
    out = {"format": FORMAT_TAG}
    for key, value in metadata.items():
        if key != "format":
            out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def parse_metadata_strings(strings: Mapping[str, str], where: str) -> dict[str, Any]:
    """Inverse of :func:`metadata_strings`; raises :class:`CheckpointError` when this project's entries are
    missing."""
    if strings.get("format") != FORMAT_TAG or "generator" not in strings or "codec" not in strings:
        raise CheckpointError(
            f"'{where}' has no cugan-lightning metadata (format {FORMAT_TAG!r}, generator, codec); "
            "write it with `cugan-export`"
        )
    out: dict[str, Any] = {"format": FORMAT_VERSION}
    for key, value in strings.items():
        if key == "format":
            continue
        if key == "kind":
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
