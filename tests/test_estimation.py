"""Blind level estimates: JPEG quality read exactly off a file's tables, noise sigma by two classical
estimators, and a stated answer (never an exception) for images that say nothing about a factor."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.feature import canny

from conftest import assert_one_line_error, compose_config
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.degradations.blur import gaussian_blur
from cugan_lightning.estimation import (
    Estimate,
    blur_by_consistency,
    consistency_applies,
    estimate_noise,
    jpeg_quality_from_file,
    jpeg_quality_from_tables,
)


def _jpeg(image: np.ndarray, **save) -> Image.Image:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", **save)
    buffer.seek(0)
    return Image.open(buffer)


@pytest.mark.parametrize("quality", [5, 10, 23, 49, 50, 51, 75, 90, 97, 100])
def test_jpeg_quality_is_read_exactly_from_a_libjpeg_file(quality):
    estimate = jpeg_quality_from_file(_jpeg(data.chelsea(), quality=quality))
    assert estimate.exact and estimate.value == quality
    gray = jpeg_quality_from_file(_jpeg(data.camera(), quality=quality))  # one table only
    assert gray.exact and gray.value == quality


def test_custom_tables_are_named_and_approximated():
    luma = [16] * 64  # flat, not an IJG scaling of Annex K
    estimate = jpeg_quality_from_file(_jpeg(data.chelsea(), qtables=[luma, luma]))
    assert not estimate.exact
    assert "not IJG's" in estimate.note
    assert 1 <= estimate.value <= 100


def test_jpeg_quality_of_a_non_jpeg_file_is_unknown_with_a_reason(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(data.chelsea()).save(path)
    estimate = jpeg_quality_from_file(path)
    assert estimate.value is None and "PNG" in estimate.note
    assert jpeg_quality_from_tables({}).value is None


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return data.astronaut()[:256, 128:384]


@pytest.mark.parametrize("method", ["pca", "wavelet"])
@pytest.mark.parametrize("sigma", [5, 15, 30])
def test_noise_sigma_is_recovered(clean, method, sigma):
    rng = np.random.default_rng(sigma)
    noisy = np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
    estimate = estimate_noise(noisy, method)
    assert isinstance(estimate, Estimate) and estimate.method == method
    # clipping at 0 and 255 lowers the measurable sigma a little; the PCA estimator is the tighter of the two
    tolerance = {"pca": 0.08, "wavelet": 0.25}[method]
    assert abs(estimate.value - sigma) <= tolerance * sigma + 0.6


def test_a_noise_free_textured_image_reads_as_nearly_noise_free():
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    texture = 0.5 + 0.2 * np.sin(2 * np.pi * (3 * xx + 2 * yy)) + 0.2 * np.cos(2 * np.pi * 7 * xx * yy)
    image = np.round(np.stack([texture, texture**2, 1 - texture], axis=-1) * 255).astype(np.uint8)
    assert estimate_noise(image, "pca").value < 1.0  # the 8-bit rounding alone is sigma 0.29
    rng = np.random.default_rng(0)
    noisy = np.clip(np.round(image + rng.normal(0, 10, image.shape)), 0, 255).astype(np.uint8)
    assert estimate_noise(noisy, "pca").value == pytest.approx(10, abs=1)


def test_float_and_uint8_inputs_agree(clean):
    rng = np.random.default_rng(0)
    noisy = np.clip(np.round(clean + rng.normal(0, 20, clean.shape)), 0, 255).astype(np.uint8)
    assert estimate_noise(noisy).value == pytest.approx(estimate_noise(noisy / 255.0).value, rel=1e-9)


def test_flat_and_tiny_images_get_a_stated_answer():
    flat = estimate_noise(np.full((64, 64, 3), 0.5))
    assert flat.value == pytest.approx(0.0, abs=1e-6) and "flat" in flat.note
    tiny = estimate_noise(np.zeros((5, 5, 3), dtype=np.uint8))
    assert tiny.value is None and "too small" in tiny.note
    assert estimate_noise(np.zeros((3, 3), dtype=np.uint8), "wavelet").value is None


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown noise estimator 'mad'"):
        estimate_noise(np.zeros((32, 32)), "mad")
    with pytest.raises(ValueError, match="shape"):
        estimate_noise(np.zeros((2, 32, 32, 3)))
    with pytest.raises(ValueError, match="uint16"):
        estimate_noise(np.zeros((32, 32), dtype=np.uint16))


# ------------------------------------------------------------------------------------------ the learned one
TINY_ESTIMATOR = [
    "experiment=estimator_cpu",
    "data=embedded",
    "model.net.channels=4",
    "model.net.depth=1",
    "data.patch_size=32",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.val_crop=32",
    "data.batches_per_epoch=4",
    "data.eval_settings=[[0,30],[2,0]]",
    "trainer.precision=32-true",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
    "iterations=8",
]


def test_the_map_and_the_global_estimate_agree():
    import torch

    from cugan_lightning.networks import LevelEstimator

    torch.manual_seed(0)
    net = LevelEstimator(cond_dim=3, channels=4, depth=2)
    x = torch.rand(2, 3, 37, 50)
    raw = net(x)
    assert raw.shape == (2, 3, 10, 13)  # two stride-2 stages, rounded up
    assert torch.allclose(net.global_z(x), raw.mean(dim=(2, 3)).clamp(0, 1))
    assert net.condition_map(x).min() >= 0 and net.condition_map(x).max() <= 1
    with pytest.raises(ValueError, match="positive"):
        LevelEstimator(cond_dim=0)


def test_attention_pooling_starts_at_the_mean_and_weighs_each_location_by_its_softmax(tmp_path):
    """Pooled by attention, an image's value is its map weighted by a softmax over the locations: at the zero
    initialisation the plain mean, and where the weight head singles out one location, that location's value.
    Its description travels with the file, and a mean-pooled estimator's description is as it always was."""
    from cugan_lightning.degradations import LevelCodec
    from cugan_lightning.estimation import LearnedEstimator, load_estimator, save_estimator
    from cugan_lightning.networks import LevelEstimator

    torch.manual_seed(0)
    net = LevelEstimator(cond_dim=2, channels=4, depth=1, pooling="attention")
    with torch.no_grad():  # a map inside [0, 1], where levels are not clamped
        net.head.bias.fill_(0.5)
    x = torch.rand(2, 3, 40, 36)
    x[..., :20] = 0.5  # a flat half and a textured one: the map and the weights vary over the image
    raw = net(x)
    assert torch.allclose(net.pooled(x), raw.mean(dim=(2, 3)), atol=1e-6)
    image = x[0].permute(1, 2, 0).numpy()
    plain = LevelEstimator(cond_dim=2, channels=4, depth=1)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("weight.")})
    # at the start the per-pixel levels are the mean-pooled network's (plain smoothing), too
    uniform = LearnedEstimator(net, LevelCodec()).level_maps(image, ("blur", "noise"))
    reference = LearnedEstimator(plain, LevelCodec()).level_maps(image, ("blur", "noise"))
    assert all(np.allclose(uniform[k], reference[k], atol=1e-5) for k in ("blur", "noise"))
    # a weight head that reads the first feature channel, sharpened: pooling is the softmax-weighted map,
    # computed here from the features themselves
    with torch.no_grad():
        net.weight.weight[:, 0] = 100.0
        net.weight.bias.copy_(torch.tensor([0.3, -0.2]))
    features = net.features(x - 0.5)
    logits = 100.0 * features[:, :1] + torch.tensor([0.3, -0.2]).view(1, 2, 1, 1)
    shares = torch.exp(logits - logits.amax(dim=(2, 3), keepdim=True))
    shares = shares / shares.sum(dim=(2, 3), keepdim=True)
    assert torch.allclose(net.map_and_weights(x)[1], shares, atol=1e-6)
    assert torch.allclose(net.pooled(x), (raw * shares).sum(dim=(2, 3)), atol=1e-5)
    assert shares.amax() > 3 * shares.amin()
    assert not torch.allclose(net.pooled(x), raw.mean(dim=(2, 3)), atol=1e-4)
    assert torch.allclose(net.global_z(x), net.pooled(x).clamp(0, 1))
    # a mean-pooled network's shares are uniform
    assert torch.allclose(plain.map_and_weights(x)[1], torch.full((2, 2, 10, 9), 1 / 90))
    # per pixel, each neighbourhood leans on its trusted cells as the whole image does, and the smoothed map
    # no longer matches plain smoothing
    leaning = LearnedEstimator(net, LevelCodec()).level_maps(image, ("blur",))["blur"]
    assert np.isfinite(leaning).all() and not np.allclose(leaning, reference["blur"], atol=1e-3)
    levels = raw[0, 0].detach().clamp(0, 1) * 4  # a weighted mean of the cells' levels: inside their range
    assert float(levels.min()) - 1e-4 <= leaning.min() and leaning.max() <= float(levels.max()) + 1e-4
    assert "pooling" not in plain.config and net.config["pooling"] == "attention"
    loaded = load_estimator(
        save_estimator(LearnedEstimator(net, LevelCodec()), tmp_path / "a.pt", half=False)
    )
    assert loaded.net.config["pooling"] == "attention"
    assert torch.allclose(loaded.net.pooled(x), net.pooled(x), atol=1e-6)
    with pytest.raises(
        ValueError, match=r"pooling must be one of \['mean', 'attention'\], or a list .*; got 'max'"
    ):
        LevelEstimator(pooling="max")
    with pytest.raises(ValueError, match=r"a list of 2 of them \(one per factor\); got \['attention'\]"):
        LevelEstimator(pooling=["attention"])
    # one pooling per factor: blur by attention, noise by the plain mean, whatever the weight head says
    mixed = LevelEstimator(cond_dim=2, channels=4, depth=1, pooling=["attention", "mean"])
    mixed.load_state_dict(net.state_dict())
    assert torch.allclose(mixed.map_and_weights(x)[1][:, 0], shares[:, 0], atol=1e-6)
    assert torch.allclose(mixed.map_and_weights(x)[1][:, 1], torch.full((2, 10, 9), 1 / 90))
    assert torch.allclose(mixed.pooled(x)[:, 1], raw[:, 1].mean(dim=(1, 2)), atol=1e-6)
    assert mixed.config["pooling"] == ["attention", "mean"]
    loaded = load_estimator(
        save_estimator(LearnedEstimator(mixed, LevelCodec()), tmp_path / "m.pt", half=False)
    )
    assert torch.allclose(loaded.net.pooled(x), mixed.pooled(x), atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_a_tiled_reading_reads_each_tile_as_a_training_patch_and_pools_them_together(
    tmp_path, monkeypatch, pooling
):
    """With a reading tile, the network reads each square of the image on its own (the last row and column
    padded by reflection) and pools every cell of every tile at once: computed here tile by tile by hand."""
    from cugan_lightning.estimation import LearnedEstimator, load_estimator, save_estimator
    from cugan_lightning.networks import LevelEstimator

    torch.manual_seed(0)
    net = LevelEstimator(cond_dim=2, channels=4, depth=1, pooling=pooling)
    if net.weight is not None:  # a weight head away from its zero start, so that the softmax weighs cells
        torch.nn.init.normal_(net.weight.weight, std=2.0)
    x = torch.rand(1, 3, 40, 57)
    padded = torch.nn.functional.pad(x, (0, 7, 0, 8), mode="reflect")  # to 3 x 4 tiles of 16
    maps, logits = [], []
    for i in range(0, 48, 16):
        row = [padded[..., i : i + 16, j : j + 16] for j in range(0, 64, 16)]
        maps.append(torch.cat([net(t) for t in row], dim=3))
        if net.weight is not None:
            logits.append(torch.cat([net.weight(net._features(t)) for t in row], dim=3))
    expected = torch.cat(maps, dim=2)[..., :10, :15]  # the image's own cells: ceil(40 / 4) x ceil(57 / 4)
    with torch.no_grad():
        assert torch.allclose(net.map_and_weights(x, tile=16)[0], expected, atol=1e-6)
        if net.weight is None:
            pooled = expected.mean(dim=(2, 3))
        else:
            weights = torch.cat(logits, dim=2)[..., :10, :15].flatten(2).softmax(dim=2)
            pooled = (expected.flatten(2) * weights).sum(dim=2)
        assert torch.allclose(net.pooled(x, tile=16), pooled, atol=1e-5)
        assert not torch.allclose(net.pooled(x, tile=16), net.pooled(x), atol=1e-4)  # tiles read differently
        small = x[..., :12, :]  # under a tile: read whole
        assert torch.allclose(net.pooled(small, tile=16), net.pooled(small), atol=1e-7)
    with pytest.raises(ValueError, match="a reading tile must be a multiple of 4 pixels"):
        net.pooled(x, tile=18)
    # the estimator reads by its tile, and its file keeps it; a file without one reads whole
    image = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    tiled = LearnedEstimator(net, LevelCodec(), tile=16)
    whole = LearnedEstimator(net, LevelCodec())
    as_read = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        assert torch.allclose(tiled.z(image), net.pooled(as_read, tile=16)[0].clamp(0, 1), atol=1e-6)
        assert torch.allclose(whole.z(image), net.global_z(as_read)[0], atol=1e-6)
    assert tiled.condition_map(image).shape == (2, 10, 15)
    # one factor by tile, the other whole (a second pass): each as its own reading has it
    mixed = LearnedEstimator(net, LevelCodec(), tile=16, tiled=["noise"])
    assert torch.allclose(mixed.z(image), torch.stack([whole.z(image)[0], tiled.z(image)[1]]), atol=1e-6)
    assert torch.allclose(mixed.condition_map(image)[0], whole.condition_map(image)[0], atol=1e-6)
    assert torch.allclose(mixed.condition_map(image)[1], tiled.condition_map(image)[1], atol=1e-6)
    assert load_estimator(save_estimator(mixed, tmp_path / "m.pt", half=False)).tiled == ("noise",)
    with pytest.raises(
        ValueError, match=r"got \['jpeg'\]: 'jpeg' is not a factor of the codec \['blur', 'noise'\]"
    ):
        LearnedEstimator(net, LevelCodec(), tile=16, tiled=["jpeg"])
    with pytest.raises(ValueError, match=r"with a tile; got \['noise'\]: no tile"):
        LearnedEstimator(net, LevelCodec(), tiled=["noise"])
    # an image under the tile is read whole, in one pass, whichever factors the file reads by tile
    expected_whole = whole.z(image)
    passes = []
    features = net._features
    monkeypatch.setattr(net, "_features", lambda t: passes.append(tuple(t.shape)) or features(t))
    under = LearnedEstimator(net, LevelCodec(), tile=64, tiled=["noise"])
    assert torch.allclose(under.z(image), expected_whole, atol=1e-6) and passes == [(1, 3, 40, 57)]
    monkeypatch.undo()

    assert load_estimator(save_estimator(tiled, tmp_path / "t.pt", half=False)).tile == 16
    assert load_estimator(save_estimator(whole, tmp_path / "w.pt", half=False)).tile is None
    for bad in (18, 8, 16.0, True):
        with pytest.raises(ValueError, match=f"a multiple of 4 pixels, 16 or more; got {bad!r}"):
            LearnedEstimator(net, LevelCodec(), tile=bad)


def test_a_tiled_estimators_level_maps_place_each_windows_reading_at_its_centre(monkeypatch):
    """With a reading tile, the per-pixel map is every half-tile-strided window's pooled reading placed at the
    window's centre and interpolated between centres: with a network that reads a window's mean pixel, a linear ramp
    comes back as itself between the outer centres, and held at them beyond."""
    from cugan_lightning.estimation import LearnedEstimator
    from cugan_lightning.networks import LevelEstimator

    net = LevelEstimator(cond_dim=2, channels=4, depth=1)
    seen = []

    def mean_pixel(x, tile=None):
        seen.append(tuple(x.shape[-2:]))
        return x.mean(dim=(1, 2, 3))[:, None].expand(-1, 2)

    monkeypatch.setattr(net, "pooled", mean_pixel)
    width = 80  # (80 - 16) / 8 + 1 = 9 windows across, 5 down: no padding
    ramp = (torch.arange(width, dtype=torch.float32) / width).expand(3, 48, width).contiguous()
    maps = LearnedEstimator(net, LevelCodec(), tile=16).level_maps(ramp, ("blur", "noise"))
    assert set(seen) == {(16, 16)}  # windows of the tile
    columns = torch.arange(width, dtype=torch.float64)
    expected = (columns.clamp(7.5, width - 8.5) / width).numpy()  # the outer centres: 7.5 and 71.5
    for name, top in (("blur", 4.0), ("noise", 50.0)):
        assert maps[name].shape == (48, width)
        np.testing.assert_allclose(maps[name], np.broadcast_to(expected * top, (48, width)), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_estimator_trains_checkpoints_and_loads(tmp_path, pooling):
    import torch

    from cugan_lightning.apps.train import train
    from cugan_lightning.estimation import load_estimator

    result = train(compose_config([*TINY_ESTIMATOR, f"model.net.pooling={pooling}"], tmp_path))
    metrics = result["metrics"]
    for name in (
        "val/level_error",
        "val/mae/blur",
        "val/mae/noise",
        "val/mae/noise/b0_n30",
        "val/mae/blur/b2_n0",
    ):
        assert name in metrics
    # the per-factor errors are |z error| x max level: blur at most 4 px, noise at most 50
    assert 0 <= metrics["val/mae/blur"] <= 4 and 0 <= metrics["val/mae/noise"] <= 50
    estimator = load_estimator(result["best_checkpoint"])
    assert estimator.codec.names == ("blur", "noise")
    assert (estimator.net.weight is not None) == (pooling == "attention")
    if pooling == "attention":  # the weight head left its zero start: the pooling was trained
        assert estimator.net.weight.weight.abs().max() > 0
    image = data.chelsea()[:64, :64]
    estimates = estimator.estimate(image)
    z = estimator.z(image)
    assert estimates["noise"].value == pytest.approx(float(z[1]) * 50, abs=0.01)
    assert estimates["blur"].method == "learned"
    assert estimator.condition_map(image).shape == (2, 16, 16)
    assert estimator.tile == 32  # read as trained: on tiles of its training patch (data.patch_size)
    # weights as trained: the module's network and the loaded one agree on a batch
    state = torch.load(result["best_checkpoint"], weights_only=True)["state_dict"]
    assert all(torch.equal(state[f"net.{k}"], v) for k, v in estimator.net.state_dict().items())


def test_a_generator_file_is_not_an_estimator(ckpts):
    from cugan_lightning.checkpoint.metadata import CheckpointError
    from cugan_lightning.estimation import load_estimator

    with pytest.raises(CheckpointError, match="no 'cugan_estimator' entry.*experiment=estimator_cpu"):
        load_estimator(ckpts["mse"])


def test_tiny_images_get_no_learned_estimate():
    import torch

    from cugan_lightning.degradations import LevelCodec
    from cugan_lightning.estimation import LearnedEstimator
    from cugan_lightning.networks import LevelEstimator

    estimator = LearnedEstimator(LevelEstimator(cond_dim=2, channels=4, depth=1), LevelCodec())
    estimates = estimator.estimate(np.zeros((8, 40, 3), dtype=np.uint8))
    assert all(e.value is None and "too small" in e.note for e in estimates.values())
    with pytest.raises(ValueError, match="channels"):
        estimator.z(torch.zeros(4, 32, 32))


def test_a_blur_calibration_maps_the_networks_estimate_and_travels_with_the_file(tmp_path, monkeypatch):
    """``a * max(0, b - t)``: blur read below ``t`` is none, above it stretched; noise untouched; saved and loaded
    with the estimator; the shipped estimator carries the one chosen on McMaster18 (docs/estimation.md)."""
    import torch

    from cugan_lightning.degradations import LevelCodec
    from cugan_lightning.estimation import LearnedEstimator, load_estimator, save_estimator
    from cugan_lightning.networks import LevelEstimator

    net = LevelEstimator(cond_dim=2, channels=4, depth=1)
    calibration = {"blur": {"threshold": 1.0, "scale": 1.35}}
    plain = LearnedEstimator(net, LevelCodec())
    calibrated = LearnedEstimator(net, LevelCodec(), calibration=calibration)
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    # the network reads 0.8, 2.0, 3.6 and 4.0 px: none, 1.35 * 1.0, 1.35 * 2.6, and 1.35 * 3.0 capped at 4
    for z, blur in (([0.2, 0.5], 0.0), ([0.5, 0.5], 1.35), ([0.9, 0.5], 3.51), ([1.0, 0.5], 4.0)):
        monkeypatch.setattr(LearnedEstimator, "z", lambda self, image, z=z: torch.tensor(z))
        assert plain.estimate(image)["blur"].value == round(4.0 * z[0], 2)
        assert calibrated.estimate(image)["blur"].value == blur
        assert calibrated.estimate(image)["noise"].value == plain.estimate(image)["noise"].value == 25.0
    monkeypatch.undo()
    assert load_estimator(save_estimator(calibrated, tmp_path / "e.pt")).calibration == calibration
    assert load_estimator(save_estimator(plain, tmp_path / "p.pt")).calibration is None
    for bad in ({"threshold": 1.0, "scale": 0}, {"threshold": 1.0}, {"threshold": "high", "scale": 1}):
        with pytest.raises(ValueError, match="threshold >= 0 and scale > 0"):  # a hand-edited file: one line
            LearnedEstimator(net, LevelCodec(), calibration={"blur": bad})
    from cugan_lightning import zoo

    shipped = load_estimator(zoo.resolve("zoo:estimator-blur-noise"))
    blur = shipped.calibration["blur"]
    assert (blur["threshold"], blur["scale"]) == (0.1, 1.0) and shipped.denoised_search_below is None
    # pooled by attention; noise read on tiles of the training patch, blur on the whole image
    assert shipped.net.config["pooling"] == "attention" and (shipped.tile, shipped.tiled) == (96, ("noise",))
    # the denoised search's threshold travels in the blur entry; a malformed one is named
    searched = {"blur": {"threshold": 1.0, "scale": 1.35, "denoised_search_below": 1.35}}
    assert LearnedEstimator(net, LevelCodec(), calibration=searched).denoised_search_below == 1.35
    assert (
        load_estimator(
            save_estimator(LearnedEstimator(net, LevelCodec(), calibration=searched), tmp_path / "s.pt")
        ).denoised_search_below
        == 1.35
    )
    with pytest.raises(ValueError, match="denoised_search_below is a blur in pixels >= 0, got 'x'"):
        LearnedEstimator(
            net, LevelCodec(), calibration={"blur": {**calibration["blur"], "denoised_search_below": "x"}}
        )


def test_a_noise_calibration_maps_readings_through_its_points(tmp_path, monkeypatch):
    """``{"noise": {"points": [[reading, level], ...]}}``: the reading interpolated between the points and held at
    the end levels outside them, in the global estimate and in the per-region map alike; blur untouched; saved
    with the file; a malformed entry, or one for a factor the codec lacks, named in one line."""
    import torch

    from cugan_lightning import zoo
    from cugan_lightning.degradations import LevelCodec
    from cugan_lightning.estimation import LearnedEstimator, load_estimator, save_estimator
    from cugan_lightning.networks import LevelEstimator

    net = LevelEstimator(cond_dim=2, channels=4, depth=1)
    calibration = {"noise": {"points": [[1.0, 0.0], [21.0, 20.0], [50.0, 50.0]]}}
    calibrated = LearnedEstimator(net, LevelCodec(), calibration=calibration)
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    # the network reads noise 0.5, 11.0, 35.5 and 50: held at 0, 10, 20 + 30 * 14.5 / 29 = 35, and 50
    for z, noise in (([0.5, 0.01], 0.0), ([0.5, 0.22], 10.0), ([0.5, 0.71], 35.0), ([0.5, 1.0], 50.0)):
        monkeypatch.setattr(LearnedEstimator, "z", lambda self, image, z=z: torch.tensor(z))
        estimates = calibrated.estimate(image)
        assert estimates["noise"].value == noise and estimates["blur"].value == 2.0
    monkeypatch.undo()
    # the map: every cell reads noise 11 and blur 2 px; the calibrated noise map is 10 everywhere, blur stays 2
    flat = torch.tensor([0.5, 0.22]).view(1, 2, 1, 1).expand(1, 2, 8, 8).contiguous()
    uniform = torch.full_like(flat, 1 / 64)
    monkeypatch.setattr(net, "map_and_weights", lambda x, tile=None: (flat, uniform))
    maps = calibrated.level_maps(image, ("blur", "noise"))
    np.testing.assert_allclose(maps["noise"], 10.0, atol=1e-4)
    np.testing.assert_allclose(maps["blur"], 2.0, atol=1e-4)
    np.testing.assert_allclose(
        LearnedEstimator(net, LevelCodec()).level_maps(image, ("noise",))["noise"], 11.0, atol=1e-4
    )
    monkeypatch.undo()
    assert load_estimator(save_estimator(calibrated, tmp_path / "e.pt")).calibration == calibration
    for bad in (
        {"points": [[0, 0]]},
        {"points": [[5, 0], [1, 10]]},
        {"points": [[0, 10], [5, 0]]},
        {"points": "x"},
        {},
    ):
        with pytest.raises(ValueError, match="'noise' calibration needs points"):
            LearnedEstimator(net, LevelCodec(), calibration={"noise": bad})
    with pytest.raises(ValueError, match="entry for 'jpeg', which the estimator's codec"):
        LearnedEstimator(net, LevelCodec(), calibration={"jpeg": calibration["noise"]})
    # the shipped estimator's points: one per true noise 0, 5, ..., 50, read by tiles (a reading near the level)
    shipped = np.array(load_estimator(zoo.resolve("zoo:estimator-blur-noise")).calibration["noise"]["points"])
    np.testing.assert_array_equal(shipped[:, 1], np.arange(0, 51, 5))
    assert (np.diff(shipped[:, 0]) > 0).all() and np.abs(shipped[:, 0] - shipped[:, 1]).max() < 2


# ------------------------------------------------------------------------------ every factor, and the tools
def _noisy(sigma: float, seed: int = 0) -> np.ndarray:
    clean = data.astronaut()[:192, 160:352].astype(float)
    rng = np.random.default_rng(seed)
    return np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)


def test_levels_come_from_the_best_source_and_fit_the_codec(tmp_path):
    from cugan_lightning.degradations import LevelCodec
    from cugan_lightning.estimation import estimate_levels

    codec3 = LevelCodec(names=("blur", "noise", "jpeg"), max_levels=(4.0, 50.0, 92.0))
    image = _noisy(20)
    Image.fromarray(image).save(tmp_path / "photo.jpg", quality=5)  # below the codec's lowest quality, 10
    decoded = np.asarray(Image.open(tmp_path / "photo.jpg"))
    levels = estimate_levels(decoded, codec3, source=tmp_path / "photo.jpg")
    assert levels["jpeg"].exact and levels["jpeg"].value == 10  # read as 5, snapped to a level the codec has
    # a reading past quality 100 is nearer 100 or none on the codec's linear scale (102 - quality; none 0)
    assert (
        codec3.snap("jpeg", 100.8) == 100
        and codec3.snap("jpeg", 101.5) == 0
        and codec3.snap("jpeg", 57) == 57
    )
    assert (
        levels["noise"].method == "pca (luma)"
    )  # a JPEG file: luma, where chroma subsampling cannot hide it
    assert levels["blur"].value is None and "learned estimator" in levels["blur"].note
    loud = estimate_levels(_noisy(90), LevelCodec())
    assert loud["noise"].value == 50.0  # beyond the codec: its top, so that it can drive the slider
    png = estimate_levels(image, codec3)  # never compressed: no steps in its pixels
    assert png["jpeg"].value == 0 and "no quantisation steps" in png["jpeg"].note
    assert png["noise"].method == "pca"
    pixels = estimate_levels(_decoded_jpeg(data.astronaut(), 40), codec3)  # a decoded JPEG, no file
    assert pixels["jpeg"].value == 40 and pixels["jpeg"].method == "quantisation steps in the pixels"


def _decoded_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.mark.parametrize("quality", [10, 25, 50, 75, 90])
def test_jpeg_quality_is_read_off_the_steps_a_decoded_jpeg_keeps(quality):
    """A JPEG decoded to pixels (a PNG of it) still has its luma DCT coefficients on the table's steps: the IJG
    quality is read exactly, also when the image was cropped since by a part of a block (the grid is found)."""
    from cugan_lightning.estimation import jpeg_quality_from_pixels

    decoded = _decoded_jpeg(data.astronaut(), quality).astype(np.float32) / 255
    for top, left in ((0, 0), (3, 5)):
        read = jpeg_quality_from_pixels(decoded[top:, left:])
        assert read.value == quality and not read.exact, (top, left, read)


def test_pixels_without_one_qualitys_steps_get_no_quality_and_say_why():
    from cugan_lightning.estimation import jpeg_quality_from_pixels

    never = jpeg_quality_from_pixels(data.astronaut().astype(np.float32) / 255)
    assert never.value == 0 and "never JPEG-compressed" in never.note
    twice = Image.fromarray(_decoded_jpeg(data.astronaut(), 30))
    buffer = io.BytesIO()
    twice.save(buffer, "JPEG", quality=90)
    again = jpeg_quality_from_pixels(np.asarray(Image.open(buffer)).astype(np.float32) / 255)
    assert again.value is None and "compressed more than once" in again.note
    resized = Image.fromarray(_decoded_jpeg(data.astronaut(), 30)).resize((400, 400), Image.BICUBIC)
    assert (
        jpeg_quality_from_pixels(np.asarray(resized).astype(np.float32) / 255).value == 0
    )  # the grid is gone
    for flat in (np.full((64, 64, 3), 0.5, np.float32), np.zeros((12, 40, 3), np.float32)):
        read = jpeg_quality_from_pixels(flat)
        assert read.value is None and ("flat" in read.note or "too small" in read.note)


def test_restore_auto_is_restore_at_the_estimate(ckpts):
    from cugan_lightning import load_restorer

    restorer = load_restorer(ckpts["mse"], estimator=None)
    image = _noisy(20)[:64, :64]
    estimate = restorer.estimate(image)
    assert estimate["noise"].value == pytest.approx(20, abs=2)
    expected = restorer.restore(image, noise=estimate["noise"].value)
    assert np.array_equal(restorer.restore(image, auto=True), expected)
    # a level given is kept; only the others are estimated
    assert np.array_equal(restorer.restore(image, auto=True, noise=10), restorer.restore(image, noise=10))


def test_cli_noise_auto_prints_the_estimate_and_restores_with_it(ckpts, tmp_path, capsys):
    from cugan_lightning import load_restorer
    from cugan_lightning.apps.restore import main

    image = _noisy(20)[:64, :64]
    Image.fromarray(image).save(tmp_path / "photo.png")
    args = [str(tmp_path / "photo.png"), "--model", str(ckpts["mse"]), "--device", "cpu"]
    assert main([*args, "-o", str(tmp_path / "auto.png"), "--noise", "auto", "--blur", "1"]) == 0
    out = capsys.readouterr().out
    assert "photo.png: estimated noise" in out and "by learned" in out  # the zoo's estimator for this codec
    restorer = load_restorer(ckpts["mse"])
    sigma = restorer.estimate(image)["noise"].value
    expected = restorer.restore(image, noise=sigma, blur=1)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "auto.png")), expected)


def test_cli_auto_errors_are_one_line(ckpts, tmp_path, capsys):
    from cugan_lightning.apps.restore import main

    Image.fromarray(_noisy(10)[:32, :32]).save(tmp_path / "photo.png")
    args = [str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png"), "--model", str(ckpts["mse"])]
    assert main([*args, "--jpeg", "auto"]) == 2
    assert_one_line_error(capsys.readouterr().err, "this model has no jpeg slider")
    assert main([*args, "--noise", "loud"]) == 2
    assert "expected a number or auto, got 'loud'" in capsys.readouterr().err
    assert main([*args, "--auto", "--estimator", str(ckpts["mse"])]) == 2
    assert_one_line_error(capsys.readouterr().err, "no 'cugan_estimator' entry")
    assert not (tmp_path / "out.png").exists()


def test_the_evaluation_app_scores_blind_levels_beside_true_ones(ckpts, tmp_path):
    import csv
    import json

    from cugan_lightning.apps.evaluate import run

    overrides = [f"models.cunet={ckpts['mse']}", "metrics=[psnr]", "data.crop=96", "figures=false"]
    overrides += ["settings=[[0,30],[2,0]]", "blind=classical"]
    summary = run(compose_config(overrides, tmp_path, "evaluate"))
    assert [m["name"] for m in summary["models"]] == ["input", "cunet", "cunet_blind"]
    table = json.loads((tmp_path / "estimation.json").read_text())["cunet_blind"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "estimates.csv").read_text())))
    assert len(rows) == 2 * 2 * 2  # images x settings x factors
    for setting in ("b0_n30", "b2_n0"):
        noise = [r for r in rows if r["setting"] == setting and r["factor"] == "noise"]
        mae = sum(abs(float(r["estimate"]) - float(r["true"])) for r in noise) / len(noise)
        assert table[setting]["noise"] == pytest.approx(mae)
        blur = [r["estimate"] for r in rows if r["setting"] == setting and r["factor"] == "blur"]
        if setting == "b0_n30":  # noisy, and no learned estimator: no blind blur, which counts as level 0
            assert blur == ["", ""] and table[setting]["blur"] == pytest.approx(0.0)
        else:  # without noise the blur is read off the input's edges, off the quarter-pixel grid of a search
            # (on 96-pixel crops, the cat's fur and the coffee's foam read 2.60 and 2.25: docs/estimation.md)
            assert all(1.5 <= float(b) <= 3.0 and float(b) % 0.25 != 0 for b in blur), blur
            assert table[setting]["blur"] == pytest.approx(sum(abs(float(b) - 2) for b in blur) / 2)
        psnr = summary["summary"]["psnr"]
        assert table[setting]["gap"] == pytest.approx(
            psnr["cunet_blind"][setting] - psnr["cunet"][setting], abs=1e-6
        )
    assert table["b0_n30"]["noise"] < 3  # the patch-PCA estimate on a clipped, rounded sigma-30 input
    assert "Blind levels: cunet" in summary["estimation_markdown"]


def test_the_evaluation_app_measures_a_level_estimator_alone(tmp_path):
    """``blind=FILE`` and no model: the levels the estimator reads off each degraded input's pixels, recomputed
    here from the same inputs; a JPEG quality's error on the codec's linear scale (none = 102); no restoration,
    so no PSNR gap. ``blind=auto`` needs a model's codec, and says so."""
    import csv
    import json

    from cugan_lightning.apps.evaluate import prepare, run
    from cugan_lightning.apps.hydra_app import ConfigError
    from cugan_lightning.data.io import to_float
    from cugan_lightning.estimation import LearnedEstimator, estimate_levels, save_estimator
    from cugan_lightning.evaluation.runner import degraded_inputs, load_test_images, parse_settings
    from cugan_lightning.networks import LevelEstimator

    torch.manual_seed(0)
    codec = LevelCodec(names=("blur", "noise", "jpeg"), max_levels=(4.0, 50.0, 92.0))
    net = LevelEstimator(cond_dim=3, channels=8, depth=1)
    with torch.no_grad():  # readings inside (0, 1), so that none is clamped to the same level
        net.head.bias.fill_(0.4)
    path = save_estimator(LearnedEstimator(net, codec), tmp_path / "three.pt", half=False)
    overrides = ["metrics=[psnr]", "data.crop=192", "figures=false", f"blind={path}"]
    summary = run(compose_config([*overrides, "settings=[b0_n0_q30,b1_n15]"], tmp_path, "evaluate"))
    assert [m["name"] for m in summary["models"]] == ["input"]
    table = json.loads((tmp_path / "estimation.json").read_text())["three"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "estimates.csv").read_text())))
    images = load_test_images(None, 192)
    settings = parse_settings(["b0_n0_q30", "b1_n15"])
    assert len(rows) == len(images) * 2 * 3 * 2  # as --auto estimates, and the network's reading alone
    learned = LearnedEstimator(net.eval(), codec)
    linear = {"jpeg": lambda q: 0.0 if q == 0 else 102.0 - q}
    for s, setting in enumerate(settings):
        errors = {name: [] for name in codec.names}
        for name, array in images:
            gt = torch.from_numpy(to_float(array)).permute(2, 0, 1)
            lq = degraded_inputs(gt, name, settings, 0, "paper")[s]
            network = learned.estimate(lq.permute(1, 2, 0).numpy())
            for factor, estimate in estimate_levels(lq, codec, learned).items():
                for model, value in (("three", estimate.value), ("three_network", network[factor].value)):
                    key = (name, setting.name, model, factor)
                    (row,) = [r for r in rows if (r["image"], r["setting"], r["model"], r["factor"]) == key]
                    assert float(row["estimate"]) == pytest.approx(value, abs=0.011)
                scale = linear.get(factor, float)
                errors[factor].append(abs(scale(estimate.value) - scale(setting.level(factor))))
            if setting.name == "b0_n0_q30":  # read off the steps the pixels keep, not the random network
                assert estimate.value == 30 and network["jpeg"].value != 30
        for factor, values in errors.items():
            assert table[setting.name][factor] == pytest.approx(np.mean(values))
        assert "gap" not in table[setting.name]
    assert "Level estimator three alone" in summary["estimation_markdown"]
    assert "Level estimator three_network alone" in summary["estimation_markdown"]
    for blind in ("auto", "classical"):
        with pytest.raises(ConfigError, match=f"blind={blind} .*no model is given.*blind=FILE"):
            prepare(compose_config([*overrides[:-1], f"blind={blind}"], tmp_path, "evaluate"))


def _explains_up_to(sharp: torch.Tensor, true_blur: float, calls: list[float]):
    """A restorer that removes blur exactly up to ``true_blur`` and, asked for more, returns the sharp image (no
    image blurred by more than the input's own blur is the input)."""

    def restore(x: torch.Tensor, levels: dict[str, float]) -> torch.Tensor:
        calls.append(levels["blur"])
        left = max(0.0, true_blur**2 - levels["blur"] ** 2) ** 0.5
        return gaussian_blur(sharp, left) if left > 0 else sharp

    return restore


def _squares(blur: float) -> np.ndarray:
    """Four squares of contrast 0.5, far apart, blurred by ``blur`` px with the degradations' own Gaussian."""
    image = np.full((192, 192), 0.25, np.float32)
    for top in (32, 112):
        for left in (32, 112):
            image[top : top + 48, left : left + 48] = 0.75
    x = torch.from_numpy(image)[None, None].repeat(1, 3, 1, 1)
    return gaussian_blur(x, blur)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("blur", [1.0, 1.5, 2.0, 3.0, 4.0])
def test_blur_from_edges_reads_a_blurred_step_off_its_gradient_before_and_after_blurring_again(blur):
    """Steps blurred by a known sigma: the gradient peak's ratio before and after blurring again gives sigma with
    no contrast in it (a pixel-sharp step's own width, about half a pixel, sits under SOFT in quadrature)."""
    from cugan_lightning.estimation import blur_from_edges

    read = blur_from_edges(_squares(blur))
    assert read.method == "edges" and read.value == pytest.approx(blur, abs=0.05)
    assert ("derivative 1 px" in read.note) == (blur > 3.0)  # the coarse reading past 3 px on a clean photo
    brighter = blur_from_edges(np.clip(_squares(blur) * 1.2, 0, 1))  # contrast does not enter the ratio
    assert brighter.value == pytest.approx(read.value, abs=1e-4)


def test_blur_from_edges_reads_a_photo_and_takes_the_coarse_derivative_under_noise():
    from cugan_lightning.estimation import blur_from_edges, edges

    sharp = torch.from_numpy(data.astronaut()[100:356, 150:406].astype(np.float32) / 255).permute(2, 0, 1)[
        None
    ]
    noise = 2 / 255 * torch.randn(sharp.shape, generator=torch.Generator().manual_seed(0))
    for blur in (1.0, 2.0, 3.0):
        blurred = gaussian_blur(sharp, blur)
        clean = ((blurred * 255).round() / 255)[0].permute(1, 2, 0).numpy()
        noisy = ((blurred + noise) * 255).round().clamp(0, 255)[0].permute(1, 2, 0).numpy() / 255
        assert blur_from_edges(clean).value == pytest.approx(blur, abs=0.1)
        read = blur_from_edges(noisy, noise=2.0)
        assert read.value == pytest.approx(blur, abs=0.2)
        # over a pixel with a little noise: the coarse derivative, which noise moves less than the fine
        if blur >= 2.0:
            assert "derivative 1.5 px" in read.note
            y = noisy @ edges.LUMA
            found = canny(y, sigma=1.0)
            fine = edges._blur(edges._width(y, found, edges.FINE, max(20, int(0.01 * found.sum()))))
            assert abs(fine - blur) > abs(read.value - blur) + 0.05


def test_blur_from_edges_says_why_it_has_no_reading_and_levels_fall_back():
    from cugan_lightning.estimation import blur_from_edges, estimate_levels
    from cugan_lightning.estimation.levels import _edge_blur

    for image in (np.full((64, 80, 3), 0.5), np.zeros((20, 20))):
        read = blur_from_edges(image)
        assert read.value is None and "0 edge pixels, too few to read a blur from" in read.note
    codec = LevelCodec()
    learned = {
        "blur": Estimate("blur", 1.5, "learned", note="read"),
        "noise": Estimate("noise", 0.0, "learned"),
    }
    kept = _edge_blur(np.full((64, 80, 3), 0.5), learned, codec)  # no edges: the learned reading, said so
    assert kept.value == 1.5 and kept.method == "learned" and kept.note.startswith("read; 0 edge pixels")
    # without a learned estimator a noise-free photo has a blind blur now, and a noisy one still has none
    clean = estimate_levels(_squares(2.0), codec)
    assert clean["noise"].value < 3 and clean["blur"].method == "edges"
    assert clean["blur"].value == pytest.approx(2.0, abs=0.05)
    noisy = estimate_levels(_noisy(20), codec)
    assert noisy["blur"].value is None and "learned estimator" in noisy["blur"].note
    # a compressed photo's blocks and ringing are not read as edges
    codec3 = LevelCodec(names=("blur", "noise", "jpeg"), max_levels=(4.0, 50.0, 92.0))
    sharp = torch.from_numpy(data.astronaut()[:256, 128:384].astype(np.float32) / 255).permute(2, 0, 1)[None]
    photo = (gaussian_blur(sharp, 2.0)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    uncompressed = estimate_levels(photo, codec3)
    assert uncompressed["jpeg"].value == 0 and uncompressed["blur"].method == "edges"
    compressed = estimate_levels(_decoded_jpeg(photo, 30), codec3)
    assert compressed["jpeg"].value == 30 and compressed["blur"].method == "none"


def test_a_noisy_photo_read_as_little_blur_is_searched_once_denoised():
    """With noise, and an estimator whose calibration asks for it, a learned blur under its
    ``denoised_search_below`` is searched on the photo restored at blur 0 and the estimated noise (denoised, its
    own blur kept), at noise 0; more learned blur stands, with no pass, and so does any without the threshold."""
    below = 1.35
    sharp = torch.from_numpy(data.astronaut()[100:196, 180:276].astype(np.float32) / 255).permute(2, 0, 1)[
        None
    ]
    codec, seen, inputs = LevelCodec(), [], []
    explains = _explains_up_to(sharp, 1.0, [])

    def restore(x: torch.Tensor, levels: dict[str, float]) -> torch.Tensor:
        seen.append((levels["blur"], levels["noise"]))
        inputs.append(x)
        return explains(x, levels)

    noise = 0.06 * torch.randn(sharp.shape, generator=torch.Generator().manual_seed(0))
    noisy = gaussian_blur(sharp, 1.0) + noise
    read = {"blur": Estimate("blur", 1.0, "learned"), "noise": Estimate("noise", 15.0, "learned")}
    assert consistency_applies(read, below) and not consistency_applies(read)
    assert blur_by_consistency(read, noisy, codec, restore) is read and seen == []  # no threshold: no search
    found = blur_by_consistency(read, noisy, codec, restore, below)
    assert found["noise"] is read["noise"]
    assert found["blur"].method == "consistency" and "denoised" in found["blur"].note
    # the jump at 1.25, seen from the denoised photo: a quarter pixel under 1
    assert found["blur"].value == 0.75
    assert seen[0] == (0.0, 15.0)  # denoised once at the estimated noise, then searched at noise 0
    assert seen[1:] == [(0.25 * k, 0.0) for k in range(0, 6)]
    denoised = explains(noisy, {"blur": 0.0, "noise": 15.0})
    assert torch.equal(inputs[0], noisy)  # the photo is what is denoised ...
    # ... and every search pass sees the denoised one
    assert all(torch.equal(x, denoised) for x in inputs[1:])
    seen.clear()
    more = {**read, "blur": Estimate("blur", below, "learned")}
    assert not consistency_applies(more, below)
    assert blur_by_consistency(more, noisy, codec, restore, below) is more
    assert seen == []
    flat = torch.full((1, 3, 64, 64), 0.5)  # denoised flat: no jump anywhere, and the learned reading stands
    assert blur_by_consistency(read, flat, codec, lambda x, levels: x, below) is read


def test_blur_by_consistency_leaves_noisy_tiny_and_blurless_inputs_alone():
    calls: list[float] = []
    restore = _explains_up_to(torch.rand(1, 3, 64, 64), 1.0, calls)
    blur, codec = Estimate("blur", 1.0, "learned"), LevelCodec()
    noisy = {"blur": blur, "noise": Estimate("noise", 3.0, "learned")}
    quiet = {"blur": blur, "noise": Estimate("noise", 2.9, "learned")}  # the edges' photo, never searched
    assert consistency_applies(noisy, 1.35) and not consistency_applies(quiet, 1.35)
    assert blur_by_consistency(quiet, torch.rand(1, 3, 64, 64), codec, restore, 1.35) is quiet
    assert blur_by_consistency(noisy, torch.rand(1, 3, 39, 64), codec, restore, 1.35) is noisy  # under 40 px
    unknown = {"blur": blur, "noise": Estimate("noise", None, "none")}
    assert blur_by_consistency(unknown, torch.rand(1, 3, 64, 64), codec, restore, 1.35) is unknown
    assert not consistency_applies({"noise": Estimate("noise", 5.0, "learned")}, 1.35)  # no blur factor
    assert calls == []


def test_the_zoo_restorer_reads_a_noise_free_blur_off_the_edges_with_no_restoration():
    from cugan_lightning.degradations.grid import degrade_fixed
    from cugan_lightning.inference import load_restorer

    restorer = load_restorer("zoo:", device="cpu")
    gt = torch.from_numpy(data.astronaut()[60:316, 140:396].astype(np.float32) / 255).permute(2, 0, 1)
    read, passes = {}, restorer.stats["forward_calls"]
    for blur in (0.0, 2.0, 4.0):
        lq = degrade_fixed(gt, blur, 0.0, "astronaut").permute(1, 2, 0).numpy()
        read[blur] = restorer.estimate(lq)["blur"]
        assert read[blur].method == "edges" and read[blur].value == pytest.approx(blur, abs=0.25)
    assert restorer.stats["forward_calls"] == passes  # the edges need no pass of the restorer
    flat = restorer.estimate(np.full((64, 80, 3), 128, np.uint8))["blur"]  # no edges: the network's, said so
    assert flat.method == "learned" and "too few to read a blur from" in flat.note
    noisy = degrade_fixed(gt, 2.0, 15.0, "astronaut").permute(1, 2, 0).numpy()
    assert restorer.estimate(noisy)["blur"].method == "learned"  # noise, and much blur: the learned estimate
    little = degrade_fixed(gt, 1.0, 15.0, "astronaut").permute(1, 2, 0).numpy()
    # noise and little blur: the shipped estimator reads it apart from none, and its calibration asks no search
    assert restorer.estimator.denoised_search_below is None
    estimates = restorer.estimate(little)
    assert estimates["blur"].method == "learned" and 0.6 <= estimates["blur"].value <= 1.4
    assert abs(estimates["noise"].value - 15.0) <= 2
    # no search when blur is not wanted: cugan-restore --noise auto --blur 1, restore(auto=True, blur=1)
    passes = restorer.stats["forward_calls"]
    # ... nor an edge reading: the blur given back is the network's
    assert restorer.estimate(lq, factors={"noise"})["blur"].method == "learned"
    restorer.restore(lq, blur=1.0, auto=True)
    assert restorer.stats["forward_calls"] == passes + 1


def test_the_zoo_three_factor_estimator_reads_jpeg_quality_off_pixels_and_is_found_by_codec():
    """``zoo:estimator-blur-noise-jpeg`` is what ``estimator="auto"`` finds for a blur + noise + JPEG model; its
    network alone reads a decoded JPEG's quality near the truth, in order, and an uncompressed photo as barely
    compressed (docs/estimation.md has its measured errors)."""
    from cugan_lightning.estimation import find_estimator

    codec = LevelCodec(names=("blur", "noise", "jpeg"), max_levels=(4.0, 50.0, 92.0))
    learned = find_estimator("auto", codec)
    assert learned is not None and learned.source.endswith("estimator-blur-noise-jpeg.pt")
    assert learned.calibration is None  # no three-factor model ships to calibrate its blur for
    read = [learned.estimate(_decoded_jpeg(data.astronaut(), q))["jpeg"].value for q in (20, 50, 80)]
    assert read == sorted(read) and all(abs(r - q) <= 12 for r, q in zip(read, (20, 50, 80), strict=True))
    assert learned.estimate(data.astronaut())["jpeg"].value >= 90
