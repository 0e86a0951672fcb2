"""Reading generators back from files."""

import pytest

from cugan_lightning import load_generator
from cugan_lightning.checkpoint import CheckpointError


def test_load_generator_refuses_files_that_are_not_checkpoints(tmp_path):
    (tmp_path / "photo.ckpt").write_bytes(b"\x89PNG\r\n\x1a\n not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a checkpoint file"):
        load_generator(tmp_path / "photo.ckpt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "missing.ckpt")
