"""Gray and 16-bit images end to end: data.channels=1 and degradation.bits=16 through the data module, both
training stages, the checkpoint's channel count, and the tools that read it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, TINY_GAN, compose_config
from cugan_lightning.apps.train import build, train
from cugan_lightning.checkpoint import load_generator, read_checkpoint
from cugan_lightning.data import RestorationDataModule
from cugan_lightning.data.io import read_image_raw, write_image
from cugan_lightning.data.layouts import LUMA_WEIGHTS, to_gray_array
from cugan_lightning.degradations import degrade, quantize

GRAY = ["data.channels=1"]


def gray16_folder(folder: Path, count: int = 3, size: int = 40) -> Path:
    """16-bit gray PNGs whose values use the low byte (no multiple of 257)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        ramp = np.linspace(1000, 64000, size * size).reshape(size, size)
        image = (ramp + rng.integers(0, 200, (size, size))).astype(np.uint16)
        write_image(image, folder / f"g{i}.png")
    return folder


def rgb_folder(folder: Path, count: int = 2, size: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        write_image(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), folder / f"c{i}.png")
    return folder


def test_rgb_to_gray_is_bt601_luma_and_gray_stays_as_it_is():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 90]]], dtype=np.uint8)
    expected = np.round(rgb.astype(float) @ np.asarray(LUMA_WEIGHTS)).astype(np.uint8)
    assert to_gray_array(rgb).tolist() == expected.tolist() == [[76, 150, 29, 131]]
    gray16 = np.array([[1, 258, 65535]], dtype=np.uint16)
    assert to_gray_array(gray16) is gray16 and to_gray_array(np.dstack([gray16, gray16])).dtype == np.uint16


def test_16_bit_quantisation_keeps_the_low_byte_and_8_bits_stay_the_default():
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    assert torch.equal(quantize(x), torch.round(x * 255.0) / 255.0)  # the default path, bit for bit
    sixteen = quantize(x, bits=16)
    assert torch.equal(sixteen * 65535, torch.round(sixteen * 65535))
    assert (sixteen * 65535 % 257 != 0).any()  # not 8-bit values scaled to 16 bits
    with pytest.raises(ValueError, match="8 or 16"):
        quantize(x, bits=12)
    gen = torch.Generator().manual_seed(0)
    eight = degrade(x, 0.0, 5.0, generator=gen)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(eight, degrade(x, 0.0, 5.0, generator=gen, bits=8))


def test_gray_data_module_reads_16_bit_at_full_precision_and_converts_rgb_in_one_log_line(tmp_path, caplog):
    data = RestorationDataModule(
        train_dir=str(gray16_folder(tmp_path / "train")),
        val_dir=str(rgb_folder(tmp_path / "val")),
        patch_size=16,
        batch_size=2,
        val_crop=32,
        eval_settings=[(0, 15)],
        num_workers=0,
        channels=1,
        bits=16,
    )
    with caplog.at_level(logging.INFO):
        data.setup("fit")
    said = [r.message for r in caplog.records if "converted to gray" in r.message]
    assert len(said) == 1 and "2 colour image(s)" in said[0] and "data.val_dir" in said[0]
    gt = data.train_set[0]["gt"]
    assert gt.shape == (1, 16, 16)
    assert (gt * 65535 % 257 != 0).any()  # 16-bit values, not squeezed to 8 bits
    batch = data.degrade_train_batch(torch.stack([gt, data.train_set[1]["gt"]]), 0)
    assert batch["lq"].shape == (2, 1, 16, 16)
    assert torch.equal(batch["lq"] * 65535, torch.round(batch["lq"] * 65535))  # quantised to 16 bits
    item = data.val_set[0]
    assert item["gt"].shape == item["lq"].shape == (1, 32, 32)


def test_a_gray_model_trains_through_the_app_and_its_checkpoint_says_one_channel(tmp_path):
    train_dir = gray16_folder(tmp_path / "train")
    cfg = compose_config(
        [*TINY, *GRAY, "degradation.bits=16", f"data.train_dir={train_dir}", "iterations=3",
         "data.batches_per_epoch=3"],
        tmp_path / "run",
    )  # fmt: skip
    assert cfg.model.net_g.in_channels == 1
    result = train(cfg)
    metadata = read_checkpoint(result["last_checkpoint"])["cugan"]
    assert metadata["generator"]["config"]["in_channels"] == 1
    net, codec = load_generator(result["last_checkpoint"])
    x = torch.rand(1, 1, 20, 24)
    with torch.no_grad():
        assert net(x, codec.encode({"blur": 0.0, "noise": 20.0})).shape == x.shape
    assert list((tmp_path / "run" / "images").glob("val_modulation_*.png"))


def test_a_gray_gan_stage_trains_with_a_gray_discriminator_and_perceptual_loss(tmp_path):
    from cugan_lightning.checkpoint import save_generator_checkpoint
    from cugan_lightning.degradations import LevelCodec
    from cugan_lightning.networks import CUnet

    torch.manual_seed(0)
    stage1 = save_generator_checkpoint(
        tmp_path / "gray1.ckpt", CUnet(in_channels=1, channels=(4, 8, 16), blocks=(1, 1, 1)), LevelCodec()
    )
    cfg = compose_config(
        [*TINY, *TINY_GAN, *GRAY, f"init.ckpt={stage1}", "iterations=2", "data.patch_size=32"],
        tmp_path / "gan",
    )
    assert cfg.model.net_d.in_channels == 1
    _, model, _ = build(cfg)
    assert model.net_d.in_channels == 1
    result = train(cfg)
    assert read_checkpoint(result["last_checkpoint"])["cugan"]["generator"]["config"]["in_channels"] == 1


@pytest.mark.parametrize("name", ["quickstart_cpu_gray", "cpu_hour_gray"])
def test_gray_experiments_train_gray_models(name, tmp_path):
    cfg = compose_config([f"experiment={name}"], tmp_path)
    assert cfg.data.channels == 1 and cfg.model.net_g.in_channels == 1
    if name == "cpu_hour_gray":
        assert cfg.data.train_dir.endswith("Train400") and cfg.data.val_dir.endswith("Set12")
        assert cfg.degradation.sampler.p_single == 1.0 and cfg.degradation.sampler.p_blur_given_single == 0.0
        assert [list(s) for s in cfg.data.eval_settings] == [[0, 15], [0, 25], [0, 50]]


def test_read_back_16_bit_gray(tmp_path):
    folder = gray16_folder(tmp_path / "g", count=1)
    array = read_image_raw(folder / "g0.png")
    assert array.dtype == np.uint16 and array.ndim == 2 and (array % 257 != 0).any()
