"""The memory allocator a long-running web app serves with (docs/webapp.md, "Running it for a team").

Under load from several people, glibc's allocator keeps the freed image and feature buffers of each restoration in
its heaps, fragmented: the server grew by 200 to 500 MB per 100 requests and was still growing after minutes.
Nothing leaks (with every large block memory-mapped instead, the size stays flat, at 1.5 to 3 times the CPU time per
restoration); jemalloc returns freed memory to the system as it goes and keeps the server flat, for about 20% more
time per restoration. So ``cugan-app`` started from the command line runs itself under jemalloc when the library
is installed (``libjemalloc2`` on Debian and Ubuntu, ``jemalloc`` elsewhere), and says which allocator serves in
one line. ``CUGAN_APP_ALLOCATOR=system`` keeps the C library's (and its speed).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "ALLOCATOR_VARIABLE",
    "allocator_line",
    "find_jemalloc",
    "jemalloc_loaded",
    "reexec_under_jemalloc",
]

ALLOCATOR_VARIABLE = "CUGAN_APP_ALLOCATOR"
"""``system``: serve with the C library's allocator; ``jemalloc`` (or unset): with jemalloc where installed."""

_CHOICES = ("jemalloc", "system")

_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)


def find_jemalloc() -> Path | None:
    """The installed jemalloc shared library, or None."""
    for candidate in _CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    found = ctypes.util.find_library("jemalloc")
    if found and Path(found).is_absolute() and Path(found).is_file():
        return Path(found)
    return None


def jemalloc_loaded(maps: str | None = None) -> bool:
    """Whether this process allocates with jemalloc (read off ``/proc/self/maps``; False where it is absent)."""
    if maps is None:
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            return False
    return "libjemalloc" in maps


def reexec_command(
    argv: Sequence[str],
    env: Mapping[str, str],
    library: Path | None,
    loaded: bool,
    platform: str = sys.platform,
) -> tuple[list[str], dict[str, str]] | None:
    """The command and environment that rerun the app under jemalloc, or None to go on as it is: already under
    it, not Linux, opted out (or a value other than ``jemalloc`` / ``system``, which :func:`allocator_line` names),
    no library to load, or the library already preloaded without taking effect (a rerun would loop)."""
    if loaded or not platform.startswith("linux") or library is None:
        return None
    if _choice(env) != "jemalloc" or _preloaded(env, library):
        return None
    preload = " ".join(part for part in (str(library), env.get("LD_PRELOAD", "")) if part)
    new_env = {**env, "LD_PRELOAD": preload, ALLOCATOR_VARIABLE: "jemalloc"}
    return [sys.executable, "-m", "cugan_lightning.apps.app", *argv], new_env


def _preloaded(env: Mapping[str, str], library: Path) -> bool:
    """Whether ``library`` is one of ``LD_PRELOAD``'s entries (separated by spaces or colons)."""
    return str(library) in env.get("LD_PRELOAD", "").replace(":", " ").split()


def _choice(env: Mapping[str, str]) -> str:
    return (env.get(ALLOCATOR_VARIABLE) or "jemalloc").strip().lower()


def reexec_under_jemalloc(argv: Sequence[str]) -> None:
    """Replace this process by the app run under jemalloc when :func:`reexec_command` says so (the same process
    id, the same arguments); otherwise return. Called before anything is loaded or listened on."""
    plan = reexec_command(argv, os.environ, find_jemalloc(), jemalloc_loaded())
    if plan is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(plan[0][0], plan[0], plan[1])


def allocator_line() -> str:
    """One line for the log: which allocator serves, and what to do about it when it is glibc's."""
    if jemalloc_loaded():
        return "memory: jemalloc (freed memory goes back to the system: the server's size stays flat)"
    choice, library = _choice(os.environ), find_jemalloc()
    if choice not in _CHOICES:
        hint = f"{ALLOCATOR_VARIABLE}={os.environ[ALLOCATOR_VARIABLE]!r} is neither jemalloc nor system"
    elif choice == "system":
        hint = f"{ALLOCATOR_VARIABLE}=system is set"
    elif library is not None and _preloaded(os.environ, library):
        hint = f"{library} was preloaded but did not load: see the loader's message above"
    else:
        hint = "install jemalloc (libjemalloc2) and it is used"
    return (
        "memory: the C library's allocator, which keeps freed image buffers: under load the server grows by "
        f"hundreds of MB before it levels off ({hint}; docs/webapp.md)"
    )
