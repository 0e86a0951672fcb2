"""``cugan-app``: the web page for interactive restoration::

    cugan-app                                   # the zoo's default model (shipped in the package)
    cugan-app --model mse.ckpt --gan gan.ckpt --port 8080
    cugan-app --host 0.0.0.0 --auth-file team.txt   # a shared server (docs/webapp.md, "Running it for a team")

It listens on 127.0.0.1 (this computer only) unless ``--host`` says otherwise (with a warning when no ``--auth``
guards it), and stops with Ctrl+C. The page is
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
from ..webapp.allocator import allocator_line, reexec_under_jemalloc
from ..webapp.limits import DEFAULT_MAX_UPLOAD_MB
from ..webapp.service import (
    DEFAULT_CONCURRENCY,
    DEFAULT_KEEP_SECONDS,
    Service,
    open_warning,
    parse_credentials,
    read_auth_file,
)
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
    team = parser.add_argument_group("a shared server (docs/webapp.md, 'Running it for a team')")
    team.add_argument("--auth", metavar="USER:PASSWORD", help="ask for this login on the page and the API")
    team.add_argument("--auth-file", metavar="FILE", help="logins, one USER:PASSWORD a line (# comments)")
    team.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="requests held at once, waiting for the model, which runs one restoration at a time; more get "
        f"'busy, try again' on the page (default {DEFAULT_CONCURRENCY})",
    )
    team.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest upload, in megabytes (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    team.add_argument(
        "--keep-files",
        type=int,
        default=DEFAULT_KEEP_SECONDS,
        metavar="SECONDS",
        help=f"uploads and idle pages' results are deleted after this age (default {DEFAULT_KEEP_SECONDS})",
    )
    return parser


def _service(args: argparse.Namespace) -> Service:
    if args.auth is not None and args.auth_file is not None:
        raise CliError("give --auth or --auth-file, not both")
    for flag, value, low in (("--concurrency", args.concurrency, 1), ("--keep-files", args.keep_files, 1)):
        if value < low:
            raise CliError(f"{flag} must be at least {low}, got {value}")
    if not args.max_upload_mb > 0:
        raise CliError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    credentials = (parse_credentials(args.auth),) if args.auth is not None else ()
    if args.auth_file is not None:
        credentials = read_auth_file(args.auth_file)
    return Service(credentials, args.concurrency, args.keep_files)


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
    service = _service(args)
    model, gan = _checkpoints(args)
    workbench = Workbench(
        model,
        gan,
        device=resolve_device(args.device),
        precision=args.precision,
        max_pixels=args.max_pixels,
        preview_side=args.preview_side,
        tile=args.tile,
        max_upload_mb=args.max_upload_mb,
    )
    from ..webapp.page import build_page, launch

    try:
        page = build_page(workbench, service)
        print(allocator_line(), flush=True)  # before listening: whoever sees the page can read it in the log
        if (warning := open_warning(args.host, service)) is not None:
            print(warning, file=sys.stderr, flush=True)
        try:
            url = launch(page, workbench, args.host, args.port, service)
        except OSError as err:
            raise CliError(
                f"cannot listen on {args.host}:{args.port} ({err}); choose another --port"
            ) from None
        print(
            f"{workbench.describe_model()}\nthe page: {url}  (Ctrl+C stops it)",
            flush=True,
        )
        try:
            page.block_thread()
        finally:
            page.close()
    finally:
        workbench.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``cugan-app [--model X.ckpt [--gan Y.ckpt]] [--host H] [--port P]``. From the command line (``argv``
    None) it first reruns itself under jemalloc where that is installed (:mod:`cugan_lightning.webapp.allocator`)."""
    if argv is None:
        reexec_under_jemalloc(sys.argv[1:])
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
