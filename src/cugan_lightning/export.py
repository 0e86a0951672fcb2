"""Kept so that ``python -m cugan_lightning.export`` and the names once imported from here keep working.

The tool lives in :mod:`cugan_lightning.cli.export`, safetensors and ONNX files in
:mod:`cugan_lightning.checkpoint`.
"""

import sys

from .checkpoint import (
    FORMAT_TAG,
    OnnxRestorer,
    export_onnx,
    load_safetensors_generator,
    read_onnx_metadata,
    read_safetensors_generator,
    save_safetensors_generator,
)
from .cli.export import main

__all__ = [
    "FORMAT_TAG",
    "OnnxRestorer",
    "export_onnx",
    "load_safetensors_generator",
    "main",
    "read_onnx_metadata",
    "read_safetensors_generator",
    "save_safetensors_generator",
]

if __name__ == "__main__":
    sys.exit(main())
