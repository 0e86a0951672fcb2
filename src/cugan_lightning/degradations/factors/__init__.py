"""Degradation factors as plug-ins (docs/degradations.md, "Factors"): the base class and registry, the built-in
factors (blur, noise, jpeg, poisson, motion) and the pipeline that applies any set of them.

A new factor is one class in a module here (registered with ``@register``, imported below) and one config file,
``conf/degradation/factor/<name>.yaml``.
"""

from cugan_lightning.degradations.factors.base import (
    COMPRESSION,
    OPTICS,
    SENSOR,
    STAGES,
    Factor,
    known_factors,
    lookup,
    make_factor,
    pipeline_order,
    register,
)
from cugan_lightning.degradations.factors.blur import Blur, blur_map
from cugan_lightning.degradations.factors.jpeg import Jpeg
from cugan_lightning.degradations.factors.motion import Motion, motion_blur, motion_kernels
from cugan_lightning.degradations.factors.noise import Noise, noise_map
from cugan_lightning.degradations.factors.pipeline import degrade_levels
from cugan_lightning.degradations.factors.poisson import Poisson, poisson_noise

__all__ = [
    "COMPRESSION",
    "OPTICS",
    "SENSOR",
    "STAGES",
    "Blur",
    "Factor",
    "Jpeg",
    "Motion",
    "Noise",
    "Poisson",
    "blur_map",
    "degrade_levels",
    "known_factors",
    "lookup",
    "make_factor",
    "motion_blur",
    "motion_kernels",
    "noise_map",
    "pipeline_order",
    "poisson_noise",
    "register",
]
