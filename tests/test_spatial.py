"""Spatial z: condition maps in the generator and the discriminator, level maps in the degradations, training with
varying levels, and maps through the Restorer and cugan-restore."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY, TINY_GAN, assert_one_line_error, compose_config, make_generator
from cugan_lightning.apps.restore import main as restore_main
from cugan_lightning.apps.train import build
from cugan_lightning.degradations import (
    LevelCodec,
    SpatialLevels,
    add_gaussian_noise,
    blur_map,
    encode_map,
    gaussian_blur,
    noise_map,
)
from cugan_lightning.degradations import (
    make_generator as seeded,
)
from cugan_lightning.inference import Restorer
from cugan_lightning.inference.maps import MapError, check_maps, read_level_map, write_level_map
from cugan_lightning.networks import CUnet
from cugan_lightning.networks.discriminator import CUGANDiscriminator

CODEC = LevelCodec.default()


def _constant_map(z: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return z[:, :, None, None].expand(-1, -1, height, width).contiguous()


# ------------------------------------------------------------------------------------------- the networks
@pytest.mark.parametrize(
    ("channels", "size"), [((8, 16, 32), (37, 45)), ((8,), (20, 24)), ((4, 4, 4, 4), (33, 17))]
)
def test_a_constant_map_gives_the_vector_result(channels, size):
    net = make_generator(0, channels=channels, blocks=(1,) * len(channels))
    x, z = torch.rand(2, 3, *size), torch.rand(2, 2)
    with torch.no_grad():
        vector = net(x, z)
        full = net(x, _constant_map(z, *size))
        small = net(x, _constant_map(z, 3, 5))  # any map size: resized to the image
    assert (full - vector).abs().max() < 1e-6
    assert (small - vector).abs().max() < 1e-6
    assert (vector - x).abs().max() > 1e-3  # the weights are far from the identity: the check has teeth


def test_a_painted_region_changes_mostly_there_and_weights_match_z():
    net = make_generator(1)
    x, z = torch.rand(1, 3, 48, 64), torch.tensor([[0.0, 0.2]])
    painted = _constant_map(z, 48, 64)
    painted[:, 1, :, :24] = 0.9  # more noise on the left
    with torch.no_grad():
        base, out = net(x, z), net(x, painted)
        via_weights = net(x, weights=net.condition(painted, (48, 64)))
    change = (out - base).abs().mean(dim=(0, 1))
    assert change[:, :16].mean() > 20 * change[:, 40:].mean()
    assert torch.equal(out, via_weights)
    sizes = [tuple(w.shape[-2:]) for w in net.condition(painted, (48, 64))]
    assert sizes == list(net.weight_sizes(48, 64)) and (48, 64) in sizes and (12, 16) in sizes


def test_bad_condition_maps_are_named():
    net = CUnet(channels=(4, 8), blocks=(1, 1))
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(
        ValueError, match=r"z must have shape \(1, 2\) or \(1, 2, H, W\), got \(1, 3, 16, 16\)"
    ):
        net(x, torch.rand(1, 3, 16, 16))
    with pytest.raises(
        ValueError, match=r"weights\['enc0_0'\] must have shape \(1, 4, 1, 1\) or \(1, 4, 16, 16\)"
    ):
        net(x, weights=[torch.rand(1, c, 5, 5) for c in net.cond_channels])


def test_the_discriminator_takes_a_map_and_a_constant_one_is_the_vector():
    torch.manual_seed(0)
    net_d = CUGANDiscriminator(base_channels=4).eval()
    for p in net_d.cond.parameters():
        p.data.normal_()
    x, z = torch.rand(2, 3, 64, 64), torch.rand(2, 2)
    with torch.no_grad():
        vector, mapped = net_d(x, z), net_d(x, _constant_map(z, 64, 64))
        painted = _constant_map(z, 64, 64)
        painted[:, 0, :32] = 1.0
        other = net_d(x, painted)
    assert (vector - mapped).abs().max() < 1e-5
    assert (other - vector).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------- degradations
def test_blur_and_noise_maps_match_the_uniform_degradations():
    x = torch.rand(2, 3, 24, 24)
    assert torch.allclose(blur_map(x, torch.full((2, 24, 24), 1.5)), gaussian_blur(x, 1.5), atol=1e-6)
    halfway = 0.5 * gaussian_blur(x, 1.0) + 0.5 * gaussian_blur(x, 1.25)
    assert torch.allclose(blur_map(x, torch.full((2, 24, 24), 1.125)), halfway, atol=1e-6)
    assert torch.equal(blur_map(x, torch.zeros(2, 24, 24)), x)
    sigma = torch.full((2, 24, 24), 20.0)
    same = add_gaussian_noise(x, 20.0, generator=seeded(3))
    assert torch.allclose(noise_map(x, sigma, seeded(3)), same, atol=1e-6)
    with pytest.raises(ValueError, match=r"noise sigma map must have shape \(B, H, W\) = \(2, 24, 24\)"):
        noise_map(x, torch.zeros(2, 24, 23))


def test_spatial_levels_are_seeded_bounded_and_keep_inactive_factors_at_zero():
    spatial = SpatialLevels(p=1.0)
    levels = {"blur": torch.tensor([0.0, 2.0, 3.0]), "noise": torch.tensor([10.0, 0.0, 40.0])}
    maxima = {"blur": 4.0, "noise": 50.0}
    first = spatial.sample_maps(levels, (32, 32), maxima, seeded(7))
    again = spatial.sample_maps(levels, (32, 32), maxima, seeded(7))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert torch.equal(first["blur"][0], torch.zeros(32, 32)) and torch.equal(
        first["noise"][1], torch.zeros(32, 32)
    )
    for name, top in maxima.items():
        assert first[name].min() >= 0 and first[name].max() <= top + 1e-5
    assert first["noise"][2].std() > 0.5  # it varies
    constant = SpatialLevels(p=0.0).sample_maps(levels, (32, 32), maxima, seeded(7))
    assert torch.equal(constant["noise"][2], torch.full((32, 32), 40.0))
    with pytest.raises(ValueError, match="degradation.spatial.p is a probability"):
        SpatialLevels(p=1.5)


def test_encode_map_is_the_codec_per_pixel():
    noise = torch.rand(2, 8, 8) * 50
    z = encode_map(CODEC, {"blur": torch.tensor([1.0, 4.0]), "noise": noise})
    assert z.shape == (2, 2, 8, 8)
    assert torch.allclose(z[:, 1], noise / 50) and torch.equal(z[1, 0], torch.ones(8, 8))


def test_training_with_level_maps_runs_both_stages(tmp_path, stage1_ckpt):
    cfg = compose_config([*TINY, "degradation.spatial.p=1.0", "debug=fast_dev_run"], tmp_path / "mse")
    datamodule, model, trainer = build(cfg)
    datamodule.setup("fit")
    batch = datamodule.degrade_train_batch(torch.rand(2, 3, 16, 16), 0)
    assert batch["z"].shape == (2, 2, 16, 16) and batch["lq"].shape == (2, 3, 16, 16)
    again = datamodule.degrade_train_batch(batch["gt"], 0)
    assert torch.equal(again["z"], batch["z"]) and torch.equal(again["lq"], batch["lq"])
    trainer.fit(model, datamodule=datamodule)
    assert torch.isfinite(trainer.callback_metrics["train/l_g_pix"])
    gan = [*TINY, *TINY_GAN, "data.patch_size=32", "callbacks=gan", "callbacks.rich_progress_bar=null"]
    gan += [f"init.ckpt={stage1_ckpt}", "degradation.spatial.p=1.0", "debug=fast_dev_run"]
    datamodule, model, trainer = build(compose_config(gan, tmp_path / "gan"))
    trainer.fit(model, datamodule=datamodule)
    assert torch.isfinite(trainer.callback_metrics["train/l_d_real"])


# ------------------------------------------------------------------------------------------- restoring
@pytest.fixture
def restorer():
    return Restorer(make_generator(2, scale=0.2), CODEC, precision="float32")


def test_restore_with_maps_constant_equals_levels_and_a_ramp_changes_its_side(restorer):
    rng = np.random.default_rng(0)
    image = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
    levels = restorer.restore(image, blur=1.0, noise=20)
    constant = restorer.restore(image, blur=1.0, maps={"noise": np.full((40, 56), 20.0)})
    assert np.array_equal(levels, constant)
    ramp = np.full((40, 56), 20.0, dtype=np.float32)
    ramp[:, 28:] = 50.0
    painted = restorer.restore(image.astype(np.float32) / 255, blur=1.0, maps={"noise": ramp})
    diff = np.abs(painted - levels.astype(np.float32) / 255).mean(axis=(0, 2))
    assert diff[44:].mean() > 5 * diff[:12].mean()
    x, z = torch.rand(1, 3, 40, 56), torch.tensor([[0.25, 0.4]])
    by_vector = restorer.restore_tensor(x, z, tile=32, tile_overlap=8)
    by_map = restorer.restore_tensor(x, _constant_map(z, 40, 56), tile=32, tile_overlap=8)
    assert (by_map - by_vector).abs().max() < 1e-5  # each tile gets its own part of the map
    small = restorer.preview(image, maps={"noise": ramp}, max_side=28)
    assert small.shape == (20, 28, 3)


def test_bad_maps_are_named_in_one_line(restorer):
    image = np.zeros((20, 30, 3), np.uint8)
    cases = [
        ({"noise": np.full((20, 30), 60.0)}, r"the noise map holds 60, outside 0..50"),
        ({"noise": np.full((20, 30), np.nan)}, r"the noise map holds nan at row 0, column 0"),
        ({"jpeg": np.zeros((20, 30))}, r"this model has no jpeg factor"),
        ({"noise": np.zeros((2, 20, 30))}, r"the noise map must be 2-D"),
    ]
    for maps, message in cases:
        with pytest.raises(MapError, match=message):
            restorer.restore(image, maps=maps)
    with pytest.warns(UserWarning, match=r"the noise map is 15x10, the image 30x20: resized"):
        restorer.restore(image, maps={"noise": np.linspace(0, 50, 150).reshape(10, 15)})


def test_map_files_round_trip(tmp_path):
    level = np.tile(np.linspace(0, 50, 64, dtype=np.float32), (8, 1))
    for name in ("n.png", "n.tif", "n.npy"):
        write_level_map(level, tmp_path / name, 50.0)
        back = read_level_map(tmp_path / name, CODEC, "noise")
        assert np.abs(back - level).max() < 50 / 65535 + 1e-6, name
    z, notes = check_maps(CODEC, {"noise": back}, torch.tensor([[0.5, 0.0]]), (8, 64))
    assert z.shape == (1, 2, 8, 64) and not notes and torch.equal(z[0, 0], torch.full((8, 64), 0.5))


def test_cugan_restore_takes_maps_and_writes_nothing_for_a_bad_one(tmp_path, ckpts, capsys):
    from PIL import Image

    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((24, 40, 3)) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    ramp = np.tile(np.linspace(0, 50, 40, dtype=np.float32), (24, 1))
    write_level_map(ramp, tmp_path / "noise.png", 50.0)
    np.save(tmp_path / "z.npy", np.stack([np.ones_like(ramp), ramp]))
    common = [str(tmp_path / "in.png"), "--model", str(ckpts["mse"]), "--precision", "float32"]
    assert (
        restore_main(
            [
                *common,
                "-o",
                str(tmp_path / "a.png"),
                "--blur",
                "1",
                "--map",
                f"noise={tmp_path / 'noise.png'}",
            ]
        )
        == 0
    )
    assert restore_main([*common, "-o", str(tmp_path / "b.png"), "--z-map", str(tmp_path / "z.npy")]) == 0
    a, b = (np.asarray(Image.open(tmp_path / f)).astype(int) for f in ("a.png", "b.png"))
    assert np.abs(a - b).max() <= 1  # the same levels from two kinds of file
    capsys.readouterr()
    np.save(tmp_path / "bad.npy", ramp + 10)
    assert (
        restore_main([*common, "-o", str(tmp_path / "c.png"), "--map", f"noise={tmp_path / 'bad.npy'}"]) != 0
    )
    assert_one_line_error(capsys.readouterr().err, "the noise map holds 60, outside 0..50")
    np.save(tmp_path / "three.npy", np.zeros((3, 24, 40), np.float32))
    assert restore_main([*common, "-o", str(tmp_path / "c.png"), "--z-map", str(tmp_path / "three.npy")]) != 0
    assert_one_line_error(
        capsys.readouterr().err, "must have shape (2, H, W) for the factors ['blur', 'noise']"
    )
    assert not (tmp_path / "c.png").exists()
