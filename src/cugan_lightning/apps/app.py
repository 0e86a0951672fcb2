"""``cugan-app``: the web page for interactive restoration::

    cugan-app                                   # the zoo's default model (shipped in the package)
    cugan-app --model mse.ckpt --gan gan.ckpt --port 8080

It listens on 127.0.0.1 (this computer only) unless ``--host`` says otherwise, and stops with Ctrl+C. The page is
:mod:`cugan_lightning.webapp.page`; the work behind it :class:`cugan_lightning.webapp.Workbench`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from ..inference import MIN_TILE, PREVIEW_SIDE, resolve_device
from ..webapp import DEFAULT_MAX_PIXELS, Workbench
from ..zoo import is_zoo_reference
from .common import (
    CliArgumentParser,
    CliError,
    add_device_arguments,
    add_model_arguments,
    check_model_arguments,
    run_cli,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="cugan-app",
        description="A local web page to restore a photo with sliders for blur, noise (JPEG) and MSE-to-GAN.",
    )
    add_model_arguments(parser, required=False, alpha=False)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    add_device_arguments(parser)
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"largest photo accepted, width x height (default {DEFAULT_MAX_PIXELS})",
    )
    parser.add_argument(
        "--preview-side",
        type=int,
        default=PREVIEW_SIDE,
        help=f"larger photos show a preview this long first (default {PREVIEW_SIDE} pixels)",
    )
    parser.add_argument(
        "--tile", type=int, help=f"restore in tiles of this size (>= {MIN_TILE}) to save memory"
    )
    return parser


def _checkpoints(args: argparse.Namespace) -> tuple[str, str | None]:
    check_model_arguments(
        args, alpha_needed=False
    )  # alpha is the page's slider; no --model: the zoo's default
    for flag, path in (("--model", args.model), ("--gan", args.gan)):
        if path is not None and not is_zoo_reference(path) and not Path(path).is_file():
            raise CliError(
                f"{flag} '{path}' does not exist; give an existing .ckpt or .safetensors file or zoo:NAME, or "
                "start the app without --model (the zoo's default model)"
            )
    return args.model, args.gan


def _run(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be in 0..65535, got {args.port}")
    if importlib.util.find_spec("gradio") is None:
        raise CliError("the web app needs Gradio: pip install 'cugan-lightning[app]'")
    model, gan = _checkpoints(args)
    workbench = Workbench(
        model,
        gan,
        device=resolve_device(args.device),
        precision=args.precision,
        max_pixels=args.max_pixels,
        preview_side=args.preview_side,
        tile=args.tile,
    )
    from ..webapp.page import build_page, launch

    try:
        page = build_page(workbench)
        try:
            url = launch(page, workbench, args.host, args.port)
        except OSError as err:
            raise CliError(
                f"cannot listen on {args.host}:{args.port} ({err}); choose another --port"
            ) from None
        print(f"{workbench.describe_model()}\nthe page: {url}  (Ctrl+C stops it)", flush=True)
        try:
            page.block_thread()
        finally:
            page.close()
    finally:
        workbench.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``cugan-app [--model X.ckpt [--gan Y.ckpt]] [--host H] [--port P]``."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
