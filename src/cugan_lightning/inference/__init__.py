"""Restoring images with a trained generator: the :class:`Restorer` API, tiling for large images, device choice.

No argparse here: the command-line tool is :mod:`cugan_lightning.cli.restore`, the notebook session
:mod:`cugan_lightning.interactive`.
"""

from .restorer import Restorer, load_restorer, resolve_device
from .tiling import DEFAULT_TILE_OVERLAP, MIN_TILE, check_tile, tile_spans, tiled_forward

__all__ = [
    "DEFAULT_TILE_OVERLAP",
    "MIN_TILE",
    "Restorer",
    "check_tile",
    "load_restorer",
    "resolve_device",
    "tile_spans",
    "tiled_forward",
]
