"""Export a generator (or a DNI blend of two) to safetensors or ONNX, with its config and level codec.

Command line::

    python -m cugan_lightning.export --ckpt MSE.ckpt --format safetensors [-o model.safetensors]
    python -m cugan_lightning.export --ckpt MSE.ckpt --gan-ckpt GAN.ckpt --alpha 0.5 --format onnx [-o m.onnx]

- safetensors: the generator's state dict; the file's string metadata holds ``format``, ``kind``, ``generator``
  (class and constructor config, JSON) and ``codec`` (JSON), so :func:`load_safetensors_generator` (and
  :func:`cugan_lightning.checkpoint.load_generator`) rebuild the network without a training checkpoint.
- ONNX: inputs ``image`` ``(1 or N, 3, H, W)`` float in [0, 1] and ``z`` ``(N, cond_dim)`` in [0, 1], output
  ``restored`` ``(N, 3, H, W)`` clamped to [0, 1]; batch, height and width are dynamic (H, W >= 4 for the default
  three scales). The codec (z = level / max_level per factor) and the generator config are stored in the model's
  ``metadata_props``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import FORMAT_VERSION, CheckpointError, build_generator, describe_generator
from .degradations import LevelCodec
from .dni import (
    ALPHA_HELP,
    CliArgumentParser,
    CliError,
    build_source_generator,
    check_alpha,
    check_output_path,
    interpolate,
    parse_alpha,
    read_generator_source,
    run_cli,
)

__all__ = [
    "FORMAT_TAG",
    "OnnxRestorer",
    "export_onnx",
    "load_safetensors_generator",
    "main",
    "read_onnx_metadata",
    "read_safetensors_generator",
    "save_safetensors_generator",
]

FORMAT_TAG = f"cugan-lightning/{FORMAT_VERSION}"
"""Value of the ``format`` metadata entry in exported safetensors and ONNX files."""

ONNX_OPSET = 17


def _atomic_write_bytes(data: bytes, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def metadata_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Checkpoint metadata (``describe_generator`` output) as the string key/values safetensors and ONNX store."""
    out = {"format": FORMAT_TAG}
    for key, value in metadata.items():
        if key == "format":
            continue
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def parse_metadata_strings(strings: Mapping[str, str], where: str) -> dict[str, Any]:
    """Inverse of :func:`metadata_strings`; raises :class:`CheckpointError` when our entries are missing."""
    if strings.get("format") != FORMAT_TAG or "generator" not in strings or "codec" not in strings:
        raise CheckpointError(
            f"'{where}' has no cugan-lightning metadata (format {FORMAT_TAG!r}, generator, codec); "
            "write it with `python -m cugan_lightning.export`"
        )
    out: dict[str, Any] = {"format": FORMAT_VERSION}
    for key, value in strings.items():
        if key == "format":
            continue
        if key == "kind":
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


# --------------------------------------------------------------------------------------------- safetensors


def save_safetensors_generator(
    path: str | Path, net_g: nn.Module, codec: LevelCodec, kind: str = "cunet", **extra: Any
) -> Path:
    """Write ``net_g``'s state dict and its description (config, codec, kind, ``extra``) atomically."""
    from safetensors.torch import save

    # clones: safetensors refuses tensors that share storage, and wants them contiguous on the CPU
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in net_g.state_dict().items()}
    metadata = metadata_strings(describe_generator(kind, net_g, codec, **extra))
    return _atomic_write_bytes(save(tensors, metadata=metadata), Path(path))


def read_safetensors_generator(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The checkpoint-style metadata and the state dict of an exported safetensors file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"safetensors file '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            strings = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    except Exception as err:  # safetensors raises its own error type for a bad header
        raise CheckpointError(
            f"cannot read safetensors file '{path}': {' '.join(str(err).split())}"
        ) from None
    metadata = parse_metadata_strings(strings, str(path))
    return metadata, {k: v.to(map_location) for k, v in state.items()}


def load_safetensors_generator(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, LevelCodec]:
    """Rebuild ``(net_g, codec)`` from an exported safetensors file; ``net_g`` is in eval mode."""
    metadata, state = read_safetensors_generator(path, map_location)
    net_g = build_generator(metadata)
    try:
        net_g.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = " ".join(str(err).split()).split(". ")[0]
        raise CheckpointError(
            f"weights in '{path}' do not fit the generator config it records: {first}"
        ) from None
    return net_g.to(map_location).eval(), LevelCodec.from_dict(metadata["codec"])


# -------------------------------------------------------------------------------------------------------- ONNX


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

    def forward(self, image: Tensor, z: Tensor) -> Tensor:
        height, width = image.shape[-2], image.shape[-1]
        x = image
        m = self.multiple
        if m > 1:
            # Reflecting by m - 1 and keeping the first ceil(H / m) * m rows gives exactly the reflect padding
            # the network would add itself, but with a fixed pad width the trace does not bake in H and W.
            x = F.pad(x, (0, m - 1, 0, m - 1), mode="reflect")
            x = x[:, :, : (height + m - 1) // m * m, : (width + m - 1) // m * m]
        # adding zeros of z's batch broadcasts a single image against N conditions (exact: x + 0 == x)
        x = x + torch.zeros_like(z[:, :1, None, None])
        return self.net_g(x, z)[:, :, :height, :width].clamp(0.0, 1.0)


def export_onnx(
    net_g: nn.Module,
    codec: LevelCodec,
    path: str | Path,
    *,
    kind: str = "cunet",
    opset: int = ONNX_OPSET,
    **extra: Any,
) -> Path:
    """Export ``net_g`` as an :class:`OnnxRestorer` graph with dynamic batch / height / width; written atomically.

    Uses the TorchScript-based exporter: it traces the shape arithmetic, while the torch.export-based one
    specialises the image / condition batch broadcast.
    """
    import onnx

    wrapper = OnnxRestorer(net_g).eval().cpu()
    cond_dim = codec.cond_dim
    image = torch.rand(1, getattr(net_g, "in_channels", 3), 32, 48)
    z = torch.full((2, cond_dim), 0.5)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about the network's Python-side shape checks; those are constant for every input the
        # wrapper produces (already padded to the multiple), so the graph stays valid for other sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (image, z),
            buffer,
            input_names=["image", "z"],
            output_names=["restored"],
            dynamic_axes={
                "image": {0: "image_batch", 2: "height", 3: "width"},
                "z": {0: "batch"},
                "restored": {0: "batch", 2: "height", 3: "width"},
            },
            opset_version=opset,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    metadata = metadata_strings(describe_generator(kind, net_g, codec, **extra))
    metadata["inputs"] = (
        f"image (1 or N, 3, H, W) float32 in [0, 1]; z (N, {cond_dim}) in [0, 1], z = level / max_level for "
        f"{', '.join(f'{n} 0..{m:g}' for n, m in zip(codec.names, codec.max_levels, strict=True))}"
    )
    metadata["outputs"] = "restored (N, 3, H, W) float32 in [0, 1]"
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "cugan-lightning"
    model.doc_string = (
        "CUnet / CUGAN restoration with interactive modulation; see metadata_props for the codec."
    )
    return _atomic_write_bytes(model.SerializeToString(), Path(path))


def read_onnx_metadata(path: str | Path) -> tuple[dict[str, Any], LevelCodec]:
    """The generator description and the level codec stored in an exported ONNX model."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    metadata = parse_metadata_strings({p.key: p.value for p in model.metadata_props}, str(path))
    return metadata, LevelCodec.from_dict(metadata["codec"])


# ----------------------------------------------------------------------------------------------------- command

FORMATS = {"onnx": ".onnx", "safetensors": ".safetensors"}


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="python -m cugan_lightning.export",
        description="Export a generator checkpoint (or a DNI blend of an MSE and a GAN checkpoint) "
        "to safetensors or ONNX, with its config and level codec.",
    )
    parser.add_argument("--ckpt", required=True, type=Path, help="generator checkpoint (the MSE end for DNI)")
    parser.add_argument("--gan-ckpt", type=Path, help="GAN checkpoint to blend with (needs --alpha)")
    parser.add_argument("--alpha", type=parse_alpha, help=f"DNI weight in [0, 1]: {ALPHA_HELP}")
    parser.add_argument(
        "--format", choices=sorted(FORMATS), help="output format (default: from -o's extension)"
    )
    parser.add_argument("-o", "--output", type=Path, help="output file (default: beside the checkpoint)")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")
    return parser


def _resolve_format(args: argparse.Namespace) -> tuple[str, Path]:
    by_suffix = {v: k for k, v in FORMATS.items()}
    fmt = args.format
    if args.output is not None:
        suffix = args.output.suffix.lower()
        if fmt is None:
            fmt = by_suffix.get(suffix)
            if fmt is None:
                raise CliError(
                    f"cannot tell the format from '{args.output}'; pass --format onnx or safetensors"
                )
        elif suffix != FORMATS[fmt]:
            raise CliError(f"output '{args.output}' does not end in {FORMATS[fmt]} (--format {fmt})")
        return fmt, args.output
    if fmt is None:
        raise CliError(
            "give --format onnx or --format safetensors (or an -o file ending in .onnx / .safetensors)"
        )
    stem = args.ckpt.stem if args.gan_ckpt is None else f"{args.ckpt.stem}_dni{args.alpha:g}"
    return fmt, args.ckpt.with_name(stem + FORMATS[fmt])


def _run(args: argparse.Namespace) -> None:
    if args.alpha is not None and args.gan_ckpt is None:
        raise CliError("--alpha blends two models and needs --gan-ckpt")
    if args.gan_ckpt is not None and args.alpha is None:
        raise CliError(f"--gan-ckpt needs --alpha in [0, 1] ({ALPHA_HELP})")
    if args.alpha is not None:
        check_alpha(args.alpha)
    fmt, output = _resolve_format(args)
    check_output_path(output)
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise CliError(
                "ONNX export needs the onnx package: pip install 'cugan-lightning[export]'"
            ) from None
    if args.gan_ckpt is not None:
        net_g, codec = interpolate(args.ckpt, args.gan_ckpt, args.alpha)
        kind = "dni"
        extra = {
            "dni": {
                "alpha": args.alpha,
                "mse_checkpoint": str(args.ckpt),
                "gan_checkpoint": str(args.gan_ckpt),
            }
        }
    else:
        source = read_generator_source(args.ckpt, "model")
        net_g, codec, kind = build_source_generator(source), source.codec, source.kind
        extra = {"dni": source.metadata["dni"]} if "dni" in source.metadata else {}
    if fmt == "safetensors":
        save_safetensors_generator(output, net_g, codec, kind=kind, **extra)
    else:
        export_onnx(net_g, codec, output, kind=kind, opset=args.opset, **extra)
    print(f"wrote {output}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cugan_lightning.export --ckpt X.ckpt --format onnx|safetensors``; returns the exit code."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
