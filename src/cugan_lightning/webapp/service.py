"""The web app as a shared service (docs/webapp.md, "Running it for a team"): who may use it (``--auth``,
``--auth-file``), how many requests it holds (``--concurrency``), how long its files live, and the warning when it
listens beyond this computer without a password. Free of Gradio: :func:`cugan_lightning.webapp.page.launch`
passes these on.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_KEEP_SECONDS",
    "MAX_SESSIONS",
    "Service",
    "is_loopback",
    "open_warning",
    "parse_credentials",
    "read_auth_file",
]

DEFAULT_CONCURRENCY = 64
"""Requests the app holds at once, waiting for the model (Gradio's queue ``max_size``); more get "busy"."""
DEFAULT_KEEP_SECONDS = 1800
"""Files a page no longer shows are deleted at once; uploads and an idle page's latest files after this age."""
MAX_SESSIONS = 200
"""Pages whose state (photo, maps) the server keeps in memory; the longest unused are dropped beyond it."""


@dataclass(frozen=True)
class Service:
    """How the app serves a team: the credentials (none: open), the queue limit and the files' lifetime."""

    credentials: tuple[tuple[str, str], ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    keep_seconds: int = DEFAULT_KEEP_SECONDS

    def __post_init__(self) -> None:
        if (
            isinstance(self.concurrency, bool)
            or not isinstance(self.concurrency, int)
            or self.concurrency < 1
        ):
            raise ValueError(f"concurrency must be a positive integer, got {self.concurrency!r}")
        if not isinstance(self.keep_seconds, int) or self.keep_seconds < 1:
            raise ValueError(
                f"the files' lifetime must be a positive number of seconds, got {self.keep_seconds!r}"
            )


def parse_credentials(text: str, where: str = "--auth") -> tuple[str, str]:
    """``USER:PASSWORD`` as ``(user, password)`` (the password may hold ``:``); ValueError naming ``where``."""
    user, colon, password = text.partition(":")
    if not colon or not user.strip() or not password:
        raise ValueError(f"{where} must be USER:PASSWORD with both parts non-empty, got '{_hidden(text)}'")
    return user.strip(), password


def _hidden(text: str) -> str:
    user, colon, password = text.partition(":")
    return f"{user}{colon}{'*' * len(password)}" if colon else text


def read_auth_file(path: str | Path) -> tuple[tuple[str, str], ...]:
    """The ``USER:PASSWORD`` lines of a file (blank lines and ``#`` comments skipped); ValueError naming the file
    and every bad line's number in one line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--auth-file '{path}' cannot be read ({err.__class__.__name__})") from None
    found, bad = [], []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            found.append(parse_credentials(text))
        except ValueError:
            bad.append(number)
    if bad:
        raise ValueError(
            f"--auth-file '{path}': line(s) {', '.join(map(str, bad))} are not USER:PASSWORD (passwords not shown)"
        )
    if not found:
        raise ValueError(f"--auth-file '{path}' holds no USER:PASSWORD line")
    return tuple(found)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) listens on this computer only."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None)
            )
        except (OSError, ValueError):
            return False


def open_warning(host: str, service: Service) -> str | None:
    """The warning line for a page anyone on the network can use: beyond loopback and without ``--auth``."""
    if service.credentials or is_loopback(host):
        return None
    return (
        f"warning: the page listens on {host or 'every address'} without a password: anyone who can reach this "
        "computer can use it; add --auth USER:PASSWORD or --auth-file FILE"
    )
