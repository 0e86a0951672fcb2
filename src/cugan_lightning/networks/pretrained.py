"""torchvision's ImageNet weight files in the torch hub cache: where each goes, fetching it once, checking it.

Three files serve this project (docs/model.md, docs/evaluation.md): ``vgg19-dcbb9e9d.pth`` (perceptual loss),
``alexnet-owt-7be5be79.pth`` (LPIPS) and ``vgg16-397923af.pth`` (DISTS). They live in
``$TORCH_HOME/hub/checkpoints/`` (``torch.hub.get_dir()``), where torchvision itself looks. Where there is no
network the user puts them there by hand; every message says which file, which folder and where to get it.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "IMAGENET_WEIGHTS",
    "OFFLINE_ENV",
    "PretrainedWeightsMissingError",
    "ensure_imagenet_file",
    "imagenet_file",
    "matches_published_hash",
]

OFFLINE_ENV = "CUGAN_OFFLINE"
"""Set to 1 to never try a download (tests, air-gapped machines)."""
DOWNLOAD_TIMEOUT_S = 15.0

IMAGENET_WEIGHTS = {
    "vgg19": ("VGG19_Weights", "the perceptual loss"),
    "alexnet": ("AlexNet_Weights", "LPIPS"),
    "vgg16": ("VGG16_Weights", "DISTS"),
}
"""torchvision model -> (its weights enum, what this project uses it for). All are ``IMAGENET1K_V1``."""


class PretrainedWeightsMissingError(FileNotFoundError):
    """An ImageNet weight file is neither in the torch hub cache nor downloadable from here."""

    def __init__(
        self, file_name: str, folder: Path, url: str, reason: str, purpose: str, hint: str = ""
    ) -> None:
        self.file_name, self.folder, self.url = file_name, Path(folder), url
        super().__init__(
            f"The ImageNet weights for {purpose} are not available ({reason}). Put the file {file_name} into the "
            f"folder {folder} (fetch it on a connected machine from {url}; the folder follows "
            f"torch.hub.get_dir(), i.e. $TORCH_HOME/hub/checkpoints){hint}. Set {OFFLINE_ENV}=1 to skip the "
            "download attempt."
        )


def _weights(model: str):  # noqa: ANN202 - a torchvision weights enum member
    import torchvision.models

    if model not in IMAGENET_WEIGHTS:
        raise ValueError(f"no ImageNet weights known for {model!r}; use one of {sorted(IMAGENET_WEIGHTS)}")
    return getattr(torchvision.models, IMAGENET_WEIGHTS[model][0]).IMAGENET1K_V1


def imagenet_file(model: str) -> tuple[Path, str]:
    """``(path in the torch hub cache, download URL)`` of torchvision's ImageNet weights for ``model``."""
    url = _weights(model).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path), url


def matches_published_hash(path: str | Path) -> bool:
    """True when the file's SHA-256 starts with the digits in its name (``...-7be5be79.pth``), as torchvision
    publishes them; False for a partial download, other weights, or a name without digits."""
    match = re.search(r"-([0-9a-f]{8,})\.", Path(path).name)
    if match is None:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest().startswith(match.group(1))


def ensure_imagenet_file(
    model: str, purpose: str | None = None, hint: str = "", timeout: float = DOWNLOAD_TIMEOUT_S
) -> Path:
    """The cached weight file of ``model``, downloaded first when it is missing and downloads are allowed
    (``CUGAN_OFFLINE`` unset; ``timeout`` seconds per socket operation bound a dead network). Raises
    :class:`PretrainedWeightsMissingError` naming the file, the folder and the URL otherwise."""
    path, url = imagenet_file(model)
    purpose = purpose or IMAGENET_WEIGHTS[model][1]
    if path.is_file():
        return path

    def missing(reason: str) -> PretrainedWeightsMissingError:
        return PretrainedWeightsMissingError(path.name, path.parent, url, reason, purpose, hint)

    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        raise missing(f"not in the cache and {OFFLINE_ENV} is set, so no download was tried")
    # urllib (used by torch.hub) takes the default socket timeout: without one a dead network hangs forever
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        _weights(model).get_state_dict(progress=False, check_hash=True)  # writes the cache file
    except Exception as err:
        raise missing(f"not in the cache and the download failed: {type(err).__name__}: {err}") from err
    finally:
        socket.setdefaulttimeout(previous)
    return path
