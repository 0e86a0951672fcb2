"""python -m cugan_lightning experiment=<name> [overrides]: the Hydra training app."""

from .train import main

if __name__ == "__main__":
    main()
