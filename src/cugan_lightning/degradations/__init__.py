"""Batched, device-agnostic degradations (docs/degradations.md): blur, noise, quantisation, level sampling and the codec.

Pure torch: nothing here imports Lightning, Hydra or OmegaConf.
"""

from cugan_lightning.degradations.blur import gaussian_blur, gaussian_kernel1d, gaussian_kernel2d
from cugan_lightning.degradations.codec import LevelCodec
from cugan_lightning.degradations.grid import (
    JPEG_SETTINGS,
    PAPER_SETTINGS,
    degrade_fixed,
    parse_setting,
    setting_levels,
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

__all__ = [
    "JPEG_SETTINGS",
    "PAPER_SETTINGS",
    "LevelCodec",
    "LevelSampler",
    "add_gaussian_noise",
    "clip",
    "degrade",
    "degrade_fixed",
    "gaussian_blur",
    "gaussian_kernel1d",
    "gaussian_kernel2d",
    "jpeg_compress",
    "jpeg_device",
    "make_generator",
    "parse_setting",
    "quantize",
    "sample_beta",
    "sample_gamma",
    "seed_for",
    "setting_levels",
    "setting_name",
]
