"""Random degradation levels for training (docs/degradations.md) and stable seeds for reproducible draws.

Every draw comes from an explicit `torch.Generator`; nothing here touches torch's global generator, numpy or
`random`. Seeding a fresh generator from (run seed, iteration, rank) with `make_generator` makes a resumed run and
every DDP rank draw exactly what an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from cugan_lightning.degradations.factors import Factor, lookup, make_factor

__all__ = ["LevelSampler", "make_generator", "sample_beta", "sample_gamma", "seed_for"]


def seed_for(*parts: int | str) -> int:
    """A stable 63-bit seed from ints and strings, e.g. `seed_for(run_seed, iteration, rank)`.

    Uses blake2b of a length-prefixed, typed encoding, so it is the same in every process and on every machine
    (unlike Python's salted `hash`) and `("1", 2)` differs from `(1, 2)` and from `("12",)`.
    """
    digest = hashlib.blake2b(digest_size=8, person=b"cugan-seed-v1")
    for part in parts:
        if isinstance(part, str):
            data = b"s" + part.encode("utf-8")
        else:
            try:
                data = b"i" + str(operator.index(part)).encode("ascii")
            except TypeError:
                raise TypeError(f"seed parts must be ints or strings, got {type(part).__name__}") from None
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return int.from_bytes(digest.digest(), "big") >> 1


def make_generator(*parts: int | str, device: torch.device | str = "cpu") -> torch.Generator:
    """A `torch.Generator` on `device` seeded with `seed_for(*parts)`."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed_for(*parts))
    return generator


def _check_shape_parameter(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _uniform_open_closed(n: int, generator: torch.Generator) -> Tensor:
    """Uniform samples in (0, 1] (float64), so that their logarithm is finite."""
    return 1.0 - torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device)


def _log_gamma_sample(alpha: float, n: int, generator: torch.Generator) -> Tensor:
    """Logarithms of n Gamma(alpha, 1) samples `(n,)` float64, by Marsaglia and Tsang (2000).

    Working with logarithms keeps the a < 1 boost (which multiplies by U^(1/a)) from underflowing to 0.
    """
    boosted = alpha < 1
    shape = alpha + 1 if boosted else alpha
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=torch.float64, device=generator.device)
    pending = torch.arange(n, device=generator.device)
    # Rejection sampling accepts > 95% per round, so this loop runs a handful of times.
    while pending.numel() > 0:
        m = pending.numel()
        x = torch.randn(m, generator=generator, dtype=torch.float64, device=generator.device)
        log_u = torch.log(_uniform_open_closed(m, generator))
        v = (1.0 + c * x) ** 3
        valid = v > 0
        log_v = torch.log(torch.where(valid, v, torch.ones_like(v)))
        accept = valid & (log_u < 0.5 * x * x + d - d * v + d * log_v)
        out[pending[accept]] = math.log(d) + log_v[accept]
        pending = pending[~accept]
    if boosted:
        out = out + torch.log(_uniform_open_closed(n, generator)) / alpha
    return out


def sample_gamma(alpha: float, n: int, generator: torch.Generator) -> Tensor:
    """n samples `(n,)` float64 of Gamma(alpha, 1), drawn only from `generator` (on its device)."""
    alpha = _check_shape_parameter(alpha, "gamma shape alpha")
    return torch.exp(_log_gamma_sample(alpha, n, generator))


def sample_beta(a: float, b: float, n: int, generator: torch.Generator) -> Tensor:
    """n samples `(n,)` float64 of Beta(a, b) in [0, 1], drawn only from `generator` (on its device)."""
    a = _check_shape_parameter(a, "beta a")
    b = _check_shape_parameter(b, "beta b")
    if a == 1.0 and b == 1.0:
        return torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device)
    # X / (X + Y) = sigmoid(log X - log Y), which stays finite when both samples are tiny.
    return torch.sigmoid(_log_gamma_sample(a, n, generator) - _log_gamma_sample(b, n, generator))


def _max_label(maximum: float, step: float, name: str) -> int:
    labels = maximum / step
    if abs(labels - round(labels)) > 1e-6 * max(1.0, labels):
        raise ValueError(f"{name}_max {maximum:g} must be a whole number of {name}_step {step:g}")
    return round(labels)


@dataclass(frozen=True)
class LevelSampler:
    """Draws degradation levels for training batches (docs/degradations.md).

    Two factors (the paper): with probability `p_single` a sample gets one degradation (blur only with
    probability `p_blur_given_single`, else noise only; the other level is 0), otherwise both.

    Any other set of ``factors`` (CResMD's ``("blur", "noise", "jpeg")``, or any registered ones: docs/
    degradations.md, "Factors"): `p_groups` gives the probabilities of 1, 2, .., n factors being active, every
    set of that size equally likely. An active JPEG factor draws a whole quality in
    `jpeg_quality_min..jpeg_quality_max` (its label counts down from the best quality, so the Beta shape weighs
    mild compression as it weighs mild blur and noise); inactive means quality 0, none.

    An active level is `label * step` with `label = round(Beta(beta_a, beta_b) * max_label)` and
    `max_label = max / step`. Blur, noise and JPEG take their ranges from the fields below; other factors from
    `levels` (name -> the settings of its config file, e.g. ``{"poisson": {"max_level": 25, "step": 1}}``), or
    their defaults. `fixed` (one level per factor, or `(blur, noise)` for the first two) returns those levels for
    every sample (baselines trained on one level).
    """

    blur_max: float = 4.0
    blur_step: float = 0.1
    noise_max: float = 50.0
    noise_step: float = 1.0
    p_single: float = 0.5
    p_blur_given_single: float = 0.5
    beta_a: float = 1.0
    beta_b: float = 1.0
    fixed: tuple[float, ...] | None = None
    factors: tuple[str, ...] = ("blur", "noise")
    p_groups: tuple[float, ...] = (0.4, 0.3, 0.3)
    jpeg_quality_min: int = 10
    jpeg_quality_max: int = 100
    levels: Mapping[str, Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        factors = tuple(self.factors)
        if not factors or len(set(factors)) != len(factors):
            raise ValueError(
                f"factors must be a non-empty list of distinct factor names, got {list(factors)}"
            )
        for name in factors:
            lookup(name)  # an unknown name is an error listing the known ones
        object.__setattr__(self, "factors", factors)
        groups = tuple(float(p) for p in self.p_groups)
        count = len(factors)
        if (
            any(not 0 <= p <= 1 for p in groups)
            or abs(sum(groups) - 1) > 1e-6
            or (not self.paper_groups and len(groups) != count)
        ):
            raise ValueError(
                f"p_groups gives the probabilities of 1..{count} active factors (one each) summing to 1, "
                f"got {list(groups)}"
            )
        object.__setattr__(self, "p_groups", groups)
        settings = {str(k): dict(v or {}) for k, v in (self.levels or {}).items()}
        object.__setattr__(self, "levels", settings)
        low, high = int(self.jpeg_quality_min), int(self.jpeg_quality_max)
        if not 1 <= low <= high <= 100:
            raise ValueError(
                f"jpeg qualities need 1 <= jpeg_quality_min <= jpeg_quality_max <= 100, got {low}, {high}"
            )
        object.__setattr__(self, "jpeg_quality_min", low)
        object.__setattr__(self, "jpeg_quality_max", high)
        for name in ("blur_max", "blur_step", "noise_max", "noise_step", "beta_a", "beta_b"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
            object.__setattr__(self, name, value)
        for name in ("p_single", "p_blur_given_single"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability and must be in [0, 1], got {value}")
            object.__setattr__(self, name, value)
        _max_label(self.blur_max, self.blur_step, "blur")
        _max_label(self.noise_max, self.noise_step, "noise")
        objects = self._make_factors()  # checks every factor's settings
        object.__setattr__(self, "_factors", objects)  # made once: sampling a batch reads them
        if self.fixed is not None:
            # Accept any pair-like value (a list from a config file, say) and store a plain tuple.
            fixed = tuple(float(v) for v in self.fixed)
            legacy = factors[:2] == ("blur", "noise") and len(fixed) == 2
            if len(fixed) != len(factors) and not legacy:
                raise ValueError(f"fixed gives one level per factor {list(factors)}, got {self.fixed!r}")
            for name, value in zip(factors, fixed, strict=False):
                if name == "jpeg":
                    if value != 0 and not low <= value <= high:
                        raise ValueError(f"fixed jpeg quality {value:g} is outside {low}..{high} (0: none)")
                elif not 0.0 <= value <= objects[name].max_level:
                    raise ValueError(
                        f"fixed {name} level {value:g} is outside 0..{objects[name].max_level:g}"
                    )
            object.__setattr__(self, "fixed", fixed)

    @property
    def paper_groups(self) -> bool:
        """Whether this is the paper's two-factor sampler (``p_single``; ``p_groups`` unused)."""
        return self.factors == ("blur", "noise")

    def factor_objects(self) -> dict[str, Factor]:
        """The factors with the ranges this sampler draws in, by name in ``factors`` order."""
        return dict(self._factors)

    def _make_factors(self) -> dict[str, Factor]:
        out: dict[str, Factor] = {}
        for name in self.factors:
            if name == "blur":
                out[name] = make_factor(name, max_level=self.blur_max, step=self.blur_step)
            elif name == "noise":
                out[name] = make_factor(name, max_level=self.noise_max, step=self.noise_step)
            elif name == "jpeg":
                out[name] = make_factor(
                    name, quality_min=self.jpeg_quality_min, quality_max=self.jpeg_quality_max
                )
            else:
                out[name] = make_factor(name, **(self.levels or {}).get(name, {}))
        return out

    def maxima(self) -> dict[str, float]:
        """The largest level of each factor (JPEG: the lowest quality, its strongest compression)."""
        return {
            name: float(factor.quality_min) if name == "jpeg" else factor.max_level
            for name, factor in self._factors.items()
        }

    @property
    def blur_max_label(self) -> int:
        """Number of blur steps between 0 and blur_max (40 by default)."""
        return _max_label(self.blur_max, self.blur_step, "blur")

    @property
    def noise_max_label(self) -> int:
        """Number of noise steps between 0 and noise_max (50 by default)."""
        return _max_label(self.noise_max, self.noise_step, "noise")

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw levels for one batch: `(blur_sigma (B,), noise_sigma (B,))` float32.

        Draws happen on the generator's device; the result moves to `device` (default: the generator's device).
        """
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 0:
            raise ValueError(f"batch_size must be an int >= 0, got {batch_size!r}")
        device = generator.device if device is None else device
        if self.fixed is not None:  # (a fixed jpeg quality is added by sample_levels)
            blur = torch.full((batch_size,), self.fixed[0], dtype=torch.float32, device=device)
            noise = torch.full((batch_size,), self.fixed[1], dtype=torch.float32, device=device)
            return blur, noise

        # A fixed number of uniform draws per call keeps the generator's stream aligned whatever the outcome.
        draw = dict(generator=generator, dtype=torch.float64, device=generator.device)
        u_group = torch.rand(batch_size, **draw)
        u_which = torch.rand(batch_size, **draw)
        single = u_group < self.p_single
        blur_only = single & (u_which < self.p_blur_given_single)
        noise_only = single & ~blur_only

        blur = self._levels(batch_size, generator, self.blur_max, self.blur_max_label)
        noise = self._levels(batch_size, generator, self.noise_max, self.noise_max_label)
        blur = torch.where(noise_only, torch.zeros_like(blur), blur)
        noise = torch.where(blur_only, torch.zeros_like(noise), noise)
        return blur.to(device=device, dtype=torch.float32), noise.to(device=device, dtype=torch.float32)

    def sample_levels(
        self,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str | None = None,
    ) -> dict[str, Tensor]:
        """Levels of one batch by factor name (``factors`` order), each ``(B,)`` float32 (``jpeg``: a quality, 0
        for none)."""
        if self.paper_groups:
            blur, noise = self.sample(batch_size, generator, device)
            return {"blur": blur, "noise": noise}
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        device = generator.device if device is None else device
        if self.fixed is not None:
            fixed = (*self.fixed, *[0.0] * (len(self.factors) - len(self.fixed)))
            return {
                name: torch.full((batch_size,), value, dtype=torch.float32, device=device)
                for name, value in zip(self.factors, fixed, strict=True)
            }
        draw = dict(generator=generator, dtype=torch.float64, device=generator.device)
        u_count = torch.rand(batch_size, **draw)
        active_count, bound = torch.ones(batch_size, dtype=torch.long, device=generator.device), 0.0
        for p in self.p_groups[:-1]:  # the running sums in float, as the three-factor sampler always did
            bound = bound + p
            active_count = active_count + (u_count >= bound).long()
        # a uniformly random set of that size: the factors with the smallest random keys
        ranks = torch.rand(batch_size, len(self.factors), **draw).argsort(dim=1).argsort(dim=1)
        active = ranks < active_count[:, None]
        out = {}
        for index, (name, factor) in enumerate(self._factors.items()):
            values = factor.from_unit(sample_beta(self.beta_a, self.beta_b, batch_size, generator))
            kept = torch.where(active[:, index], values, torch.zeros_like(values))
            out[name] = kept.to(device=device, dtype=torch.float32)
        return out

    def _levels(self, n: int, generator: torch.Generator, maximum: float, max_label: int) -> Tensor:
        labels = torch.round(sample_beta(self.beta_a, self.beta_b, n, generator) * max_label)
        # label * max / max_label rounds once, so label 37 of 40 gives the float nearest 3.7.
        return labels * maximum / max_label
