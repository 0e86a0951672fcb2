"""The Hydra configs, importable as the package ``cugan_lightning.conf`` (setup.py maps the repository's conf/ there).

Hydra finds them at ``pkg://cugan_lightning.conf`` in a source checkout and in a wheel install alike. Importing
this package, which Hydra does before it reads any config (``initialize_config_module``, ``@hydra.main`` with
that path), registers the resolvers the configs use, so a config composes with nothing else imported.
"""

from omegaconf import OmegaConf

# `${cugan.len:${model.net_g.channels}}`: the number of scales, or of codec factors (a condition's width)
OmegaConf.register_new_resolver("cugan.len", lambda value: len(value), replace=True)
