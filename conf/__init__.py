"""The Hydra configs, importable as the package ``cugan_lightning.conf`` (setup.py maps the repository's conf/ there).

Hydra finds them at ``pkg://cugan_lightning.conf`` in a source checkout and in a wheel install alike. Importing
this package, which Hydra does before it reads any config (``initialize_config_module``, ``@hydra.main`` with
that path), registers the resolvers the configs use, so a config composes with nothing else imported:

- ``${cugan.len:LIST}``: its length (the number of scales, or of codec factors: a condition's width);
- ``${cugan.settings:paper}`` / ``${cugan.settings:paper,jpeg}``: the evaluation settings as lists, read from
  :mod:`cugan_lightning.degradations.grid`, the one place they are written;
- ``${cugan.sweep:paper}``: the same settings as a sweep's values (``[0,30],[0,50],...``);
- ``${cugan.join:LIST}``: a list as a sweep's values (``0.0,0.1,...``);
- ``${cugan.max_levels:NAMES,FACTOR_CONFIGS}``: the codec's ``max_levels`` for the factors picked by name, from
  their config files (``degradation.factor.<name>``; JPEG: ``102 - quality_min``);
- ``${cugan.required:KEY}``: a setting the user must give on the command line (``???`` cannot be merged over a
  default: OmegaConf keeps the default), an error naming ``KEY`` when it is read without one.
"""

from omegaconf import ListConfig, OmegaConf

from cugan_lightning.degradations.factors import make_factor
from cugan_lightning.degradations.grid import SETTING_LISTS


def _settings(*names: str) -> list[list[float]]:
    unknown = [name for name in names if name not in SETTING_LISTS]
    if unknown or not names:
        raise ValueError(
            f"unknown setting list {unknown or names}; use one or more of {sorted(SETTING_LISTS)}"
        )
    return [[*setting] for name in names for setting in SETTING_LISTS[name]]


def _sweep(*names: str) -> str:
    return ",".join(f"[{','.join(f'{v:g}' for v in setting)}]" for setting in _settings(*names))


def _max_levels(names, configs) -> ListConfig:
    configs = OmegaConf.to_container(configs, resolve=True) if configs is not None else {}
    # a ListConfig, not a list: OmegaConf.resolve (Hydra's instantiate) stores it in place of the interpolation
    return ListConfig([make_factor(name, **(configs.get(name) or {})).codec_max for name in names])


def _required(key: str) -> str:
    raise ValueError(f"{key} is required: give {key}=FOLDER on the command line (docs/own-images.md)")


OmegaConf.register_new_resolver("cugan.required", _required, replace=True)
OmegaConf.register_new_resolver("cugan.max_levels", _max_levels, replace=True)
OmegaConf.register_new_resolver("cugan.len", lambda value: len(value), replace=True)
OmegaConf.register_new_resolver("cugan.settings", _settings, replace=True)
OmegaConf.register_new_resolver("cugan.sweep", _sweep, replace=True)
OmegaConf.register_new_resolver("cugan.join", lambda values: ",".join(str(v) for v in values), replace=True)
