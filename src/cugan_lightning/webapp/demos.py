"""The page's demo photographs: embedded validation photographs degraded reproducibly at known levels."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEMO_PHOTOS", "DemoPhoto"]


@dataclass(frozen=True)
class DemoPhoto:
    """An embedded photograph, degraded reproducibly (the evaluation's fixed degradation) at known levels."""

    name: str
    blur: float
    noise: float

    @property
    def label(self) -> str:
        return f"{self.name} (blur {self.blur:g}, noise {self.noise:g})"

    @property
    def file_name(self) -> str:
        return f"{self.name}_b{self.blur:g}_n{self.noise:g}.png"


# The validation photographs: the demo never trained on them.
DEMO_PHOTOS = (DemoPhoto("chelsea", 2.0, 30.0), DemoPhoto("coffee", 1.0, 15.0))
