"""cugan-lightning: trainable CUGAN / CUnet for interactive image-restoration modulation.

The top level stays light: ``import cugan_lightning.networks`` does not pull in Lightning or Hydra.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_generator", "load_restorer", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "load_generator":
        from .checkpoint import load_generator

        return load_generator
    if name == "load_restorer":
        from .inference import load_restorer

        return load_restorer
    raise AttributeError(f"module 'cugan_lightning' has no attribute '{name}'")
