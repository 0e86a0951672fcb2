"""Restoring images with a trained generator: the :class:`Restorer` API, previews and tiling for large images,
device choice.

No argparse here: the command-line tool is :mod:`cugan_lightning.apps.restore`, the notebook session
:mod:`cugan_lightning.interactive`.
"""

from .precision import resolve_device
from .restorer import PREVIEW_SIDE, Restorer, load_restorer, preview_size
from .tiling import DEFAULT_TILE_OVERLAP, MIN_TILE, check_tile, tile_spans, tiled_forward

__all__ = [
    "DEFAULT_TILE_OVERLAP",
    "MIN_TILE",
    "PREVIEW_SIDE",
    "Restorer",
    "check_tile",
    "load_restorer",
    "preview_size",
    "resolve_device",
    "tile_spans",
    "tiled_forward",
]
