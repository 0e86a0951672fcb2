"""The mapping between physical degradation levels and the condition vector z (SPEC section 1).

The codec is plain data stored in every checkpoint and exported model, so that a slider can be labelled in physical
units and a model can never be driven with levels scaled for another one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch import Tensor

__all__ = ["LevelCodec"]

# Tolerance on z at both range ends, so that float round-off on a boundary level is not an error.
_TOLERANCE = 1e-6

_UNITS = {
    "blur": "Gaussian blur sigma in pixels",
    "noise": "sigma on the 0-255 scale",
}

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

    def unit(self, name: str) -> str:
        """Human-readable unit of a factor's level (empty when unknown)."""
        return _UNITS.get(name, "")

    def describe(self, index: int) -> str:
        """Allowed range of factor `index` in physical units, e.g. "0..50 (sigma on the 0-255 scale)"."""
        unit = self.unit(self.names[index])
        text = f"0..{self.max_levels[index]:g}"
        return f"{text} ({unit})" if unit else text

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
        levels = self._levels_tensor(levels, device)
        maxima = torch.tensor(self.max_levels, dtype=levels.dtype, device=levels.device)
        z = levels / maxima
        if validate:
            self._check(levels, z, "level")
        return z.clamp(0.0, 1.0)

    def decode(
        self, z: LevelValue, *, device: torch.device | str | None = None, validate: bool = True
    ) -> Tensor:
        """z `(B, D)` or `(D,)` in [0, 1] back to physical levels `(B, D)`."""
        z = self._levels_tensor(z, device)
        maxima = torch.tensor(self.max_levels, dtype=z.dtype, device=z.device)
        levels = z * maxima
        if validate:
            self._check(levels, z, "z")
        return levels.clamp(min=torch.zeros_like(maxima), max=maxima)

    def levels_to_z(
        self, blur_sigma: LevelValue, noise_sigma: LevelValue, *, validate: bool = True
    ) -> Tensor:
        """z `(B, D)` (D = 2 for the default codec) for blur and noise levels given as numbers or `(B,)`."""
        for name in ("blur", "noise"):
            if name not in self.names:
                raise ValueError(f"this codec has no {name} factor; it knows {list(self.names)}")
        return self.encode({"blur": blur_sigma, "noise": noise_sigma}, validate=validate)

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
