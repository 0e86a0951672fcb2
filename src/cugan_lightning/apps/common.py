"""What every command-line tool shares: argument parsing that never prints a usage dump, and turning a user
error into one ``error: ...`` line on stderr with exit status 2 (the Hydra apps use the same line)."""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..dni import ALPHA_HELP, check_alpha
from ..zoo import PREFIX as ZOO_PREFIX
from ..zoo import default_model

__all__ = [
    "ALPHA_HELP",
    "add_device_arguments",
    "add_model_arguments",
    "check_model_arguments",
    "USER_ERRORS",
    "CliArgumentParser",
    "CliError",
    "check_output_path",
    "one_line",
    "parse_alpha",
    "run_cli",
    "user_error_line",
]

TRACEBACK_VARIABLE = "CUGAN_TRACEBACK"
"""Set this environment variable to see the full traceback of a user error."""


class CliError(Exception):
    """A bad command-line argument or input: printed as one ``error: ...`` line, exit status 2."""


USER_ERRORS: tuple[type[BaseException], ...] = (CliError, ValueError, OSError, KeyError)
"""Errors a user can fix from the command line (a bad value, a missing file, an unreadable checkpoint, ...).
Every other exception is a bug and keeps its traceback."""


class CliArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`CliError` instead of printing the usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{message} (see {self.prog} --help)")


def one_line(err: BaseException) -> str:
    """An exception's message on one line (its type name when the message is empty)."""
    text = " ".join(str(err).split())
    if isinstance(err, KeyError) and text.startswith("'"):
        text = text.strip("'")
    return text or type(err).__name__


def user_error_line(err: BaseException, errors: tuple[type[BaseException], ...] = USER_ERRORS) -> str | None:
    """``"error: ..."`` for a user error (None for anything else, or when ``CUGAN_TRACEBACK`` is set)."""
    if isinstance(err, errors) and not os.environ.get(TRACEBACK_VARIABLE):
        return f"error: {one_line(err)}"
    return None


def run_cli(parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], None], argv: Any) -> int:
    """Parse ``argv`` and run ``body``; a user error becomes one ``error: ...`` line and exit status 2."""
    try:
        args = parser.parse_args(argv)
        body(args)
    except SystemExit as stop:  # --help / --version
        return stop.code if isinstance(stop.code, int) else 0
    except USER_ERRORS as err:
        line = user_error_line(err)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2
    return 0


def parse_alpha(text: str) -> float:
    """argparse type for ``--alpha``: a finite number (the range is checked with the other arguments)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"alpha must be a number in [0, 1], got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"alpha must be a number in [0, 1] ({ALPHA_HELP}), got {text!r}")
    return value


def check_output_path(path: Path) -> None:
    """Fail early when ``path`` cannot be written: it is a folder, or its nearest existing parent is not a
    writable folder."""
    if path.is_dir():
        raise CliError(f"output '{path}' is a folder; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CliError(f"cannot write '{path}': '{parent}' is not a folder")
    if not os.access(parent, os.W_OK):
        raise CliError(f"cannot write '{path}': folder '{parent}' is not writable")


def add_model_arguments(
    parser: argparse.ArgumentParser, *, required: bool = True, alpha: bool = True, pair: bool = False
) -> None:
    """The model arguments every tool shares: ``--model`` (the generator, the MSE end of a DNI pair), ``--gan``
    (the GAN end: the two are blended by DNI) and, where the tool takes one, ``--alpha``. ``pair``: the tool
    always blends, so ``--gan`` and ``--alpha`` are required too."""
    parser.add_argument(
        "--model",
        required=required,
        metavar="FILE",
        help="the generator: zoo:NAME (a model shipped with the package; the default), a training .ckpt, an "
        "exported .safetensors or the authors' released weights (with --gan: the MSE end of the DNI pair)",
    )
    parser.add_argument(
        "--gan",
        required=pair,
        metavar="FILE",
        help="a GAN model (stage 2) to blend with --model by DNI",
    )
    if alpha or pair:
        parser.add_argument(
            "--alpha", required=pair, type=parse_alpha, help=f"DNI weight in [0, 1]: {ALPHA_HELP}"
        )


def check_model_arguments(args: argparse.Namespace, *, alpha_needed: bool = True) -> None:
    """``--gan`` goes with ``--model``, ``--alpha`` with ``--gan`` (and, where ``alpha_needed``, the reverse).
    Without ``--model`` the tool uses the zoo's default model (``args.model`` is set to it, and said)."""
    if args.gan is not None and args.model is None:
        raise CliError("--gan needs --model (the MSE end of the pair)")
    if args.model is None:
        args.model = f"{ZOO_PREFIX}{default_model()}"
        print(f"model: {args.model} (the default; --model FILE or zoo:NAME chooses another)", flush=True)
    given = getattr(args, "alpha", None)
    if given is not None and args.gan is None:
        raise CliError("--alpha blends two models and needs --gan")
    if alpha_needed and args.gan is not None and given is None:
        raise CliError(f"--gan needs --alpha in [0, 1] ({ALPHA_HELP})")
    if given is not None:
        check_alpha(given)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--precision``, for the tools that run a network."""
    from ..inference.precision import PRECISIONS

    parser.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"), help="default: auto")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto (default): bfloat16 with channels-last weights where bfloat16 is native (a CPU with "
        "avx512_bf16 / amx_bf16, a GPU with bf16 units), else float32",
    )


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Have glibc keep freed blocks for reuse: blocks up to 32 MiB from the heap (not a fresh mapping each) and
    the heap trimmed only past 1 GiB free. Every network pass then reuses pages instead of touching new ones
    (a 512x512 restoration about 15% faster: docs/benchmarks.md). For the batch tools (restore, evaluate); the
    web app serves under jemalloc instead. False where it does not apply: not glibc, another allocator loaded,
    or the ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` variables set by the user."""
    from ..webapp.allocator import jemalloc_loaded

    if not sys.platform.startswith("linux") or jemalloc_loaded():
        return False
    if any(os.environ.get(v) for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
