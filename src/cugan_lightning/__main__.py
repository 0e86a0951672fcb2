"""``python -m cugan_lightning experiment=<name> [overrides]``: the training app (:mod:`.apps.train`, also
``cugan-train``)."""

from .apps.train import main

if __name__ == "__main__":
    main()
