"""Every generator file in and out: the one place that opens a checkpoint or writes one (pure torch).

- read (data only, ``weights_only``): training ``.ckpt`` files, exported ``.safetensors``, and the authors'
  released generator (their key layout, attached to the paper's codec): :func:`read_generator_file`,
  :func:`load_generator`, :func:`read_checkpoint`;
- tell the kind (``cunet``, ``cugan``, ``unet``, ``ugan``, ``dni``, ``released``) from the metadata without
  loading the tensors: :func:`checkpoint_kind`;
- compare two files' architecture and codec, naming each difference: :func:`generator_differences`,
  :func:`check_same_architecture`; load a stage-1 start into a network: :func:`load_weights_into`;
- write atomically: :func:`save_generator_checkpoint`, :func:`save_safetensors_generator`, :func:`export_onnx`.

Metadata layout and kinds: :mod:`.metadata`; the released layout: :mod:`.released`.
"""

from .compare import check_same_architecture, check_state_dicts_match
from .metadata import (
    CHECKPOINT_KEY,
    FORMAT_TAG,
    FORMAT_VERSION,
    GAN_KINDS,
    GENERATOR_KINDS,
    KINDS,
    MSE_KINDS,
    CheckpointError,
    IncompatibleCheckpointsError,
    baseline_level,
    build_generator,
    describe_generator,
    generator_differences,
    kind_of,
)
from .onnx import OnnxRestorer, export_onnx, read_onnx_metadata
from .read import (
    GENERATOR_PREFIX,
    GeneratorFile,
    checkpoint_kind,
    generator_state_dict,
    load_generator,
    load_safetensors_generator,
    load_weights_into,
    read_checkpoint,
    read_generator_file,
    read_safetensors_generator,
)
from .write import save_generator_checkpoint, save_safetensors_generator

__all__ = [
    "CHECKPOINT_KEY",
    "FORMAT_TAG",
    "FORMAT_VERSION",
    "GAN_KINDS",
    "GENERATOR_KINDS",
    "GENERATOR_PREFIX",
    "KINDS",
    "MSE_KINDS",
    "CheckpointError",
    "GeneratorFile",
    "IncompatibleCheckpointsError",
    "OnnxRestorer",
    "baseline_level",
    "build_generator",
    "check_same_architecture",
    "check_state_dicts_match",
    "checkpoint_kind",
    "describe_generator",
    "export_onnx",
    "generator_differences",
    "generator_state_dict",
    "kind_of",
    "load_generator",
    "load_safetensors_generator",
    "load_weights_into",
    "read_checkpoint",
    "read_generator_file",
    "read_onnx_metadata",
    "read_safetensors_generator",
    "save_generator_checkpoint",
    "save_safetensors_generator",
]
