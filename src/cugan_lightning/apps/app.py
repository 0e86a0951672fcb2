"""``cugan-app``: the web page for interactive restoration::

    cugan-app                                   # the newest `make demo` checkpoints in logs/
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

from ..checkpoint.find import SEARCH_ROOTS, find_checkpoints
from ..inference import MIN_TILE, PREVIEW_SIDE, resolve_device
from ..webapp import DEFAULT_MAX_PIXELS, Workbench
from .common import CliArgumentParser, CliError, add_model_arguments, check_model_arguments, run_cli

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
    parser.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"), help="default: auto")
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


def _checkpoints(args: argparse.Namespace) -> tuple[Path, Path | None]:
    check_model_arguments(args, alpha_needed=False)  # alpha is the page's slider
    for flag, path in (("--model", args.model), ("--gan", args.gan)):
        if path is not None and not path.is_file():
            raise CliError(
                f"{flag} '{path}' does not exist; give an existing .ckpt or .safetensors file, or run "
                "`make demo` first and start the app without --model"
            )
    if args.model is not None:
        return args.model, args.gan
    try:
        return find_checkpoints()
    except FileNotFoundError:
        roots = " or ".join(f"{root}/" for root in SEARCH_ROOTS)
        raise CliError(
            f"no stage-1 (cunet) checkpoint under {roots}: run `make demo` first (it writes its checkpoints "
            "under logs/), or pass --model MSE.ckpt [--gan GAN.ckpt]"
        ) from None


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
