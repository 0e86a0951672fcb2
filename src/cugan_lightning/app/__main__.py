"""``python -m cugan_lightning.app``: the web page; the tool is :mod:`cugan_lightning.cli.app`."""

import sys

from ..cli.app import main

if __name__ == "__main__":
    sys.exit(main())
