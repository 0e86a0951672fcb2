"""Atomic file writes: the one way this package writes an output file (standard library only).

A file is written to a temporary sibling in the same folder, flushed to disk, then renamed over the target. A
crash, a kill or a full disk at any moment leaves either the previous file or the complete new one, never a
truncated one; the temporary file is removed when the writer fails. Renaming within one folder is atomic on
POSIX file systems, which is why the temporary file never lives elsewhere (``/tmp`` may be another file system,
where a "move" is a copy that can be cut short).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "probe_writable", "write_bytes_atomic"]


def _temporary_sibling(path: Path) -> Path:
    """Create an empty, uniquely named hidden file beside ``path`` with the usual permissions (0666 & ~umask)."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it to ``path``.

    ``write`` receives the temporary path and writes the whole file there (``torch.save(obj, tmp)``,
    ``image.save(tmp, format=...)``, ...). Missing parent folders are created. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def probe_writable(folder: str | Path, size: int = 1 << 20) -> None:
    """Write (and delete) a ``size``-byte file in ``folder``, created if needed, before any long work starts:
    an unwritable or full disk then surfaces as an ``OSError`` naming the folder, not hours later."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _temporary_sibling(folder / "write-probe")
        try:
            with open(probe, "wb") as handle:
                handle.write(b"\0" * size)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OSError(
            f"cannot write to the run folder '{folder}' ({reason}); free some space or choose another folder "
            "(paths.root_dir=... or hydra.run.dir=...)"
        ) from None
