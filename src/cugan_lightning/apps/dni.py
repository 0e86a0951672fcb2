"""``cugan-dni --mse MSE.ckpt --gan GAN.ckpt --alpha 0.3 -o blend.ckpt``: write the DNI blend
``theta = (1 - alpha) * theta_GAN + alpha * theta_MSE`` of G and C_G as a generator checkpoint (kind ``dni``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..checkpoint import save_generator_checkpoint
from ..dni import ALPHA_HELP, check_alpha, interpolate
from .common import CliArgumentParser, check_output_path, parse_alpha, run_cli


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="cugan-dni",
        description="Blend an MSE (stage 1) and a GAN (stage 2) checkpoint: "
        "theta = (1 - alpha) * theta_GAN + alpha * theta_MSE over G and C_G.",
    )
    parser.add_argument("--mse", required=True, type=Path, help="stage-1 (CUnet, MSE) checkpoint")
    parser.add_argument("--gan", required=True, type=Path, help="stage-2 (CUGAN) checkpoint")
    parser.add_argument(
        "--alpha", required=True, type=parse_alpha, help=f"blend weight in [0, 1]: {ALPHA_HELP}"
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="output checkpoint (.ckpt)")
    return parser


def _run(args: argparse.Namespace) -> None:
    alpha = check_alpha(args.alpha)
    check_output_path(args.output)
    net_g, codec = interpolate(args.mse, args.gan, alpha)
    save_generator_checkpoint(
        args.output,
        net_g,
        codec,
        kind="dni",
        dni={"alpha": alpha, "mse_checkpoint": str(args.mse), "gan_checkpoint": str(args.gan)},
    )
    print(f"wrote {args.output} (alpha {alpha:g}: {ALPHA_HELP})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool on ``argv`` (default: the command line); returns the exit status."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
