"""Kept so that ``python -m cugan_lightning.demo`` keeps working; the demo lives in :mod:`cugan_lightning.cli.demo`."""

import sys

from .cli.demo import cli, gain_table, main

__all__ = ["cli", "gain_table", "main"]

if __name__ == "__main__":
    sys.exit(main())
