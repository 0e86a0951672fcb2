"""Random degradation levels for training (docs/degradations.md) and stable seeds for reproducible draws.

Every draw comes from an explicit `torch.Generator`; nothing here touches torch's global generator, numpy or
`random`. Seeding a fresh generator from (run seed, iteration, rank) with `make_generator` makes a resumed run and
every DDP rank draw exactly what an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import math
import operator
from dataclasses import dataclass

import torch
from torch import Tensor

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

    Three factors (``factors=("blur", "noise", "jpeg")``, CResMD's): `p_groups` gives the probabilities of one,
    two and all three factors being active, every set of that size equally likely. An active JPEG factor draws a
    whole quality in `jpeg_quality_min..jpeg_quality_max` (its label counts down from the best quality, so the
    Beta shape weighs mild compression as it weighs mild blur and noise); inactive means quality 0, none.

    An active level is `label * step` with `label = round(Beta(beta_a, beta_b) * max_label)` and
    `max_label = max / step`. `fixed=(blur, noise[, quality])` returns those levels for every sample (baselines
    trained on one level).
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

    def __post_init__(self) -> None:
        factors = tuple(self.factors)
        if factors not in (("blur", "noise"), ("blur", "noise", "jpeg")):
            raise ValueError(f"factors must be [blur, noise] or [blur, noise, jpeg], got {list(factors)}")
        object.__setattr__(self, "factors", factors)
        groups = tuple(float(p) for p in self.p_groups)
        if len(groups) != 3 or any(not 0 <= p <= 1 for p in groups) or abs(sum(groups) - 1) > 1e-6:
            raise ValueError(
                f"p_groups gives the probabilities of 1, 2 and 3 active factors summing to 1, got {groups}"
            )
        object.__setattr__(self, "p_groups", groups)
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
        if self.fixed is not None:
            # Accept any pair-like value (a list from a config file, say) and store a plain tuple.
            fixed = tuple(float(v) for v in self.fixed)
            if len(fixed) not in (2, len(factors)):
                raise ValueError(
                    f"fixed must be (blur sigma, noise sigma[, jpeg quality]), got {self.fixed!r}"
                )
            for name, value, maximum in (
                ("blur", fixed[0], self.blur_max),
                ("noise", fixed[1], self.noise_max),
            ):
                if not 0.0 <= value <= maximum:
                    raise ValueError(f"fixed {name} level {value:g} is outside 0..{maximum:g}")
            if len(fixed) == 3 and fixed[2] != 0 and not low <= fixed[2] <= high:
                raise ValueError(f"fixed jpeg quality {fixed[2]:g} is outside {low}..{high} (0: none)")
            object.__setattr__(self, "fixed", fixed)

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
        """Levels of one batch by factor name, each ``(B,)`` float32 (``jpeg``: a quality, 0 for none)."""
        if len(self.factors) == 2 or self.fixed is not None:
            blur, noise = self.sample(batch_size, generator, device)
            levels = {"blur": blur, "noise": noise}
            if len(self.factors) == 3:
                quality = self.fixed[2] if self.fixed is not None and len(self.fixed) == 3 else 0.0
                levels["jpeg"] = torch.full_like(blur, quality)
            return levels
        device = generator.device if device is None else device
        draw = dict(generator=generator, dtype=torch.float64, device=generator.device)
        u_count = torch.rand(batch_size, **draw)
        first, second = self.p_groups[0], self.p_groups[0] + self.p_groups[1]
        active_count = 1 + (u_count >= first).long() + (u_count >= second).long()
        # a uniformly random set of that size: the factors with the smallest random keys
        ranks = torch.rand(batch_size, 3, **draw).argsort(dim=1).argsort(dim=1)
        active = ranks < active_count[:, None]
        blur = self._levels(batch_size, generator, self.blur_max, self.blur_max_label)
        noise = self._levels(batch_size, generator, self.noise_max, self.noise_max_label)
        span = self.jpeg_quality_max - self.jpeg_quality_min
        labels = torch.round(sample_beta(self.beta_a, self.beta_b, batch_size, generator) * span)
        quality = self.jpeg_quality_max - labels
        out = {}
        for index, (name, values) in enumerate((("blur", blur), ("noise", noise), ("jpeg", quality))):
            kept = torch.where(active[:, index], values, torch.zeros_like(values))
            out[name] = kept.to(device=device, dtype=torch.float32)
        return out

    def _levels(self, n: int, generator: torch.Generator, maximum: float, max_label: int) -> Tensor:
        labels = torch.round(sample_beta(self.beta_a, self.beta_b, n, generator) * max_label)
        # label * max / max_label rounds once, so label 37 of 40 gives the float nearest 3.7.
        return labels * maximum / max_label
