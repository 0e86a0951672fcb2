"""The model zoo: trained generators anyone can use without training, named ``zoo:NAME`` wherever a model file
is taken (``cugan-restore --model zoo:NAME``, ``cugan-app``, ``cugan-evaluate models.x=zoo:NAME``, the notebook,
``load_restorer("zoo:NAME")``).

Each entry of ``registry.json`` (beside this file) has a name, the file (shipped inside the package) or a URL
to download it from, its SHA-256, its codec and its model card (``docs/models.md``). A downloaded file is kept in
the cache folder (``$CUGAN_ZOO_CACHE``, by default ``~/.cache/cugan-lightning/zoo``), verified against the
SHA-256 on every first use in a process, and written atomically; offline, a file that is not cached is one line
that says where to put it. A file shipped in the package is verified the same way, so a damaged install is
named rather than loaded. Adding a model trained elsewhere (a GPU-trained paper-size one) is one entry: name,
URL, SHA-256, codec, card.

An entry of ``"kind": "estimator"`` is a level estimator (:mod:`cugan_lightning.estimation`), not a generator; a
model's entry names the estimator that opens its sliders (``"estimator": NAME``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PREFIX",
    "ZooEntry",
    "ZooError",
    "cache_dir",
    "default_model",
    "entries",
    "is_zoo_reference",
    "model_path",
    "resolve",
]

PREFIX = "zoo:"
HERE = Path(__file__).parent
REGISTRY = HERE / "registry.json"
TIMEOUT_S = 60.0
CHUNK = 1 << 20


class ZooError(OSError):
    """A zoo model could not be found, fetched or verified; the message says which and what to do."""


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo. ``file`` is shipped inside the package; ``url`` is downloaded into the cache."""

    name: str
    sha256: str
    codec: dict[str, Any]
    description: str = ""
    card: str = "docs/models.md"
    file: str | None = None
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return f"{PREFIX}{self.name}"


def _load_registry(path: Path = REGISTRY) -> tuple[str, dict[str, ZooEntry]]:
    document = json.loads(path.read_text())
    known = {"name", "sha256", "codec", "description", "card", "file", "url"}
    models = {}
    for item in document["models"]:
        entry = ZooEntry(
            **{k: v for k, v in item.items() if k in known},
            extra={k: v for k, v in item.items() if k not in known},
        )
        if (entry.file is None) == (entry.url is None):
            raise ZooError(f"zoo entry '{entry.name}' must give exactly one of file and url")
        models[entry.name] = entry
    default = document["default"]
    if default not in models:
        raise ZooError(f"the zoo's default '{default}' is not one of its models {sorted(models)}")
    return default, models


@functools.cache
def _registry() -> tuple[str, dict[str, ZooEntry]]:
    return _load_registry()


def default_model() -> str:
    """The name of the model the tools use when given none (``zoo:`` + this)."""
    return _registry()[0]


_VERIFIED: set[Path] = set()


def entries() -> dict[str, ZooEntry]:
    """Every model of the zoo by name."""
    return dict(_registry()[1])


def is_zoo_reference(reference: str | Path) -> bool:
    return isinstance(reference, (str, Path)) and str(reference).startswith(PREFIX)


def cache_dir() -> Path:
    """Where downloaded models are kept: ``$CUGAN_ZOO_CACHE``, else ``~/.cache/cugan-lightning/zoo``."""
    return Path(os.environ.get("CUGAN_ZOO_CACHE") or Path.home() / ".cache" / "cugan-lightning" / "zoo")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, entry: ZooEntry) -> Path:
    if path in _VERIFIED:
        return path
    found = _sha256(path)
    if found != entry.sha256:
        raise ZooError(
            f"zoo model '{entry.name}' at {path} has SHA-256 {found[:16]}..., not the registered "
            f"{entry.sha256[:16]}...: the file is damaged or another one; delete it and try again"
        )
    _VERIFIED.add(path)
    return path


def _download(entry: ZooEntry, target: Path) -> None:
    assert entry.url is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(entry.url, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        found = _sha256(tmp)
        if found != entry.sha256:
            raise ZooError(
                f"zoo model '{entry.name}' downloaded from {entry.url} has SHA-256 {found[:16]}..., not the "
                f"registered {entry.sha256[:16]}...; nothing was kept"
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise ZooError(
            f"zoo model '{entry.name}' is not in the cache and cannot be downloaded from {entry.url} ({reason}); "
            f"on a connected machine fetch that file into {target.parent} (SHA-256 {entry.sha256}), or give "
            "--model a file"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def resolve(reference: str | Path) -> Path:
    """The verified local file of ``zoo:NAME`` (``zoo:`` alone is the default model), downloading it into the
    cache first where the entry is a URL."""
    default, models = _registry()
    name = str(reference).removeprefix(PREFIX) or default
    entry = models.get(name)
    if entry is None:
        raise ZooError(f"no zoo model '{name}'; the zoo has {', '.join(sorted(models))}")
    if entry.file is not None:
        path = HERE / entry.file
        if not path.is_file():
            raise ZooError(
                f"zoo model '{name}' should ship as {path}, which is missing: reinstall the package"
            )
        return _verify(path, entry)
    target = cache_dir() / f"{name}-{entry.sha256[:12]}{Path(str(entry.url)).suffix or '.safetensors'}"
    if not target.is_file():
        _download(entry, target)
    return _verify(target, entry)


def model_path(reference: str | Path) -> Path:
    """A model argument as a local file: ``zoo:NAME`` resolved (and fetched), anything else as given."""
    return resolve(reference) if is_zoo_reference(reference) else Path(reference)
