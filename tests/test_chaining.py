"""A stage-2 run and a UGAN baseline find their stage-1 start by what checkpoints record, in plain runs and
multirun folders alike, among decoys that are newer, of another task, kind, architecture or level."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY, TINY_GAN, compose_config
from cugan_lightning.apps.train import build
from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.checkpoint.find import StartNotFoundError
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.networks import CUnet

GAN = [
    *TINY,
    *TINY_GAN,
    "init.ckpt=auto",
]


def write(logs: Path, where: str, *, task: str, channels=(4, 8, 16), conditional=True, level=None) -> Path:
    path = logs / where / "checkpoints" / "last.ckpt"
    net = CUnet(channels=channels, blocks=(1, 1, 1), conditional=conditional)
    extra = {"train_config": {"task_name": task}}
    if level is not None:
        extra["level"] = {"blur": float(level[0]), "noise": float(level[1])}
    save_generator_checkpoint(path, net, LevelCodec(), kind="cunet", **extra)
    return path


def make_newest(*paths: Path) -> None:
    later = time.time() + 60
    for path in paths:
        os.utime(path, (later, later))


def test_stage_two_finds_its_stage_one_among_decoys(tmp_path):
    logs = tmp_path / "logs"
    answer = write(logs, "cunet_mse/runs/2026-01-01_00-00-00", task="cunet_mse")
    decoys = [
        write(logs, "cunet_mse/multiruns/2026-01-02_00-00-00/0", task="cunet_mse", channels=(4, 8, 8)),
        write(logs, "quickstart_cpu/runs/2026-01-03_00-00-00", task="quickstart_cpu"),
        write(
            logs, "unet_b0_n30/runs/2026-01-04_00-00-00", task="unet_b0_n30", conditional=False, level=(0, 30)
        ),
    ]
    make_newest(*decoys)  # the newest file alone would pick a wrong one
    _, model, _ = build(compose_config([*GAN, "init.task=cunet_mse"], tmp_path))
    assert model.init_from == str(answer)

    twin = write(logs, "cunet_mse/multiruns/2026-01-05_00-00-00/2", task="cunet_mse")
    with pytest.raises(StartNotFoundError, match="2 checkpoints fit equally") as info:
        build(compose_config([*GAN, "init.task=cunet_mse"], tmp_path))
    assert str(answer) in str(info.value) and str(twin) in str(info.value)
    # one (multi)run only
    search = f"init.search={logs / 'cunet_mse' / 'multiruns'}"
    _, model, _ = build(compose_config([*GAN, "init.task=cunet_mse", search], tmp_path))
    assert model.init_from == str(twin)


def test_a_ugan_baseline_starts_from_the_unet_of_its_level_in_a_multirun(tmp_path):
    logs = tmp_path / "logs"
    sweep = "unet_levels/multiruns/2026-01-01_00-00-00"
    answer = write(logs, f"{sweep}/level=b4_n50", task="unet_b4_n50", conditional=False, level=(4, 50))
    write(logs, f"{sweep}/level=b0_n30", task="unet_b0_n30", conditional=False, level=(0, 30))
    write(logs, "cunet_mse/runs/2026-01-01_00-00-00", task="cunet_mse")
    overrides = [*GAN, "experiment=ugan_baseline", "baseline_level=[4,50]", "model.net_g.conditional=false"]
    overrides += ["trainer=cpu", "logger=csv", "data=embedded"]
    _, model, _ = build(compose_config(overrides, tmp_path))
    assert model.init_from == str(answer)

    overrides = [o.replace("[4,50]", "[2,30]") for o in overrides]
    with pytest.raises(StartNotFoundError) as info:
        build(compose_config(overrides, tmp_path))
    message = str(info.value)
    assert "a unet checkpoint of task 'unet_b2_n30' at level {'blur': 2.0, 'noise': 30.0}" in message
    assert 'experiment=unet_baseline "baseline_level=[2,30]"' in message


def test_files_without_a_task_are_matched_by_their_folder(tmp_path):
    logs = tmp_path / "logs"
    path = logs / "cunet_mse" / "runs" / "x" / "checkpoints" / "last.ckpt"
    torch.manual_seed(0)
    save_generator_checkpoint(path, CUnet(channels=(4, 8, 16), blocks=(1, 1, 1)), LevelCodec())
    _, model, _ = build(compose_config([*GAN, "init.task=cunet_mse"], tmp_path))
    assert model.init_from == str(path)
