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
from cugan_lightning.networks import CUnet, modulation
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


@pytest.mark.parametrize("channels_last", [False, True])
def test_map_weights_follow_the_callers_precision(channels_last):
    """Under bfloat16 autocast a map's weights are bfloat16, as the vector path's are, so the modulated features
    stay bfloat16; a constant map still gives the vector result to bfloat16's precision."""
    net = make_generator(2, channels=(8, 16), blocks=(1, 1))
    x, z = torch.rand(1, 3, 32, 40), torch.rand(1, 2)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert {
            w.dtype for w in net.condition(_constant_map(z, 32, 40), (32, 40), channels_last=channels_last)
        } == {torch.float32}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            weights = net.condition(_constant_map(z, 32, 40), (32, 40), channels_last=channels_last)
            vector, full = net(x, z), net(x, _constant_map(z, 32, 40))
    assert {w.dtype for w in weights} == {torch.bfloat16}
    assert (full.float() - vector.float()).abs().max() < 2e-2


@pytest.mark.parametrize("autocast", [False, True])
def test_a_map_restoration_without_gradients_makes_weights_in_bands_with_the_same_result(
    autocast, monkeypatch
):
    """Without gradients a channels-last map pass makes and applies each point's weights a band of pixels at a
    time, in one shared buffer (make bench: the map path's cost); the result is bit for bit the one with every
    point's weights made whole, kept for backward, or made beforehand."""
    monkeypatch.setattr(modulation, "BAND_BYTES", 40 * 8 * 4)  # a few bands per point, one ending mid-row
    net = make_generator(3, channels=(8, 16, 32), blocks=(2, 1, 1)).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 37, 45).contiguous(memory_format=torch.channels_last)
    painted = _constant_map(torch.tensor([[0.3, 0.4]]), 37, 45)
    painted[:, 1, :, :20], painted[:, 0, 10:] = 0.9, 0.0
    made: list[int] = []
    original = torch.mm
    monkeypatch.setattr(
        torch, "mm", lambda *a, **k: made.append(k.get("out") is not None) or original(*a, **k)
    )
    points = len(net.cond_names)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        with torch.no_grad():
            fast = net(x, painted)
        # every point but the output (cropped from the padded size: made whole) in bands, several per point
        assert made.count(False) == 1 and made.count(True) > 2 * (points - 1)
        made.clear()
        kept = net(x, painted)  # with gradients: a new tensor per point, as backward needs them
        assert made and not any(made)
        held = net(x, weights=net.condition(painted, (37, 45), channels_last=True))  # every point's at once
    assert torch.equal(fast, kept.detach()) and torch.equal(fast, held.detach())


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
    for plain, last in zip(
        net.condition(painted, (48, 64)), net.condition(painted, (48, 64), channels_last=True), strict=True
    ):
        assert (plain - last).abs().max() < 1e-6 and last.is_contiguous(memory_format=torch.channels_last)
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
    before = dict(restorer.stats)
    painted = restorer.restore(image.astype(np.float32) / 255, blur=1.0, maps={"noise": ramp})
    # a move under a painted map costs what a vector move costs: one condition pass and one network pass
    assert restorer.stats["forward_calls"] == before["forward_calls"] + 1
    assert restorer.stats["condition_calls"] == before["condition_calls"] + 1
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
    three = [str(tmp_path / "in.png"), "--model", str(ckpts["mse3"]), "-o", str(tmp_path / "c.png")]
    assert restore_main([*three, "--map", "noise=auto"]) == 0  # the zoo's blur + noise + JPEG estimator
    capsys.readouterr()
    four = [str(tmp_path / "in.png"), "--model", str(ckpts["mse4"]), "-o", str(tmp_path / "d.png")]
    assert restore_main([*four, "--map", "noise=auto"]) != 0  # the zoo has no estimator with a Poisson factor
    assert_one_line_error(capsys.readouterr().err, "--map noise=auto needs a learned level estimator")
    assert not (tmp_path / "d.png").exists()


def test_onnx_with_a_map_input_matches_pytorch_at_other_sizes(tmp_path, ckpts):
    ort = pytest.importorskip("onnxruntime")
    from cugan_lightning.apps.export import main as export_main
    from cugan_lightning.checkpoint import load_generator

    out = tmp_path / "map.onnx"
    assert export_main(["--model", str(ckpts["mse"]), "--format", "onnx", "--z-map", "-o", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "z_map"]
    net, _ = load_generator(ckpts["mse"])
    for height, width in ((32, 48), (29, 51)):
        x, z = torch.rand(1, 3, height, width), torch.rand(1, 2, height, width)
        with torch.no_grad():
            expected = net(x, z).clamp(0, 1).numpy()
        got = session.run(["restored"], {"image": x.numpy(), "z_map": z.numpy()})[0]
        assert got.shape == (1, 3, height, width) and np.abs(got - expected).max() < 1e-4


def test_the_notebook_session_takes_a_map_and_refuses_a_bad_one(ckpts):
    from cugan_lightning.interactive import ModulationSession

    rng = np.random.default_rng(2)
    image = (rng.random((32, 48, 3)) * 255).astype(np.uint8)
    session = ModulationSession(ckpts["mse"], image=image, precision="float32", preview_side=None)
    uniform = session.set(blur=1.0, noise=20)
    assert np.array_equal(session.set_maps({"noise": np.full((32, 48), 20.0)}), uniform)
    painted = np.full((32, 48), 20.0, np.float32)
    painted[:, 24:] = 50.0
    out = session.set_maps({"noise": painted}).astype(float)
    change = np.abs(out - uniform).mean(axis=(0, 2))
    assert change[40:].mean() > 5 * change[:8].mean()
    with pytest.raises(MapError, match="the noise map holds -1"):
        session.set_maps({"noise": painted - 21})
    assert session.maps["noise"] is painted  # the bad map changed nothing
    assert np.array_equal(session.set_maps(None), uniform)


def test_the_spatial_table_scores_true_map_best_vector_and_auto_map(ckpts, tmp_path):
    from cugan_lightning.degradations import degrade_map
    from cugan_lightning.degradations import make_generator as seeded_gen
    from cugan_lightning.evaluation.metrics import ImageScorer
    from cugan_lightning.evaluation.models import load_models, parse_models
    from cugan_lightning.evaluation.spatial import scenario_maps, score_spatial, write_spatial

    maps = scenario_maps("noise_ramp", 4, 11)
    assert torch.equal(maps["noise"][2], torch.linspace(0, 50, 11)) and not maps["blur"].any()
    halves = scenario_maps("blur_halves", 4, 10, blur=2.0)["blur"]
    assert not halves[:, :5].any() and bool((halves[:, 5:] == 2.0).all())
    (model,) = load_models(parse_models({"tiny": str(ckpts["mse"])}), torch.device("cpu"))[1:]
    rng = np.random.default_rng(3)
    images = [(f"im{i}", (rng.random((24, 32, 3)) * 255).astype(np.uint8)) for i in range(2)]
    scorer = ImageScorer(["psnr"])
    rows = score_spatial([model], images, scorer, {"tiny": None}, device=torch.device("cpu"), seed=0)
    assert (
        len(rows) == 2 * 2 * 3
    )  # per image and map: the input, the true map, the best vector (no estimator)
    best = next(
        r
        for r in rows
        if r["image"] == "im1" and r["scenario"] == "noise_ramp" and r["column"] == "best vector"
    )
    # recomputed another way: every vector of the grid, one at a time
    gt = torch.from_numpy(images[1][1].astype(np.float32) / 255).permute(2, 0, 1)[None]
    level = {k: v[None] for k, v in scenario_maps("noise_ramp", 24, 32).items()}
    lq = degrade_map(gt, level, seeded_gen("spatial-eval", 0, "im1", "noise_ramp"))
    scores = [
        float(scorer(model.restore(lq, CODEC.encode({"blur": 0.0, "noise": n})), gt)["psnr"][0])
        for n in range(0, 51, 5)
    ]
    assert best["value"] == pytest.approx(max(scores), abs=1e-4)
    assert best["best"] == {"blur": 0.0, "noise": float(5 * int(np.argmax(scores)))}
    text = write_spatial(rows, "psnr", tmp_path)
    true_mean = np.mean(
        [r["value"] for r in rows if r["scenario"] == "blur_halves" and r["column"] == "true map"]
    )
    assert "| tiny | blur_halves |" in text and f"{true_mean:.2f}" in text and "n/a" in text  # no auto map
    assert (tmp_path / "spatial.json").is_file() and (tmp_path / "spatial.csv").is_file()
