"""Deep network interpolation (DNI) between the MSE model (stage 1) and the GAN model (stage 2), paper section 3.4 (docs/model.md).

``theta = (1 - alpha) * theta_GAN + alpha * theta_MSE`` over every floating-point tensor of the generator G **and**
its condition network C_G; integer buffers are copied from the GAN side. ``alpha = 0`` is the GAN model and
``alpha = 1`` the MSE model, as in the paper. Both checkpoints must share one architecture and one level codec.

Blending only, pure torch: files are read through :mod:`cugan_lightning.checkpoint`; the command line
(``cugan-dni --model MSE.ckpt --gan GAN.ckpt --alpha 0.3 -o blend.ckpt``) lives in
:mod:`cugan_lightning.apps.dni`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..checkpoint import (
    GAN_KINDS,
    GENERATOR_KINDS,
    MSE_KINDS,
    GeneratorFile,
    IncompatibleCheckpointsError,
    build_generator,
    check_same_architecture,
    check_state_dicts_match,
    read_generator_file,
)
from ..degradations import LevelCodec

__all__ = [
    "ALPHA_HELP",
    "GENERATOR_KINDS",
    "DNIBlender",
    "GeneratorSource",
    "IncompatibleCheckpointsError",
    "blend_state_dicts",
    "build_source_generator",
    "check_alpha",
    "check_pair",
    "check_same_architecture",
    "interpolate",
    "read_generator_source",
]

ALPHA_HELP = "0 = GAN model, 1 = MSE model"

# Names this module exported before generator files got a home of their own.
GeneratorSource = GeneratorFile
read_generator_source = read_generator_file


def build_source_generator(source: GeneratorFile, map_location: str | torch.device = "cpu") -> nn.Module:
    """The generator of ``source`` with its weights loaded, in eval mode."""
    return source.build(map_location)


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
    mse = read_generator_file(mse_ckpt, "MSE")
    gan = read_generator_file(gan_ckpt, "GAN")
    check_pair(mse, gan)
    net_g = build_generator(gan.metadata)
    net_g.load_state_dict(blend_state_dicts(gan.state, mse.state, alpha), strict=True)
    return net_g.to(map_location).eval(), gan.codec


def check_pair(mse: GeneratorFile, gan: GeneratorFile) -> None:
    """Refuse a swapped pair (a stage-2 model given as the MSE end and a stage-1 one as the GAN end) and any
    difference in architecture."""
    if mse.kind in GAN_KINDS and gan.kind in MSE_KINDS:
        raise IncompatibleCheckpointsError(
            f"the MSE and GAN checkpoints look swapped: {mse.describe()} is a GAN ({mse.kind}) model and "
            f"{gan.describe()} an MSE ({gan.kind}) model"
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
        mse = read_generator_file(mse_ckpt, "MSE")
        gan = read_generator_file(gan_ckpt, "GAN")
        return cls.from_sources(mse, gan, device=device)

    @classmethod
    def from_sources(
        cls, mse: GeneratorFile, gan: GeneratorFile, *, device: str | torch.device | None = None
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
