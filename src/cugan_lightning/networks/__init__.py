"""Networks of CUGAN in pure torch: the CUnet generator with its condition network C_G, the discriminator with
global feature modulation (C_D) and the frozen VGG19 feature extractor of the perceptual loss.

Condition-network parameters are the ones whose name starts with ``cond.`` (:func:`is_cond_parameter`,
:func:`count_parameters`); everything else is the base network.
"""

from cugan_lightning.networks.cunet import (
    COND_PREFIX,
    CUnet,
    ModulatedResidualBlock,
    count_parameters,
    is_cond_parameter,
    kaiming_init_,
)
from cugan_lightning.networks.discriminator import CUGANDiscriminator, GFMCondition
from cugan_lightning.networks.estimator import LevelEstimator
from cugan_lightning.networks.pretrained import (
    PretrainedWeightsMissingError,
    ensure_imagenet_file,
    imagenet_file,
    matches_published_hash,
)
from cugan_lightning.networks.released_keys import load_released_state_dict
from cugan_lightning.networks.vgg import VGG19_LAYERS, VGGFeatureExtractor, imagenet_weights_path, layer_index

__all__ = [
    "COND_PREFIX",
    "VGG19_LAYERS",
    "CUGANDiscriminator",
    "CUnet",
    "LevelEstimator",
    "GFMCondition",
    "ModulatedResidualBlock",
    "PretrainedWeightsMissingError",
    "VGGFeatureExtractor",
    "count_parameters",
    "ensure_imagenet_file",
    "imagenet_file",
    "imagenet_weights_path",
    "is_cond_parameter",
    "kaiming_init_",
    "layer_index",
    "load_released_state_dict",
    "matches_published_hash",
]
