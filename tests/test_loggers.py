"""Loggers: W&B online with a key, offline without one, never waiting for a login."""

import pytest

from conftest import TINY, compose_config
from cugan_lightning.apps.train import train
from cugan_lightning.utils import wandb_key_configured, wandb_logger


@pytest.fixture
def no_wandb_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))


def test_wandb_goes_offline_without_a_key(no_wandb_key, tmp_path):
    assert not wandb_key_configured()
    logger = wandb_logger(project="p", save_dir=str(tmp_path))
    assert logger._offline is True


def test_wandb_goes_online_with_a_key(no_wandb_key, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_key_configured()
    assert wandb_logger(project="p", save_dir=str(tmp_path))._offline is False
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    monkeypatch.delenv("WANDB_API_KEY")
    assert wandb_key_configured()


def test_wandb_mode_in_the_environment_wins(no_wandb_key, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_logger(project="p", save_dir=str(tmp_path))._offline is True


def test_a_run_logs_to_wandb_offline(no_wandb_key, tmp_path):
    cfg = compose_config([*TINY, "logger=wandb", "iterations=2", "data.batches_per_epoch=2"], tmp_path)
    train(cfg)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb"))
