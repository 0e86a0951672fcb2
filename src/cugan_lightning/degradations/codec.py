"""The mapping between physical degradation levels and the condition vector z (docs/degradations.md).

The codec is plain data stored in every checkpoint and exported model, so that a slider can be labelled in physical
units and a model can never be driven with levels scaled for another one.

Each factor's mapping is its own (:mod:`cugan_lightning.degradations.factors`): blur, noise, poisson and motion
are linear, ``z = level / max_level``; JPEG is given as a quality, ``z = (102 - quality) / max_level`` for quality
``102 - max_level .. 100`` (10..100 with the default ``max_level`` 92), and quality 0 means no compression,
``z = 0``. The stored form is unchanged: ``{"names": [...], "max_levels": [...]}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch import Tensor

from cugan_lightning.degradations.factors.base import Factor, lookup

__all__ = ["LevelCodec"]

# Tolerance on z at both range ends, so that float round-off on a boundary level is not an error.
_TOLERANCE = 1e-6

JPEG = "jpeg"

LevelValue = float | Sequence[float] | Tensor


def _as_float_tensor(value: Any, device: torch.device | str | None) -> Tensor:
    if isinstance(value, Tensor):
        tensor = value if value.is_floating_point() else value.to(torch.float32)
        return tensor.to(device) if device is not None else tensor
    return torch.as_tensor(value, dtype=torch.float32, device=device)


@dataclass(frozen=True)
class LevelCodec:
    """Maps levels `(B, D)` in physical units to z `(B, D)` in [0, 1] by `z = level / max_level`, per factor.

    The default codec is the paper's: `names = ("blur", "noise")`, `z_blur = sigma_b / 4`, `z_noise = sigma_n / 50`.
    """

    names: tuple[str, ...] = ("blur", "noise")
    max_levels: tuple[float, ...] = (4.0, 50.0)

    def __post_init__(self) -> None:
        # Lists from a config file or JSON become tuples so the codec stays hashable and comparable.
        names = self.names
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise ValueError(f"names must be a sequence of factor names, got {names!r}")
        names = tuple(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"names must be non-empty strings, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"names must be unique, got {names!r}")
        maxima = self.max_levels
        if isinstance(maxima, str) or not isinstance(maxima, Sequence):
            raise ValueError(f"max_levels must be a sequence of numbers, got {maxima!r}")
        if len(maxima) != len(names):
            raise ValueError(f"max_levels has {len(maxima)} values for {len(names)} names {names}")
        checked = []
        for name, value in zip(names, maxima, strict=True):
            if (
                not isinstance(value, Real)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"max level of {name} must be a finite number > 0, got {value!r}")
            checked.append(float(value))
        for name in names:
            lookup(name)  # an unknown factor is an error naming the known ones
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "max_levels", tuple(checked))

    @classmethod
    def default(cls) -> LevelCodec:
        """The paper's codec: blur sigma 0..4, noise sigma 0..50."""
        return cls()

    @property
    def cond_dim(self) -> int:
        """Length D of the condition vector z."""
        return len(self.names)

    def factor(self, name: str) -> Factor:
        """The factor ``name`` with this codec's range; a factor the codec lacks is a ValueError naming both."""
        if name not in self.names:
            raise ValueError(f"this model conditions on {list(self.names)}, not on {name}")
        return lookup(name).from_codec(self.max_levels[self.names.index(name)])

    @property
    def factors(self) -> tuple[Factor, ...]:
        """The factors in the order of ``names`` (z's order)."""
        return tuple(self.factor(name) for name in self.names)

    def unit(self, name: str) -> str:
        """Human-readable unit of a factor's level."""
        return lookup(name).unit

    def describe(self, index: int) -> str:
        """Allowed range of factor `index` in physical units, e.g. "0..50 (sigma on the 0-255 scale)"."""
        return self.factor(self.names[index]).describe()

    def slider(self, index: int) -> tuple[float, float, float]:
        """``(min, max, step)`` of a slider for factor ``index`` in physical units (JPEG: quality 0..100)."""
        return self.factor(self.names[index]).slider()

    def snap(self, name: str, value: float) -> float:
        """A slider position made a valid level: a JPEG quality between 0 and the lowest one becomes the lowest."""
        return self.factor(name).snap(value) if name in self.names else float(value)

    def check_factors(self, levels: Mapping[str, Any]) -> None:
        """Refuse a nonzero level of a factor this codec lacks, naming it: "this model conditions on [blur,
        noise], not on poisson"."""
        for name, value in levels.items():
            if name in self.names or value is None:
                continue
            lookup(name)
            if bool(torch.as_tensor(value).ne(0).any()):
                raise ValueError(f"this model conditions on {list(self.names)}, not on {name}")

    def _to_internal(self, levels: Tensor, validate: bool) -> Tensor:
        """Columns given in user units -> the codec's linear scale (JPEG qualities to ``102 - q``)."""
        columns = [f.to_internal(levels[:, i], validate) for i, f in enumerate(self.factors)]
        return torch.stack(columns, dim=-1) if columns else levels

    def _from_internal(self, levels: Tensor) -> Tensor:
        return torch.stack([f.from_internal(levels[:, i]) for i, f in enumerate(self.factors)], dim=-1)

    def _levels_tensor(self, levels: Mapping[str, LevelValue] | LevelValue, device: Any) -> Tensor:
        if isinstance(levels, Mapping):
            unknown = [key for key in levels if key not in self.names]
            if unknown:
                raise ValueError(
                    f"unknown degradation factor(s) {unknown}; this codec knows {list(self.names)}"
                )
            values = [levels.get(name, 0.0) for name in self.names]
            if device is None:
                # Follow the first tensor given, so device tensors stay where they are.
                device = next((v.device for v in values if isinstance(v, Tensor)), None)
            columns = [_as_float_tensor(v, device) for v in values]
            for name, column in zip(self.names, columns, strict=True):
                if column.dim() > 1:
                    raise ValueError(
                        f"{name} levels must be a number or shape (B,), got {tuple(column.shape)}"
                    )
            dtype = columns[0].dtype
            for column in columns[1:]:
                dtype = torch.promote_types(dtype, column.dtype)
            try:
                columns = torch.broadcast_tensors(*(c.to(dtype).reshape(-1) for c in columns))
            except RuntimeError:
                sizes = {name: c.numel() for name, c in zip(self.names, columns, strict=True)}
                raise ValueError(f"level batch sizes do not match: {sizes}") from None
            return torch.stack(columns, dim=-1)
        tensor = _as_float_tensor(levels, device)
        if tensor.dim() == 1:
            tensor = tensor[None]
        if tensor.dim() != 2 or tensor.shape[-1] != self.cond_dim:
            raise ValueError(
                f"levels must have shape (B, {self.cond_dim}) or ({self.cond_dim},) for factors {list(self.names)}, "
                f"got {tuple(tensor.shape)}"
            )
        return tensor

    def _check(self, levels: Tensor, z: Tensor, what: str) -> None:
        bad = torch.isnan(z) | (z < -_TOLERANCE) | (z > 1 + _TOLERANCE)
        if not bool(bad.any()):
            return
        row, col = (int(i) for i in bad.nonzero()[0].tolist())
        name = self.names[col]
        level = float(levels[row, col])
        if what == "level":
            raise ValueError(f"{name} level {level:g} is outside {self.describe(col)}")
        raise ValueError(
            f"{name} z {float(z[row, col]):g} is outside 0..1 (level {level:g}; allowed {self.describe(col)})"
        )

    def encode(
        self,
        levels: Mapping[str, LevelValue] | LevelValue,
        *,
        device: torch.device | str | None = None,
        validate: bool = True,
    ) -> Tensor:
        """Physical levels to z `(B, D)` in [0, 1].

        `levels` is a tensor / sequence `(B, D)` or `(D,)` in the order of `names`, or a mapping from factor name
        to a number or `(B,)` values (factors left out are absent, level 0). Out-of-range or NaN levels raise
        `ValueError` unless `validate=False` (which skips a host sync on device tensors).
        """
        levels = self._to_internal(self._levels_tensor(levels, device), validate)
        maxima = torch.tensor(self.max_levels, dtype=levels.dtype, device=levels.device)
        z = levels / maxima
        if validate:
            self._check(levels, z, "level")
        return z.clamp(0.0, 1.0)

    def decode(
        self, z: LevelValue, *, device: torch.device | str | None = None, validate: bool = True
    ) -> Tensor:
        """z `(B, D)` or `(D,)` in [0, 1] back to physical levels `(B, D)` (JPEG as a quality, 0: none)."""
        z = self._levels_tensor(z, device)
        maxima = torch.tensor(self.max_levels, dtype=z.dtype, device=z.device)
        levels = z * maxima
        if validate:
            self._check(levels, z, "z")
        return self._from_internal(levels.clamp(min=torch.zeros_like(maxima), max=maxima))

    def levels_to_z(
        self,
        blur_sigma: LevelValue,
        noise_sigma: LevelValue,
        jpeg_quality: LevelValue | None = None,
        *,
        validate: bool = True,
    ) -> Tensor:
        """z `(B, D)` for blur and noise levels (and a JPEG quality, 0 for none) as numbers or `(B,)`.

        A codec without a jpeg factor refuses a nonzero quality: the model was never told about JPEG.
        """
        for name in ("blur", "noise"):
            if name not in self.names:
                raise ValueError(f"this codec has no {name} factor; it knows {list(self.names)}")
        levels = {"blur": blur_sigma, "noise": noise_sigma}
        if jpeg_quality is not None:
            if JPEG in self.names:
                levels[JPEG] = jpeg_quality
            elif bool(torch.as_tensor(jpeg_quality).ne(0).any()):
                raise ValueError(f"this model conditions on {list(self.names)}, not on JPEG quality")
        return self.encode(levels, validate=validate)

    def encode_all(self, levels: Mapping[str, LevelValue], *, validate: bool = True) -> Tensor:
        """:meth:`encode` for levels of any known factors, refusing (by name) a nonzero level of a factor this
        codec lacks; zero levels of other factors are dropped."""
        self.check_factors(levels)
        return self.encode({k: v for k, v in levels.items() if k in self.names}, validate=validate)

    def to_dict(self) -> dict[str, list[str] | list[float]]:
        """Plain, JSON-serialisable description, as stored in checkpoints."""
        return {"names": list(self.names), "max_levels": list(self.max_levels)}

    @classmethod
    def coerce(cls, codec: LevelCodec | Mapping[str, Any] | None) -> LevelCodec:
        """A codec from a codec, its ``to_dict()`` form (e.g. a config node), or None for the default."""
        if isinstance(codec, cls):
            return codec
        return cls.from_dict(codec) if codec else cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LevelCodec:
        """Rebuild a codec from `to_dict()` output, refusing anything else."""
        if not isinstance(data, Mapping):
            raise ValueError(
                f"a level codec must be a mapping with names and max_levels, got {type(data).__name__}"
            )
        keys = set(data)
        if keys != {"names", "max_levels"}:
            raise ValueError(f"a level codec needs exactly the keys names and max_levels, got {sorted(keys)}")
        return cls(names=data["names"], max_levels=data["max_levels"])
