"""``cugan-export``: a generator file (or a DNI blend of two) to safetensors or ONNX::

    cugan-export --model MSE.ckpt --format safetensors [-o model.safetensors]
    cugan-export --model MSE.ckpt --gan GAN.ckpt --alpha 0.5 --format onnx [-o m.onnx]

Both formats carry the generator config and the level codec (see :mod:`cugan_lightning.checkpoint`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..checkpoint import export_onnx, read_generator_file, save_safetensors_generator
from ..checkpoint.onnx import ONNX_OPSET
from ..dni import interpolate
from ..zoo import is_zoo_reference
from .common import (
    CliArgumentParser,
    CliError,
    add_model_arguments,
    check_model_arguments,
    check_output_path,
    run_cli,
)

FORMATS = {"onnx": ".onnx", "safetensors": ".safetensors"}


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="cugan-export",
        description="Export a generator checkpoint (or a DNI blend of an MSE and a GAN checkpoint) "
        "to safetensors or ONNX, with its config and level codec.",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--format", choices=sorted(FORMATS), help="output format (default: from -o's extension)"
    )
    parser.add_argument("-o", "--output", type=Path, help="output file (default: beside the checkpoint)")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")
    parser.add_argument(
        "--z-map",
        action="store_true",
        help="onnx: take the condition as a map z_map (N, D, H, W) instead of a vector (docs/restore.md)",
    )
    parser.add_argument(
        "--half", action="store_true", help="safetensors: store the weights as float16 (half the size)"
    )
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
    if is_zoo_reference(args.model):
        raise CliError(f"give -o OUTPUT{FORMATS[fmt]}: a zoo model has no folder to write beside")
    model = Path(args.model)
    stem = model.stem if args.gan is None else f"{model.stem}_dni{args.alpha:g}"
    return fmt, model.with_name(stem + FORMATS[fmt])


def _run(args: argparse.Namespace) -> None:
    check_model_arguments(args)
    fmt, output = _resolve_format(args)
    check_output_path(output)
    if args.half and fmt != "safetensors":
        raise CliError("--half is for --format safetensors")
    if args.z_map and fmt != "onnx":
        raise CliError("--z-map is for --format onnx (a safetensors file takes maps as it is)")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise CliError(
                "ONNX export needs the onnx package: pip install 'cugan-lightning[export]'"
            ) from None
    if args.gan is not None:
        net_g, codec = interpolate(args.model, args.gan, args.alpha)
        kind = "dni"
        extra = {
            "dni": {
                "alpha": args.alpha,
                "mse_checkpoint": str(args.model),
                "gan_checkpoint": str(args.gan),
            }
        }
    else:
        source = read_generator_file(args.model, "model")
        net_g, codec, kind = source.build(), source.codec, source.kind
        extra = {key: source.metadata[key] for key in ("dni", "released") if key in source.metadata}
    if fmt == "safetensors":
        save_safetensors_generator(output, net_g, codec, kind=kind, half=args.half, **extra)
    else:
        export_onnx(net_g, codec, output, kind=kind, opset=args.opset, z_map=args.z_map, **extra)
    print(f"wrote {output}")


def main(argv: Sequence[str] | None = None) -> int:
    """``cugan-export --model X.ckpt --format onnx|safetensors``; returns the exit code."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
