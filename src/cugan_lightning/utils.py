"""Small pieces the training app wires in: atomic checkpoint writes and a W&B logger that never hangs."""

from __future__ import annotations

import logging
import netrc
import os
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from .atomic import atomic_write

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in the same folder, then renames it into place.

    A crash, a kill or a full disk during saving can therefore never leave a truncated ``last.ckpt`` behind.
    Lightning's own writer is atomic only when the system temporary folder is on the same file system as the
    checkpoints: it writes the file under ``/tmp`` and then *moves* it, which across file systems is a copy
    onto ``last.ckpt`` that a kill cuts short (``tests/test_checkpoint_io.py`` shows both).
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def wandb_key_configured() -> bool:
    """True when W&B has an API key: WANDB_API_KEY, or a `wandb login` entry in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc(os.environ.get("NETRC")).authenticators(
            os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
        )
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(auth and auth[2])


def wandb_logger(offline: bool | None = None, init_timeout: int = 90, **kwargs: Any):
    """A Lightning ``WandbLogger`` that runs online with a configured key and offline otherwise.

    ``WANDB_MODE`` in the environment wins (``offline`` / ``disabled``). Without a key the run is written
    to ``save_dir/wandb`` and can be uploaded later with ``wandb sync``; it never waits for a login prompt.
    """
    from lightning.pytorch.loggers import WandbLogger

    mode = os.environ.get("WANDB_MODE", "").lower()
    if offline is None:
        offline = mode in ("offline", "dryrun", "disabled") or not wandb_key_configured()
        if offline and mode not in ("offline", "dryrun", "disabled"):
            log.info("W&B: no API key configured, logging offline (sync later with `wandb sync`)")
    if offline:
        os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    settings = wandb.Settings(init_timeout=init_timeout, silent=True)
    return WandbLogger(offline=offline, settings=settings, **kwargs)
