"""ONNX export of a generator: inputs ``image`` and ``z``, the generator config and level codec in the metadata.

The graph is :class:`OnnxRestorer`: inputs ``image`` ``(1 or N, C, H, W)`` float in [0, 1] (C: the generator's
``in_channels``, 3, or 1 for a gray model) and ``z`` ``(N, cond_dim)`` in [0, 1], output ``restored``
``(N, C, H, W)`` clamped to [0, 1]; batch, height and width are
dynamic (H, W >= 4 for the default three scales). The metadata (``metadata_props``) holds the same entries as
an exported safetensors file, so the codec (z = level / max_level per factor) travels with the model.

With ``z_map=True`` the graph is :class:`OnnxMapRestorer`: the condition is a map ``z_map`` ``(N, cond_dim, H, W)``
(docs/restore.md, "Level maps") at the image's size, height and width dynamic.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..atomic import write_bytes_atomic
from ..degradations import LevelCodec
from .metadata import CheckpointError, describe_generator, metadata_strings, parse_metadata_strings

__all__ = ["ONNX_OPSET", "OnnxMapRestorer", "OnnxRestorer", "export_onnx", "read_onnx_metadata"]

ONNX_OPSET = 17


class OnnxRestorer(nn.Module):
    """The exported graph: ``restored = clamp(net_g(image, z), 0, 1)``.

    ``image`` ``(1 or N, C, H, W)`` is broadcast against ``z`` ``(N, cond_dim)``, so one image can be restored
    under N conditions in one call. Padding to the network's multiple is done here with shape-independent ops
    (reflect-pad by ``multiple - 1``, then slice), so the traced graph works for any height and width.
    """

    def __init__(self, net_g: nn.Module) -> None:
        super().__init__()
        self.net_g = net_g
        self.multiple = int(getattr(net_g, "pad_multiple", 1))

    def pad(self, x: Tensor) -> Tensor:
        """``x`` reflect-padded to the network's multiple, with shape-independent ops."""
        height, width = x.shape[-2], x.shape[-1]
        m = self.multiple
        if m > 1:
            # Reflecting by m - 1 and keeping the first ceil(H / m) * m rows gives exactly the reflect padding
            # the network would add itself, but with a fixed pad width the trace does not bake in H and W.
            x = F.pad(x, (0, m - 1, 0, m - 1), mode="reflect")
            x = x[:, :, : (height + m - 1) // m * m, : (width + m - 1) // m * m]
        return x

    def forward(self, image: Tensor, z: Tensor) -> Tensor:
        height, width = image.shape[-2], image.shape[-1]
        x = self.pad(image)
        # adding zeros of z's batch broadcasts a single image against N conditions (exact: x + 0 == x)
        x = x + torch.zeros_like(z[:, :1, None, None])
        return self.net_g(x, z)[:, :, :height, :width].clamp(0.0, 1.0)


class OnnxMapRestorer(OnnxRestorer):
    """The exported graph with a condition map: ``restored = clamp(net_g(image, z_map), 0, 1)`` for ``image``
    ``(N, C, H, W)`` and ``z_map`` ``(N, cond_dim, H, W)``; both are padded alike, so the network's own padding
    and resizing never run in the graph."""

    def forward(self, image: Tensor, z_map: Tensor) -> Tensor:
        height, width = image.shape[-2], image.shape[-1]
        return self.net_g(self.pad(image), self.pad(z_map))[:, :, :height, :width].clamp(0.0, 1.0)


def export_onnx(
    net_g: nn.Module,
    codec: LevelCodec,
    path: str | Path,
    *,
    kind: str = "cunet",
    opset: int = ONNX_OPSET,
    z_map: bool = False,
    **extra: Any,
) -> Path:
    """Export ``net_g`` as an :class:`OnnxRestorer` graph (``z_map``: an :class:`OnnxMapRestorer`) with dynamic
    batch / height / width; written atomically.

    Uses the TorchScript-based exporter: it traces the shape arithmetic, while the torch.export-based one
    specialises the image / condition batch broadcast.
    """
    import onnx

    wrapper = (OnnxMapRestorer if z_map else OnnxRestorer)(net_g).eval().cpu()
    cond_dim = codec.cond_dim
    channels = int(getattr(net_g, "in_channels", 3))  # 1: a gray model
    image = torch.rand(1, channels, 37, 45)
    z = torch.rand(1, cond_dim, 37, 45) if z_map else torch.full((2, cond_dim), 0.5)
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about the network's Python-side shape checks; those are constant for every input the
        # wrapper produces (already padded to the multiple), so the graph stays valid for other sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (image, z),
            buffer,
            input_names=["image", "z_map" if z_map else "z"],
            output_names=["restored"],
            dynamic_axes=(
                {"image": axes, "z_map": axes, "restored": axes}
                if z_map
                else {
                    "image": {0: "image_batch", 2: "height", 3: "width"},
                    "z": {0: "batch"},
                    "restored": axes,
                }
            ),
            opset_version=opset,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    metadata = metadata_strings(describe_generator(kind, net_g, codec, **extra))
    factors = ", ".join(f"{name} {codec.describe(i)}" for i, name in enumerate(codec.names))
    condition = f"z_map (N, {cond_dim}, H, W)" if z_map else f"z (N, {cond_dim})"
    image_batch = "N" if z_map else "1 or N"
    metadata["inputs"] = (
        f"image ({image_batch}, {channels}, H, W) float32 in [0, 1]; {condition} in [0, 1], from the codec's "
        f"factors: {factors}"
    )
    metadata["outputs"] = f"restored (N, {channels}, H, W) float32 in [0, 1]"
    metadata["factors"] = ", ".join(codec.names)  # z's entries, in order (the codec has their ranges)
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "cugan-lightning"
    model.doc_string = (
        "CUnet / CUGAN restoration with interactive modulation; see metadata_props for the codec."
    )
    return write_bytes_atomic(Path(path), model.SerializeToString())


def read_onnx_metadata(path: str | Path) -> tuple[dict[str, Any], LevelCodec]:
    """The generator description and the level codec stored in an exported ONNX model."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX file '{path}' does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises its own DecodeError for a file that is not a model
        raise CheckpointError(f"cannot read ONNX file '{path}': {' '.join(str(err).split())}") from None
    metadata = parse_metadata_strings({p.key: p.value for p in model.metadata_props}, str(path))
    return metadata, LevelCodec.from_dict(metadata["codec"])
