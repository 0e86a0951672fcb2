"""The rows of an evaluation: the degraded input itself, generator files and DNI blends, loaded once.

A model is given by name as a generator file (``models.cunet=PATH``), as a blend of an MSE and a GAN file
(``models.blend={model: PATH, gan: PATH, alpha: 0.3}``: the MSE end, the GAN end, the weight) or as a classical method (``models.bm3d=classical:bm3d``,
see :mod:`.classical`). Every file goes through :mod:`cugan_lightning.checkpoint`; a per-level baseline (kind
``unet`` / ``ugan``) knows the level it was trained on and is scored there only, a classical method on the
settings within its reach (the others are ``n/a``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..checkpoint import GAN_KINDS, MSE_KINDS, read_generator_file
from ..checkpoint.find import level_triple
from ..degradations import LevelCodec
from ..dni import DNIBlender, check_alpha
from ..estimation import LearnedEstimator, blur_by_consistency, estimate_levels
from ..inference.precision import FastPath
from ..zoo import is_zoo_reference
from .classical import ClassicalMethod, classical_method, is_classical, unreached_factors
from .settings import Setting

__all__ = [
    "BLIND_SUFFIX",
    "INPUT",
    "EvalModel",
    "alpha_sweep",
    "blind_twin",
    "image_channels",
    "load_models",
    "parse_models",
    "told_twin",
    "told_twins",
]

INPUT = "input"
"""Name of the row that scores the degraded input itself."""
BLIND_SUFFIX = "_blind"
"""A blind row is named after its model plus this: the same network at levels estimated from each input."""


@dataclass
class ModelSpec:
    """One ``models`` entry as given: a file, or the two ends and the weight of a blend."""

    name: str
    path: str | None = None
    model: str | None = None
    gan: str | None = None
    alpha: float | None = None
    classical: str | None = None


@dataclass
class EvalModel:
    """A model ready to restore evaluation batches; ``restore(lq, z)`` maps ``(B, 3, H, W)`` and ``(B, D)`` to
    ``(B, 3, H, W)`` in [0, 1]. ``level`` is the single level of a baseline (None: the whole range)."""

    name: str
    kind: str
    codec: LevelCodec | None = None
    net: nn.Module | None = None
    blender: DNIBlender | None = None
    alpha: float | None = None
    level: tuple[float, float, float] | None = None
    classical: ClassicalMethod | None = None
    source: dict[str, Any] = field(default_factory=dict)
    held: dict[str, float | None] = field(default_factory=dict)
    """The blend weight ``net`` holds now, shared by the models of an alpha sweep (one network, re-blended)."""
    fast: FastPath | None = None
    """How ``net`` runs: float32, or bfloat16 with channels-last weights (:mod:`cugan_lightning.inference.precision`)."""
    blind: Callable[[Tensor], tuple[Tensor, list[dict[str, float | None]]]] | None = None
    """For a blind row: the condition of each degraded input estimated from the input itself, and the
    estimated levels (:func:`blind_twin`); None: the model is told the true levels."""
    told: dict[str, float] = field(default_factory=dict)
    """Levels this row is told whatever the setting's (:func:`told_twin`: ``{"poisson": 0.0}``)."""

    @property
    def conditional(self) -> bool:
        return self.net is not None and bool(getattr(self.net, "conditional", True))

    @property
    def family(self) -> str | None:
        """``mse`` (stage-1 kinds), ``gan`` (stage-2 kinds) or None (the input, blends, released files)."""
        return "mse" if self.kind in MSE_KINDS else "gan" if self.kind in GAN_KINDS else None

    @property
    def is_twin(self) -> bool:
        """A told or blind row (:func:`told_twin`, :func:`blind_twin`): the network of another row, told other
        levels; it gets no twins and no modulation map of its own."""
        return self.blind is not None or bool(self.told)

    @property
    def restores(self) -> bool:
        """False for the input row only."""
        return self.net is not None or self.classical is not None

    def missing_factor(self, setting: Setting) -> str | None:
        """Why ``setting`` is out of this row's reach for a factor it lacks, in words naming the factor (None:
        it is not). A conditional model lacking a factor of the setting (JPEG aside: a model without it is told
        blur and noise on JPEG inputs, as it always was); a classical method on a factor none of them restores."""
        if self.classical is not None:
            unreached = unreached_factors(dict(setting.levels))
            return f"no classical method restores {unreached[0]} (classical: none)" if unreached else None
        if self.codec is None or not self.conditional:
            return None
        lacking = [name for name in setting.factors if name != "jpeg" and name not in self.codec.names]
        return f"it conditions on {list(self.codec.names)}, not on {lacking[0]}" if lacking else None

    def applies_to(self, setting: Setting) -> bool:
        """Whether this model is scored on a setting: a baseline on its own level only, a classical method on
        the settings it can handle, a conditional model on those of its factors (:meth:`missing_factor`)."""
        if self.classical is not None:
            return self.classical.handles(**dict(setting.levels))
        if self.missing_factor(setting) is not None:
            return False
        return self.level is None or self.level == setting.triple

    def z_for(
        self, blur: Tensor, noise: Tensor, jpeg: Tensor | None = None, **levels: Tensor
    ) -> Tensor | None:
        """The condition of each sample ``(B,)`` levels by factor under this model's codec (None for the input
        and baselines), with :attr:`told` levels in place of the true ones; for a classical method the true
        levels ``(B, 2)`` (blur sigma, noise sigma) it is told."""
        if self.classical is not None:
            return torch.stack([blur, noise], dim=1).to(torch.float64)
        if self.codec is None or not self.conditional:
            return None
        given = {"blur": blur, "noise": noise, **levels}
        # a model without a jpeg factor is told blur and noise only, also on JPEG-compressed inputs
        if jpeg is not None and "jpeg" in self.codec.names:
            given["jpeg"] = jpeg
        given.update({name: torch.full_like(blur, value) for name, value in self.told.items()})
        return self.codec.encode_all(given)

    @torch.no_grad()
    def restore(self, lq: Tensor, z: Tensor | None) -> Tensor:
        if self.classical is not None:
            assert z is not None, "a classical method is told the levels (z_for)"
            return self.classical.restore(lq, z[:, 0], z[:, 1])
        if self.net is None:
            return lq
        if self.blender is not None and self.held.get("alpha") != self.alpha:
            self.blender.blend_into(self.net, self.alpha)
            self.held["alpha"] = self.alpha
        z = z.to(lq.device) if z is not None else None
        out = self.fast.run(self.net, lq, z) if self.fast is not None else self.net(lq, z)
        return out.clamp(0.0, 1.0)


def _spec(name: str, value: Any) -> ModelSpec:
    if name == INPUT:
        raise ValueError(
            f"'{INPUT}' names the degraded input, which is always a row; give the model another name"
        )
    if is_classical(value):
        classical_method(value, f"models.{name}")  # an unknown name (or a missing package) is named here
        return ModelSpec(name, classical=str(value))
    if isinstance(value, (str, Path)):
        return ModelSpec(name, path=str(value))
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"path"}:
            return ModelSpec(name, path=str(value["path"]))
        if keys == {"model", "gan", "alpha"}:
            try:
                alpha = check_alpha(value["alpha"])
            except ValueError as err:
                raise ValueError(f"models.{name}.alpha: {err}") from None
            return ModelSpec(name, model=str(value["model"]), gan=str(value["gan"]), alpha=alpha)
        raise ValueError(
            f"models.{name} must be a generator file, {{model: PATH, gan: PATH, alpha: A}} or classical:NAME, got keys "
            f"{sorted(keys)}"
        )
    raise ValueError(
        f"models.{name} must be a generator file, {{model: PATH, gan: PATH, alpha: A}} or classical:NAME, got {value!r}"
    )


def parse_models(models: Mapping[str, Any] | None) -> list[ModelSpec]:
    """Check the ``models`` config entries (None entries are unset names) and that every file they name exists."""
    specs = [_spec(str(name), value) for name, value in (models or {}).items() if value is not None]
    for spec in specs:
        for role, path in (("", spec.path), (".model", spec.model), (".gan", spec.gan)):
            if path is not None and not is_zoo_reference(path) and not Path(path).is_file():
                raise FileNotFoundError(f"models.{spec.name}{role}: '{path}' does not exist")
    return specs


def load_models(
    specs: Sequence[ModelSpec], device: torch.device, precision: str = "float32"
) -> list[EvalModel]:
    """Read every file once (as data) and build the networks on ``device``, run at ``precision`` (``auto``,
    ``float32``, ``bf16``); the input row comes first."""
    out = [EvalModel(INPUT, INPUT)]
    for spec in specs:
        if spec.classical is not None:
            method = classical_method(spec.classical, f"models.{spec.name}")
            out.append(EvalModel(spec.name, "classical", classical=method, source={"method": spec.classical}))
            continue
        if spec.path is not None:
            file = read_generator_file(spec.path, f"models.{spec.name}")
            model = EvalModel(
                spec.name,
                file.kind,
                codec=file.codec,
                net=file.build(device),
                level=level_triple(file.metadata),
                source={"path": spec.path},
            )
        else:
            mse = read_generator_file(spec.model, f"models.{spec.name}.model")
            gan = read_generator_file(spec.gan, f"models.{spec.name}.gan")
            blender = DNIBlender.from_sources(mse, gan, device=device)
            model = EvalModel(
                spec.name,
                "dni",
                codec=gan.codec,
                net=blender.build(spec.alpha, device),
                blender=blender,
                alpha=spec.alpha,
                source={"model": spec.model, "gan": spec.gan, "alpha": spec.alpha},
                held={"alpha": spec.alpha},
            )
        if model.net is not None:
            model.fast = FastPath(precision, device)
            model.fast.prepare(model.net)
        out.append(model)
    return out


def alpha_sweep(model: EvalModel, alphas: Sequence[float]) -> list[EvalModel]:
    """One row per alpha for a blend (one network, re-blended in place when the alpha changes), named
    ``<name>@<alpha>``."""
    if model.blender is None:
        raise ValueError(
            f"models.{model.name} is not a blend ({{model, gan, alpha}}); only blends have an alpha"
        )
    return [
        EvalModel(
            f"{model.name}@{check_alpha(a):g}",
            model.kind,
            codec=model.codec,
            net=model.net,
            blender=model.blender,
            alpha=check_alpha(a),
            source={**model.source, "alpha": check_alpha(a)},
            held=model.held,
            fast=model.fast,
        )
        for a in alphas
    ]


def told_twin(model: EvalModel, told: Mapping[str, float]) -> EvalModel:
    """``model`` told fixed levels of some factors whatever each setting's (``{"poisson": 0}``: told no Poisson
    noise), named ``<name>_told_poisson0``: beside ``model`` it measures what being told the true level is
    worth. A factor the model lacks or a level outside its range is a ValueError naming it."""
    if model.codec is None or not model.conditional:
        raise ValueError(f"models.{model.name} has no condition to be told")
    levels = {}
    for name, value in told.items():
        factor = model.codec.factor(str(name))  # "this model conditions on [...], not on motion"
        factor.check_level(float(value))
        levels[str(name)] = float(value)
    suffix = "_".join(f"{name}{value:g}" for name, value in levels.items())
    return dataclasses.replace(model, name=f"{model.name}_told_{suffix}", told=levels)


def told_twins(models: Sequence[EvalModel], told: Any) -> list[EvalModel]:
    """:func:`told_twin` of every conditional model with the factors of ``told`` (``{"poisson": 0}``, the
    evaluation's ``told=``); a ValueError naming ``told`` when it is not such a mapping or no model has them."""
    if not isinstance(told, Mapping) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in told.values()
    ):
        raise ValueError(f"told must map factor names to levels, e.g. told={{poisson: 0}}; got {told!r}")
    levels = {str(name): float(value) for name, value in told.items()}
    twins = [told_twin(m, levels) for m in models if m.conditional and set(levels) <= set(m.codec.names)]
    if not twins:
        raise ValueError(f"told names {', '.join(levels)}, which no conditional model here conditions on")
    return twins


def blind_twin(model: EvalModel, estimator: LearnedEstimator | None) -> EvalModel:
    """``model`` at levels estimated from each degraded input (:func:`cugan_lightning.estimation.estimate_levels`,
    the blur of an input without noise off its edges, and of one with little blur under noise, where the
    estimator's calibration asks for it, by the model's own consistency, as ``Restorer.estimate`` does) instead
    of the true ones, named ``<name>_blind``: the restoration a person gets from ``--auto``."""
    if model.codec is None or not model.conditional:
        raise ValueError(f"models.{model.name} has no condition to estimate")
    codec = model.codec

    def restore_at(x: Tensor, levels: Mapping[str, float]) -> Tensor:
        return model.restore(x, codec.encode(dict(levels)).to(torch.float32))

    below = estimator.denoised_search_below if estimator is not None else None

    def blind(lq: Tensor) -> tuple[Tensor, list[dict[str, float | None]]]:
        found = []
        for image in lq:
            estimates = blur_by_consistency(
                estimate_levels(image, codec, estimator), image[None], codec, restore_at, below
            )
            found.append({name: e.value for name, e in estimates.items()})
        levels = {name: [f[name] or 0.0 for f in found] for name in codec.names}
        return codec.encode(levels).to(torch.float32), found

    return dataclasses.replace(model, name=model.name + BLIND_SUFFIX, blind=blind)


def image_channels(models: Sequence[EvalModel]) -> int:
    """The channels every network model reads (1: gray models, scored on gray references; 3: RGB); the
    classical rows and the input follow them. Gray and RGB models in one table are refused, naming them."""
    channels = {m.name: int(getattr(m.net, "in_channels", 3)) for m in models if m.net is not None}
    if len(set(channels.values())) > 1:
        raise ValueError(
            f"gray and RGB models cannot share a table (image channels {channels}); evaluate them separately"
        )
    return next(iter(channels.values()), 3)
