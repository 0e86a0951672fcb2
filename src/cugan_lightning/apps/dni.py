"""``cugan-dni --model MSE.ckpt --gan GAN.ckpt --alpha 0.3 -o blend.ckpt``: write the DNI blend
``theta = (1 - alpha) * theta_GAN + alpha * theta_MSE`` of G and C_G as a generator checkpoint (kind ``dni``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..checkpoint import save_generator_checkpoint
from ..dni import ALPHA_HELP, interpolate
from .common import (
    CliArgumentParser,
    add_model_arguments,
    check_model_arguments,
    check_output_path,
    run_cli,
)


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="cugan-dni",
        description="Blend an MSE (stage 1) and a GAN (stage 2) checkpoint: "
        "theta = (1 - alpha) * theta_GAN + alpha * theta_MSE over G and C_G.",
    )
    add_model_arguments(parser, pair=True)
    parser.add_argument("-o", "--output", required=True, type=Path, help="output checkpoint (.ckpt)")
    return parser


def _run(args: argparse.Namespace) -> None:
    check_model_arguments(args)
    alpha = args.alpha
    check_output_path(args.output)
    net_g, codec = interpolate(args.model, args.gan, alpha)
    save_generator_checkpoint(
        args.output,
        net_g,
        codec,
        kind="dni",
        dni={"alpha": alpha, "mse_checkpoint": str(args.model), "gan_checkpoint": str(args.gan)},
    )
    print(f"wrote {args.output} (alpha {alpha:g}: {ALPHA_HELP})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool on ``argv`` (default: the command line); returns the exit status."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
