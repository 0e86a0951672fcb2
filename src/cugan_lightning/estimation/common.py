"""What every estimator returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """One factor's estimated level.

    ``value`` is in the codec's physical units (``None`` when the image says nothing about the factor);
    ``method`` names the estimator; ``exact`` is true only when the level was read, not inferred (a JPEG file's
    tables); ``note`` is one line for a person: how far to trust the value, or why there is none.
    """

    factor: str
    value: float | None
    method: str
    exact: bool = False
    note: str = ""

    def __str__(self) -> str:
        shown = "unknown" if self.value is None else f"{self.value:.2f}".rstrip("0").rstrip(".")
        tail = f" ({self.note})" if self.note else ""
        return f"{self.factor} {shown} by {self.method}{tail}"
