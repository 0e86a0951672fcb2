"""Kept so that ``python -m cugan_lightning.restore`` and the names once imported from here keep working.

The tool lives in :mod:`cugan_lightning.cli.restore`, the :class:`Restorer` API in
:mod:`cugan_lightning.inference`, image files in :mod:`cugan_lightning.data.io`.
"""

import sys

from .cli.restore import main
from .data.io import read_image_raw as read_input_image
from .data.io import write_image as write_output_image
from .inference import Restorer, load_restorer, resolve_device, tile_spans, tiled_forward

__all__ = [
    "Restorer",
    "load_restorer",
    "main",
    "read_input_image",
    "resolve_device",
    "tile_spans",
    "tiled_forward",
    "write_output_image",
]

if __name__ == "__main__":
    sys.exit(main())
