"""``python -m cugan_lightning.dni``: the blending tool of :mod:`cugan_lightning.cli.dni`."""

import sys

from ..cli.dni import main

sys.exit(main())
