"""Checkpoint writes interrupted halfway: the previous checkpoint must survive.

Lightning's own ``TorchCheckpointIO`` stages the file in the system temporary folder and then moves it onto the
target. On one file system the move is a rename (atomic); across file systems (``/tmp`` on another disk or a
tmpfs, common on compute nodes) it is a copy onto ``last.ckpt``, and a process killed during that copy leaves a
truncated checkpoint. That is why training keeps :class:`cugan_lightning.utils.AtomicCheckpointIO`, which writes
beside the target and renames. Each case runs in a subprocess whose file-size limit makes the kernel kill it
(SIGXFSZ) or fail its write (a full disk) halfway through writing the new checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import TINY, compose_config
from cugan_lightning.apps.train import build
from cugan_lightning.atomic import atomic_write
from cugan_lightning.utils import AtomicCheckpointIO

SCRIPT = textwrap.dedent(
    """
    import resource, shutil, signal, sys, tempfile
    import torch
    from lightning.fabric.plugins import TorchCheckpointIO
    from cugan_lightning.utils import AtomicCheckpointIO

    writer, target, staging, mode = sys.argv[1:5]
    tempfile.tempdir = staging  # where Lightning stages the file before moving it
    if mode == "kill":
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
    checkpoint = {"weights": torch.full((2_000_000,), 2.0)}  # 8 MB, the limit cuts it at 3 MB
    limit = 3_000_000

    def cut_writes_beyond_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    if writer == "lightning":
        real_move = shutil.move

        def move(*args, **kwargs):  # the staged file is complete: cut the move onto the target
            cut_writes_beyond_limit()
            return real_move(*args, **kwargs)

        shutil.move = move
        TorchCheckpointIO().save_checkpoint(checkpoint, target)
    else:
        cut_writes_beyond_limit()
        AtomicCheckpointIO().save_checkpoint(checkpoint, target)
    """
)


def other_file_system_than(path: Path) -> Path | None:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != path.stat().st_dev:
        return shm
    return None


def interrupted_save(tmp_path: Path, writer: str, staging: Path, mode: str) -> tuple[Path, int]:
    """Save a good checkpoint, then try to overwrite it with a bigger one and get cut halfway."""
    target = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"weights": torch.ones(10)}, target)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, writer, str(target), str(staging), mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return target, proc.returncode


def still_the_good_checkpoint(target: Path) -> bool:
    try:
        loaded = torch.load(target, weights_only=True)
    except Exception:  # noqa: BLE001 - a truncated file fails in several ways
        return False
    return torch.equal(loaded["weights"], torch.ones(10))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill", "full-disk"])
def test_our_checkpoint_io_keeps_the_previous_checkpoint(tmp_path, mode):
    target, code = interrupted_save(tmp_path, "ours", tmp_path, mode)
    assert code != 0  # the write was cut
    assert still_the_good_checkpoint(target)
    if mode == "full-disk":  # the writer saw the error and removed its temporary file
        assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]


@pytest.mark.slow
def test_lightning_io_is_atomic_only_when_the_temporary_folder_shares_the_file_system(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    target, code = interrupted_save(tmp_path, "lightning", staging, "kill")
    assert code == 0  # a rename never grows a file: nothing to cut
    assert not still_the_good_checkpoint(target)  # replaced completely by the new one
    assert torch.equal(torch.load(target, weights_only=True)["weights"], torch.full((2_000_000,), 2.0))

    other = other_file_system_than(tmp_path)
    if other is None:
        pytest.skip("no second file system (/dev/shm) to stage on")
    target, code = interrupted_save(tmp_path / "cross", "lightning", other, "kill")
    assert code != 0
    assert not still_the_good_checkpoint(target)  # killed during the copy: last.ckpt is truncated


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "result.png"
    path.write_bytes(b"old")

    def failing(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, failing)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]
    atomic_write(tmp_path / "new" / "file.bin", lambda tmp: tmp.write_bytes(b"new"))
    mode = (tmp_path / "new" / "file.bin").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # a normal file, not the 0600 of a private temporary file


def test_training_writes_checkpoints_through_the_atomic_writer(tmp_path):
    _, _, trainer = build(compose_config([*TINY, "debug=fast_dev_run"], tmp_path))
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
