"""Deep network interpolation (DNI) between the MSE model (stage 1) and the GAN model (stage 2), SPEC section 5.

``theta = (1 - alpha) * theta_GAN + alpha * theta_MSE`` over every floating-point tensor of the generator G **and**
its condition network C_G; integer buffers are copied from the GAN side. ``alpha = 0`` is the GAN model and
``alpha = 1`` the MSE model, as in the paper. Both checkpoints must share one architecture and one level codec.

Pure torch: nothing here imports Lightning or Hydra. Command line::

    python -m cugan_lightning.dni --mse MSE.ckpt --gan GAN.ckpt --alpha 0.3 -o blend.ckpt

The last part of this module is the small command-line plumbing shared by ``dni``, ``restore`` and ``export``
(one-line ``error: ...`` messages and exit status 2 instead of tracebacks).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .checkpoint import (
    CHECKPOINT_KEY,
    CheckpointError,
    build_generator,
    generator_state_dict,
    read_checkpoint,
    save_generator_checkpoint,
)
from .degradations import LevelCodec

__all__ = [
    "GENERATOR_KINDS",
    "DNIBlender",
    "GeneratorSource",
    "IncompatibleCheckpointsError",
    "blend_state_dicts",
    "check_alpha",
    "check_same_architecture",
    "interpolate",
    "main",
    "build_source_generator",
    "read_generator_source",
]

GENERATOR_KINDS = ("cunet", "cugan", "dni")
"""Checkpoint kinds that hold a restoration generator: stage 1 (MSE), stage 2 (GAN) and their blends."""

ALPHA_HELP = "0 = GAN model, 1 = MSE model"


class IncompatibleCheckpointsError(ValueError):
    """Two checkpoints cannot be interpolated; the message names the difference."""


def check_alpha(alpha: Any) -> float:
    """``alpha`` as a float in [0, 1]; anything else (NaN, out of range, not a number) raises ValueError."""
    if isinstance(alpha, bool):
        raise ValueError(f"alpha must be a number in [0, 1] ({ALPHA_HELP}), got {alpha!r}")
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number in [0, 1] ({ALPHA_HELP}), got {alpha!r}") from None
    if not 0.0 <= value <= 1.0:  # also False for NaN
        raise ValueError(f"alpha {value:g} is outside [0, 1] ({ALPHA_HELP})")
    return value


@dataclass
class GeneratorSource:
    """A generator read from disk: its checkpoint metadata (``"cugan"`` entry) and its state dict."""

    path: str
    role: str
    metadata: dict[str, Any]
    state: dict[str, Tensor]

    @property
    def kind(self) -> str:
        return str(self.metadata.get("kind", "unknown"))

    @property
    def codec(self) -> LevelCodec:
        return LevelCodec.from_dict(self.metadata["codec"])

    def describe(self) -> str:
        return f"{self.role} checkpoint '{self.path}'"


def read_generator_source(
    source: str | Path | Mapping[str, Any],
    role: str = "generator",
    *,
    map_location: str | torch.device = "cpu",
    kinds: Sequence[str] | None = GENERATOR_KINDS,
) -> GeneratorSource:
    """Read a generator checkpoint (``.ckpt``, exported ``.safetensors`` or an already loaded checkpoint dict).

    ``role`` ("MSE", "GAN", ...) names the file in error messages. ``kinds`` lists the accepted checkpoint kinds
    (None accepts any); a checkpoint of another kind raises :class:`CheckpointError`.
    """
    if isinstance(source, Mapping):
        path = "<checkpoint>"
        checkpoint = dict(source)
        if CHECKPOINT_KEY not in checkpoint or "state_dict" not in checkpoint:
            raise CheckpointError(f"the {role} checkpoint has no '{CHECKPOINT_KEY}' entry")
        metadata, state = checkpoint[CHECKPOINT_KEY], generator_state_dict(checkpoint)
    elif Path(source).suffix == ".safetensors":
        from .export import read_safetensors_generator

        path = str(source)
        metadata, state = read_safetensors_generator(source, map_location)
    else:
        path = str(source)
        try:
            checkpoint = read_checkpoint(source, map_location)
        except CheckpointError as err:
            raise CheckpointError(f"{role} checkpoint: {err}") from None
        metadata = checkpoint[CHECKPOINT_KEY]
        try:
            state = generator_state_dict(checkpoint)
        except CheckpointError as err:
            raise CheckpointError(f"{role} checkpoint '{path}': {err}") from None
    if not isinstance(metadata, Mapping) or "generator" not in metadata or "codec" not in metadata:
        raise CheckpointError(f"{role} checkpoint '{path}' does not describe its generator and codec")
    out = GeneratorSource(path=path, role=role, metadata=dict(metadata), state=dict(state))
    if kinds is not None and out.kind not in kinds:
        raise CheckpointError(
            f"{out.describe()} is of kind '{out.kind}'; expected a generator checkpoint of kind "
            f"{', '.join(repr(k) for k in kinds)}"
        )
    return out


def build_source_generator(source: GeneratorSource, map_location: str | torch.device = "cpu") -> nn.Module:
    """The generator of ``source`` with its weights loaded, in eval mode."""
    net_g = build_generator(source.metadata)
    try:
        net_g.load_state_dict(source.state, strict=True)
    except RuntimeError as err:
        first = one_line(err).split(". ")[0]
        raise CheckpointError(
            f"generator weights in {source.describe()} do not fit its own config: {first}"
        ) from None
    return net_g.to(map_location).eval()


def _list_some(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_state_dicts_match(
    first: Mapping[str, Tensor], second: Mapping[str, Tensor], names: tuple[str, str] = ("GAN", "MSE")
) -> None:
    """Raise :class:`IncompatibleCheckpointsError` unless both state dicts share keys, shapes and dtypes."""
    only_first = sorted(set(first) - set(second))
    only_second = sorted(set(second) - set(first))
    if only_first or only_second:
        parts = [
            f"only in {n}: {_list_some(k)}"
            for n, k in zip(names, (only_first, only_second), strict=True)
            if k
        ]
        raise IncompatibleCheckpointsError(
            f"the {names[0]} and {names[1]} generators have different weights ({'; '.join(parts)})"
        )
    for key, a in first.items():
        b = second[key]
        if a.shape != b.shape:
            raise IncompatibleCheckpointsError(
                f"the {names[0]} and {names[1]} generators differ in '{key}': shape {tuple(a.shape)} vs "
                f"{tuple(b.shape)}"
            )
        if a.dtype != b.dtype:
            raise IncompatibleCheckpointsError(
                f"the {names[0]} and {names[1]} generators differ in '{key}': dtype {a.dtype} vs {b.dtype}"
            )


def check_same_architecture(first: GeneratorSource, second: GeneratorSource) -> None:
    """Both generators must share class, constructor config, level codec, weight names, shapes and dtypes."""
    pair = f"the {first.role} and {second.role} checkpoints"
    spec_a, spec_b = first.metadata.get("generator", {}), second.metadata.get("generator", {})
    if spec_a.get("class") != spec_b.get("class"):
        raise IncompatibleCheckpointsError(
            f"{pair} hold different generators: {spec_a.get('class')} vs {spec_b.get('class')}"
        )
    config_a, config_b = spec_a.get("config", {}), spec_b.get("config", {})
    diffs = [
        f"{key} {config_a.get(key)!r} vs {config_b.get(key)!r}"
        for key in sorted(set(config_a) | set(config_b))
        if config_a.get(key) != config_b.get(key)
    ]
    if diffs:
        raise IncompatibleCheckpointsError(
            f"{pair} have different generator architectures ({'; '.join(diffs)}); DNI needs one architecture"
        )
    if first.codec != second.codec:
        raise IncompatibleCheckpointsError(
            f"{pair} use different level codecs ({first.codec.to_dict()} vs {second.codec.to_dict()}): "
            "their conditions mean different things"
        )
    check_state_dicts_match(first.state, second.state, (first.role, second.role))


def blend_state_dicts(
    gan_sd: Mapping[str, Tensor], mse_sd: Mapping[str, Tensor], alpha: float
) -> dict[str, Tensor]:
    """``(1 - alpha) * gan + alpha * mse`` for every floating-point tensor; other tensors copied from ``gan_sd``.

    The endpoints are copies, so ``alpha = 0`` is bitwise the GAN weights and ``alpha = 1`` the MSE weights.
    Returns a new state dict (on ``gan_sd``'s devices).
    """
    alpha = check_alpha(alpha)
    check_state_dicts_match(gan_sd, mse_sd)
    out: dict[str, Tensor] = {}
    for key, gan in gan_sd.items():
        mse = mse_sd[key].to(gan.device)
        if not gan.is_floating_point() or alpha == 0.0:
            out[key] = gan.detach().clone()
        elif alpha == 1.0:
            out[key] = mse.detach().clone()
        else:
            # torch.lerp is gan + alpha * (mse - gan): the same blend, computed the way DNIBlender does in place
            out[key] = torch.lerp(gan.detach(), mse.detach(), alpha)
    return out


def interpolate(
    mse_ckpt: str | Path | Mapping[str, Any],
    gan_ckpt: str | Path | Mapping[str, Any],
    alpha: float,
    map_location: str | torch.device = "cpu",
) -> tuple[nn.Module, LevelCodec]:
    """Blend the generators of an MSE and a GAN checkpoint; returns ``(net_g, codec)``, ``net_g`` in eval mode."""
    alpha = check_alpha(alpha)
    mse = read_generator_source(mse_ckpt, "MSE")
    gan = read_generator_source(gan_ckpt, "GAN")
    check_pair(mse, gan)
    net_g = build_generator(gan.metadata)
    net_g.load_state_dict(blend_state_dicts(gan.state, mse.state, alpha), strict=True)
    return net_g.to(map_location).eval(), gan.codec


def check_pair(mse: GeneratorSource, gan: GeneratorSource) -> None:
    """Refuse a swapped pair (a stage-2 model given as the MSE end and a stage-1 one as the GAN end) and any
    difference in architecture."""
    if mse.kind == "cugan" and gan.kind == "cunet":
        raise IncompatibleCheckpointsError(
            f"the MSE and GAN checkpoints look swapped: {mse.describe()} is a GAN (cugan) model and "
            f"{gan.describe()} an MSE (cunet) model"
        )
    check_same_architecture(mse, gan)


class DNIBlender:
    """Both weight sets of a DNI pair, held in memory and re-blended in place into a network for each alpha.

    ``blend_into(net, alpha)`` writes ``(1 - alpha) * GAN + alpha * MSE`` into ``net``'s own parameters and
    buffers with two fused ``torch._foreach_*`` passes: no file reads and no new state dict per call, so a slider
    can move alpha freely. Integer buffers are copied from the GAN side once, when a network is first bound.
    """

    def __init__(
        self,
        mse_state: Mapping[str, Tensor],
        gan_state: Mapping[str, Tensor],
        metadata: Mapping[str, Any] | None = None,
        *,
        device: str | torch.device | None = None,
    ) -> None:
        check_state_dicts_match(gan_state, mse_state)
        self.metadata = dict(metadata) if metadata is not None else None
        self.names = list(gan_state)
        self.float_names = [k for k in self.names if gan_state[k].is_floating_point()]
        self.fixed_names = [k for k in self.names if not gan_state[k].is_floating_point()]
        self._gan = [gan_state[k].detach().to(device).contiguous() for k in self.float_names]
        self._mse = [mse_state[k].detach().to(device).contiguous() for k in self.float_names]
        self._fixed = [gan_state[k].detach().to(device) for k in self.fixed_names]
        self._bound: tuple[weakref.ref[nn.Module], list[Tensor]] | None = None
        self.blend_calls = 0

    @classmethod
    def from_checkpoints(
        cls,
        mse_ckpt: str | Path | Mapping[str, Any],
        gan_ckpt: str | Path | Mapping[str, Any],
        *,
        device: str | torch.device | None = None,
    ) -> DNIBlender:
        """Read both checkpoints once and check that they can be blended."""
        mse = read_generator_source(mse_ckpt, "MSE")
        gan = read_generator_source(gan_ckpt, "GAN")
        return cls.from_sources(mse, gan, device=device)

    @classmethod
    def from_sources(
        cls, mse: GeneratorSource, gan: GeneratorSource, *, device: str | torch.device | None = None
    ) -> DNIBlender:
        check_pair(mse, gan)
        return cls(mse.state, gan.state, gan.metadata, device=device)

    @property
    def codec(self) -> LevelCodec:
        if self.metadata is None:
            raise ValueError("this DNIBlender was built without checkpoint metadata; it has no codec")
        return LevelCodec.from_dict(self.metadata["codec"])

    def build(self, alpha: float = 1.0, device: str | torch.device | None = None) -> nn.Module:
        """A fresh generator (eval mode) holding the blend for ``alpha``; needs checkpoint metadata."""
        if self.metadata is None:
            raise ValueError(
                "this DNIBlender was built without checkpoint metadata; use blend_into(net, alpha)"
            )
        net = build_generator(self.metadata).to(device or self._device).eval()
        return self.blend_into(net, alpha)

    @property
    def _device(self) -> torch.device:
        return (self._gan or self._fixed or [torch.empty(0)])[0].device

    def _bind(self, net: nn.Module) -> list[Tensor]:
        """The float tensors of ``net`` in blend order (cached for the last network seen)."""
        if self._bound is not None and self._bound[0]() is net:
            targets = self._bound[1]
        else:
            state = net.state_dict(keep_vars=True)
            reference = dict(zip(self.float_names, self._gan, strict=True))
            reference.update(zip(self.fixed_names, self._fixed, strict=True))
            check_state_dicts_match(reference, state, ("blender", "target network"))
            targets = [state[k] for k in self.float_names]
            with torch.no_grad():
                for key, value in zip(self.fixed_names, self._fixed, strict=True):
                    state[key].copy_(value)
            self._bound = (weakref.ref(net), targets)
        if targets and targets[0].device != self._gan[0].device:
            # the network lives elsewhere (or moved): move the weight sets once, not on every blend
            device = targets[0].device
            self._gan = [t.to(device) for t in self._gan]
            self._mse = [t.to(device) for t in self._mse]
        return targets

    @torch.no_grad()
    def blend_into(self, net: nn.Module, alpha: float) -> nn.Module:
        """Overwrite ``net``'s weights with the blend for ``alpha`` in place; returns ``net``."""
        alpha = check_alpha(alpha)
        targets = self._bind(net)
        if not targets:
            return net
        self.blend_calls += 1
        if alpha == 0.0:
            torch._foreach_copy_(targets, self._gan)
        elif alpha == 1.0:
            torch._foreach_copy_(targets, self._mse)
        else:
            torch._foreach_copy_(targets, self._gan)
            torch._foreach_lerp_(targets, self._mse, alpha)
        return net


# --------------------------------------------------------------------------------------------------------------
# Command-line plumbing shared by the dni, restore and export tools.


class CliError(Exception):
    """A bad command-line argument or input: printed as one ``error: ...`` line, exit status 2."""


class CliArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`CliError` instead of printing the usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{message} (see {self.prog} --help)")


def one_line(err: BaseException) -> str:
    """An exception's message on one line (its type name when the message is empty)."""
    text = " ".join(str(err).split())
    if isinstance(err, KeyError) and text.startswith("'"):
        text = text.strip("'")
    return text or type(err).__name__


def run_cli(parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], None], argv: Any) -> int:
    """Parse ``argv`` and run ``body``; bad input becomes one ``error: ...`` line on stderr and exit status 2."""
    try:
        args = parser.parse_args(argv)
        body(args)
    except SystemExit as stop:  # --help / --version
        return stop.code if isinstance(stop.code, int) else 0
    except (CliError, ValueError, OSError, KeyError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0


def parse_alpha(text: str) -> float:
    """argparse type for ``--alpha``: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"alpha must be a number in [0, 1], got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"alpha must be a number in [0, 1] ({ALPHA_HELP}), got {text!r}")
    return value


def check_output_path(path: Path) -> None:
    """Fail early when ``path`` cannot be written: it is a folder, or its nearest existing parent is not a
    writable folder."""
    if path.is_dir():
        raise CliError(f"output '{path}' is a folder; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CliError(f"cannot write '{path}': '{parent}' is not a folder")
    if not os.access(parent, os.W_OK):
        raise CliError(f"cannot write '{path}': folder '{parent}' is not writable")


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="python -m cugan_lightning.dni",
        description="Blend an MSE (stage 1) and a GAN (stage 2) checkpoint: "
        "theta = (1 - alpha) * theta_GAN + alpha * theta_MSE over G and C_G.",
    )
    parser.add_argument("--mse", required=True, type=Path, help="stage-1 (CUnet, MSE) checkpoint")
    parser.add_argument("--gan", required=True, type=Path, help="stage-2 (CUGAN) checkpoint")
    parser.add_argument(
        "--alpha", required=True, type=parse_alpha, help=f"blend weight in [0, 1]: {ALPHA_HELP}"
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="output checkpoint (.ckpt)")
    return parser


def _run(args: argparse.Namespace) -> None:
    alpha = check_alpha(args.alpha)
    check_output_path(args.output)
    net_g, codec = interpolate(args.mse, args.gan, alpha)
    save_generator_checkpoint(
        args.output,
        net_g,
        codec,
        kind="dni",
        dni={"alpha": alpha, "mse_checkpoint": str(args.mse), "gan_checkpoint": str(args.gan)},
    )
    print(f"wrote {args.output} (alpha {alpha:g}: {ALPHA_HELP})")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cugan_lightning.dni --mse A.ckpt --gan B.ckpt --alpha 0.3 -o C.ckpt``; returns the exit code."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
