"""``cugan-curve RUN``: a training run's validation PSNR per setting over time, as a table (and a PNG)::

    cugan-curve logs/cpu_hour/runs/<date> [--every 5] [--png curve.png] [--title TEXT]

The run must have been logged with ``logger=csv``; the time axis is ``time/train_minutes`` where the run has
the training clock (as ``experiment=cpu_hour`` does), else iterations. The reading and drawing are
:mod:`cugan_lightning.evaluation.training_curve`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..evaluation.training_curve import plot_training_curve, read_training_curve
from .common import CliArgumentParser, CliError, run_cli


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="cugan-curve", description="A training run's validation PSNR per setting over training time."
    )
    parser.add_argument("run", type=Path, help="a run folder (logs/<task>/runs/<date>) or its metrics.csv")
    parser.add_argument("--every", type=int, default=1, help="print every n-th validation (and the last)")
    parser.add_argument("--png", type=Path, help="also draw the curve into this PNG")
    parser.add_argument("--title", default="", help="title of the PNG")
    return parser


def _run(args: argparse.Namespace) -> None:
    if args.every < 1:
        raise CliError(f"--every must be at least 1, got {args.every}")
    curve = read_training_curve(args.run)
    print(curve.markdown(args.every))
    if args.png:
        print(f"\ncurve: {plot_training_curve(curve, args.png, args.title)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool on ``argv`` (default: the command line); returns the exit status."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
