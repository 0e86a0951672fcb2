"""``python -m cugan_lightning.data.prepare``: the tool of :mod:`cugan_lightning.cli.prepare`."""

import sys

from ...cli.prepare import main

sys.exit(main())
