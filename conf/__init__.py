# Makes conf/ importable as the package `cugan_lightning.conf` (see pyproject.toml): Hydra finds the configs at
# pkg://cugan_lightning.conf, in a source checkout and in a wheel install alike.
