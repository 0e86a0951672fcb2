"""Batched, device-agnostic degradations (docs/degradations.md): the factors (blur, noise, JPEG, Poisson noise,
motion blur; :mod:`.factors`), quantisation, level sampling and the codec.

Pure torch: nothing here imports Lightning, Hydra or OmegaConf.
"""

from cugan_lightning.degradations.blur import gaussian_blur, gaussian_kernel1d, gaussian_kernel2d
from cugan_lightning.degradations.codec import LevelCodec
from cugan_lightning.degradations.factors import Factor, degrade_levels, known_factors, lookup
from cugan_lightning.degradations.grid import (
    GRID_FACTORS,
    JPEG_SETTINGS,
    MOTION_SETTINGS,
    PAPER_SETTINGS,
    POISSON_SETTINGS,
    degrade_fixed,
    parse_setting,
    setting_dict,
    setting_name,
)
from cugan_lightning.degradations.jpeg import jpeg_device
from cugan_lightning.degradations.noise import add_gaussian_noise, clip, degrade, jpeg_compress, quantize
from cugan_lightning.degradations.sampling import (
    LevelSampler,
    make_generator,
    sample_beta,
    sample_gamma,
    seed_for,
)
from cugan_lightning.degradations.spatial import SpatialLevels, blur_map, degrade_map, encode_map, noise_map

__all__ = [
    "GRID_FACTORS",
    "JPEG_SETTINGS",
    "MOTION_SETTINGS",
    "PAPER_SETTINGS",
    "POISSON_SETTINGS",
    "Factor",
    "LevelCodec",
    "LevelSampler",
    "SpatialLevels",
    "add_gaussian_noise",
    "blur_map",
    "clip",
    "degrade",
    "degrade_fixed",
    "degrade_levels",
    "degrade_map",
    "encode_map",
    "gaussian_blur",
    "gaussian_kernel1d",
    "gaussian_kernel2d",
    "jpeg_compress",
    "jpeg_device",
    "known_factors",
    "lookup",
    "make_generator",
    "noise_map",
    "parse_setting",
    "quantize",
    "sample_beta",
    "sample_gamma",
    "seed_for",
    "setting_dict",
    "setting_name",
]
