"""The files the web page writes for each page it serves, and their deletion: a page (a session) keeps only its
latest file of each kind (its latest result or preview, the display of its latest upload, the latest map overlay
of a photo), and all of them go when the page closes. What is left (an idle page's latest files, uploads, the
partial file of an upload refused for its size) goes by age (:meth:`SessionFiles.sweep`). So the folder holds a few
files per open page.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

__all__ = ["SessionFiles"]


class SessionFiles:
    """Per-owner (a page's session, or a photo's token), per-kind lists of files under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[str, dict[str, list[Path]]] = {}
        self._lock = threading.Lock()

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        if path.parent != self.folder and path.parent.is_relative_to(self.folder):
            with contextlib.suppress(OSError):  # not empty, or gone already
                path.parent.rmdir()  # a result's own folder (it keeps the photo's file name)

    def keep(self, owner: str, kind: str, *paths: Path) -> None:
        """``owner``'s files of ``kind`` are now ``paths``: its earlier ones (not among them) are deleted."""
        with self._lock:
            kinds = self._files.setdefault(owner, {})
            old = kinds.get(kind, [])
            kinds[kind] = list(paths)
        for path in old:
            if path not in paths:
                self._delete(path)

    def held(self, owner: str, kind: str) -> list[Path]:
        with self._lock:
            return list(self._files.get(owner, {}).get(kind, []))

    def forget(self, owner: str) -> None:
        """Delete every file of ``owner`` (its page closed)."""
        with self._lock:
            kinds = self._files.pop(owner, {})
        for paths in kinds.values():
            for path in paths:
                self._delete(path)

    def sweep(self, max_age: float, stray_age: float = 60.0) -> int:
        """Delete the files under the folder last written more than ``max_age`` seconds ago (Gradio's unfinished
        upload files, ``tmp*`` at the top, after ``stray_age``), then the folders left empty; returns how many
        files went."""
        now, removed = time.time(), 0
        for path in sorted(self.folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # gone meanwhile, or a folder still in use
                if path.is_dir():
                    if not any(path.iterdir()):
                        path.rmdir()
                    continue
                stray = path.parent == self.folder and path.name.startswith("tmp")
                if now - path.stat().st_mtime > (stray_age if stray else max_age):
                    path.unlink()
                    removed += 1
        return removed

    def __len__(self) -> int:
        """How many owners hold files."""
        with self._lock:
            return len(self._files)
