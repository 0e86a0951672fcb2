"""docs/own-images.md as a user runs it: a folder of 16-bit gray TIFFs, then one command each to train with
Poisson and Gaussian noise (experiment=own_gray16), restore a file and evaluate, every command as typed."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY
from cugan_lightning.data.io import read_image_raw, write_image


def cells(folder: Path, count: int, size: int, seed: int) -> Path:
    """16-bit gray TIFFs like a fluorescence micrograph: bright blobs on a dim background, values using all
    16 bits (no multiple of 257)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    for i in range(count):
        image = np.full((size, size), 3000.0)
        for _ in range(6):
            cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(3, size / 5)
            image += rng.uniform(15000, 50000) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        write_image(np.clip(image, 0, 65535).astype(np.uint16), folder / f"cell{i}.tif")
    return folder


def command(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, "-m", f"cugan_lightning.apps.{tool}", *args],
        capture_output=True, text=True, timeout=600, cwd=cwd,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.mark.slow
def test_train_restore_and_evaluate_your_own_16_bit_gray_folder(tmp_path):
    train, val, test = (cells(tmp_path / name, n, 48, seed) for name, n, seed in (("train", 4, 0), ("val", 2, 1), ("test", 2, 2)))  # fmt: skip
    # 1. train: the recipe with the folders given (tiny widths and a few iterations here)
    tiny = [o for o in TINY if not o.startswith(("data.eval_settings", "model.figure_setting"))]
    run = command(
        "train", "experiment=own_gray16", f"data.train_dir={train}", f"data.val_dir={val}", *tiny,
        "iterations=4", "data.batches_per_epoch=2", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file(), run.stdout[-2000:]
    with (tmp_path / "run" / "csv" / "metrics.csv").open() as f:
        logged = {key for row in csv.DictReader(f) for key, value in row.items() if value}
    assert {"val/psnr/b0_n10", "val/psnr/b0_n0_p15", "val/psnr/b0_n5_p10"} <= logged

    # 2. restore one file, told both noise levels: 16-bit gray in, 16-bit gray out
    source = test / "cell0.tif"
    out = tmp_path / "cell0_restored.tif"
    run = command(
        "restore", str(source), "-o", str(out), "--model", str(ckpt), "--noise", "5", "--poisson", "10",
        cwd=tmp_path,
    )  # fmt: skip
    restored, original = read_image_raw(out), read_image_raw(source)
    assert restored.dtype == np.uint16 and restored.shape == original.shape == (48, 48)
    assert np.any(restored % 257 != 0)  # not squeezed through 8 bits
    assert not np.array_equal(restored, original)  # the model did something

    # a factor the model does not have is refused by name, and nothing is written
    refused = subprocess.run(
        [sys.executable, "-m", "cugan_lightning.apps.restore", str(source), "-o", str(tmp_path / "no.tif"),
         "--model", str(ckpt), "--blur", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode != 0 and "blur" in refused.stderr and not (tmp_path / "no.tif").exists()

    # 3. evaluate on the held-out folder at Gaussian, Poisson and both
    command(
        "evaluate", f"models.cunet={ckpt}", f"data.test_dir={test}", "data.crop=null",
        "settings=[[0,10,0,0],[0,0,0,15],[0,5,0,10]]", "metrics=[psnr,ssim]", "figures=false",
        f"hydra.run.dir={tmp_path / 'evaluate'}", cwd=tmp_path,
    )  # fmt: skip
    with (tmp_path / "evaluate" / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    psnr = {
        row["setting"]: float(row["value"])
        for row in rows
        if (row["metric"], row["model"]) == ("psnr", "cunet")
    }
    assert set(psnr) == {"b0_n10", "b0_n0_p15", "b0_n5_p10"}, rows
    assert all(20 < value < 99 for value in psnr.values()), psnr
