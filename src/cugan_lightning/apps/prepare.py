"""``cugan-prepare {div2k,cbsd68,live1,cbsd432,mcmaster,bsd68,train400,set12} [--root DIR]``: download,
verify, extract and lay out a data set where the ``data=div2k`` / ``cbsd68`` / ``live1`` / ... configs read it
(see :mod:`cugan_lightning.data.prepare`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..data.prepare import DATASETS, prepare
from .common import CliArgumentParser, run_cli


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="cugan-prepare",
        description="Download (resumable), verify, extract and lay out a data set of the paper.",
    )
    parser.add_argument(
        "datasets", nargs="+", choices=sorted(DATASETS), metavar="DATASET", help=", ".join(sorted(DATASETS))
    )
    parser.add_argument(
        "--root", type=Path, default=Path("data"), help="where data sets go (default data/: paths.data_dir)"
    )
    parser.add_argument(
        "--mirror",
        metavar="URL",
        help="fetch each archive from URL/<its file name> instead (a flat folder of the archives served over "
        "HTTP, e.g. by python -m http.server): Extended_SURE-master.zip, FFDNet-master.zip, "
        "CBSD68-dataset-master.zip, DnCNN-master.zip, DIV2K_train_HR.zip, DIV2K_valid_HR.zip",
    )
    parser.add_argument(
        "--delete-archives", action="store_true", help="delete the downloaded archives when done"
    )
    return parser


def _run(args: argparse.Namespace) -> None:
    for name in dict.fromkeys(args.datasets):
        prepare(DATASETS[name], args.root, mirror=args.mirror, keep_archives=not args.delete_archives)
    if args.root.resolve() != Path("data").resolve():
        print(
            f"the configs read data sets from paths.data_dir: add paths.data_dir={args.root} to training commands"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool on ``argv`` (default: the command line); returns the exit status."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
