"""JPEG as a third modulation factor: the device codec against libjpeg, the codec's quality mapping, sampling,
and every user surface with a three-factor checkpoint (two-factor ones keep working)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, TINY_GAN, compose_config, make_generator
from cugan_lightning.apps.dni import main as dni_main
from cugan_lightning.apps.export import main as export_main
from cugan_lightning.apps.restore import main as restore_main
from cugan_lightning.apps.train import build, train
from cugan_lightning.checkpoint import IncompatibleCheckpointsError, save_generator_checkpoint
from cugan_lightning.data import center_crop, load_embedded_image
from cugan_lightning.data.io import read_image_raw, to_float
from cugan_lightning.degradations import (
    LevelCodec,
    LevelSampler,
    degrade,
    degrade_fixed,
    jpeg_device,
    parse_setting,
    setting_name,
)
from cugan_lightning.degradations import (
    make_generator as seeded,
)
from cugan_lightning.dni import interpolate
from cugan_lightning.evaluation.models import load_models, parse_models
from cugan_lightning.evaluation.runner import parse_settings
from cugan_lightning.inference import load_restorer
from cugan_lightning.interactive import ModulationSession

CODEC3 = LevelCodec(names=("blur", "noise", "jpeg"), max_levels=(4.0, 50.0, 92.0))


def libjpeg(array: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255**2 / float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


# ----------------------------------------------------------------------------------------------------- codec


@pytest.mark.parametrize("quality", [10, 30, 75, 95])
def test_the_device_jpeg_follows_libjpeg(quality):
    crop = load_embedded_image("coffee")[:128, :160]
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    ours = (
        (jpeg_device(x, torch.tensor([quality]))[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    )
    reference = libjpeg(crop, quality)
    assert psnr(ours, reference) > 45  # a textbook codec lands near 40 dB (benchmarks/bench_jpeg.py)
    assert abs(psnr(ours, crop) - psnr(reference, crop)) < 0.05  # the same compression strength


def test_the_device_jpeg_takes_a_quality_per_sample_and_zero_passes_through():
    x = torch.rand(3, 3, 32, 48, generator=torch.Generator().manual_seed(0)).mul(255).round().div(255)
    batch = jpeg_device(x, torch.tensor([20, 0, 80]))
    assert torch.equal(batch[1], x[1])
    assert torch.equal(batch[0], jpeg_device(x[:1], torch.tensor([20]))[0])
    assert torch.equal(batch[2], jpeg_device(x[2:], torch.tensor([80]))[0])
    assert not torch.equal(batch[0], x[0])


def test_the_codec_maps_quality_to_z_and_back():
    z = CODEC3.encode({"blur": 2.0, "noise": 25.0, "jpeg": 30})
    assert torch.allclose(z, torch.tensor([[0.5, 0.5, 72 / 92]]))
    assert CODEC3.encode({"jpeg": 10})[0, 2] == 1.0 and CODEC3.encode({"jpeg": 0})[0, 2] == 0.0
    assert torch.allclose(CODEC3.decode(z), torch.tensor([[2.0, 25.0, 30.0]]))
    with pytest.raises(ValueError, match="jpeg quality 5 is outside 10..100 or 0"):
        CODEC3.encode({"jpeg": 5})
    assert (
        CODEC3.snap("jpeg", 4) == 10 and CODEC3.snap("jpeg", 0) == 0 and CODEC3.slider(2) == (0.0, 100.0, 1.0)
    )
    with pytest.raises(ValueError, match="not on JPEG quality"):
        LevelCodec().levels_to_z(1.0, 10.0, 30)


def test_three_factor_sampling_follows_the_group_probabilities():
    sampler = LevelSampler(factors=("blur", "noise", "jpeg"), p_groups=(0.2, 0.3, 0.5))
    levels = sampler.sample_levels(40000, seeded(0))
    active = torch.stack([levels[name] > 0 for name in ("blur", "noise", "jpeg")], dim=1)
    share = {k: float((active.sum(1) == k).float().mean()) for k in (1, 2, 3)}
    # a level label of 0 can make an active factor look inactive (about 1/41 for blur, 1/51 for noise)
    assert share[1] == pytest.approx(0.2, abs=0.02) and share[3] == pytest.approx(0.5 * 0.955, abs=0.03)
    quality = levels["jpeg"][levels["jpeg"] > 0]
    assert quality.min() >= 10 and quality.max() <= 100 and torch.equal(quality, quality.round())
    again = sampler.sample_levels(40000, seeded(0))
    assert all(torch.equal(levels[k], again[k]) for k in levels)


def test_jpeg_settings_are_named_and_made_by_libjpeg():
    assert setting_name(0, 15, 30) == "b0_n15_q30" and setting_name(2, 30) == "b2_n30"
    assert parse_setting("b0_n15_q30") == (0.0, 15.0, 30.0) and parse_setting("b2_n30") == (2.0, 30.0)
    gt8 = center_crop(load_embedded_image("chelsea"), 64)
    gt = torch.from_numpy(to_float(gt8)).permute(2, 0, 1)
    lq = degrade_fixed(gt, 0, 0, image_key="chelsea", jpeg=30)
    expected = libjpeg(gt8, 30)
    np.testing.assert_array_equal((lq.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), expected)
    noisy = degrade(gt[None], 0.0, 15.0, generator=seeded(1), jpeg_quality=30, jpeg_codec="device")
    assert noisy.shape == (1, 3, 64, 64)


# -------------------------------------------------------------------------------------------------- surfaces


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(libjpeg(center_crop(load_embedded_image("coffee"), 48), 30)).save(path)
    return path


def test_restore_tool_and_api_take_the_quality(ckpts, photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert (
        restore_main(
            [str(photo), "-o", str(out), "--model", str(ckpts["mse3"]), "--jpeg", "30", "--noise", "5"]
            + ["--precision", "float32"]
        )
        == 0
    )
    restorer = load_restorer(ckpts["mse3"], precision="float32")
    array = read_image_raw(photo)
    np.testing.assert_array_equal(read_image_raw(out), restorer.restore(array, noise=5, jpeg=30))
    x = torch.from_numpy(to_float(array)).permute(2, 0, 1)[None]
    with torch.no_grad():
        direct = restorer.net_g(x, torch.tensor([[0.0, 0.1, 72 / 92]])).clamp(0, 1)
    expected = (direct[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(read_image_raw(out), expected)
    assert restore_main([str(photo), "-o", str(out), "--model", str(ckpts["gan"]), "--jpeg", "30"]) == 2
    assert "has no jpeg slider" in capsys.readouterr().err
    with pytest.raises(ValueError, match="has no jpeg slider"):
        load_restorer(ckpts["gan"]).restore(array, jpeg=30)


def test_exports_take_a_three_value_z(ckpts, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    assert export_main(["--model", str(ckpts["mse3"]), "-o", str(tmp_path / "m.onnx")]) == 0
    assert export_main(["--model", str(ckpts["mse3"]), "-o", str(tmp_path / "m.safetensors")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    x = np.random.default_rng(0).random((1, 3, 20, 28), dtype=np.float32)
    z = np.array([[0.2, 0.4, 0.6], [0.0, 0.0, 1.0]], dtype=np.float32)
    (onnx_out,) = session.run(None, {"image": x, "z": z})
    net = load_restorer(tmp_path / "m.safetensors").net_g
    with torch.no_grad():
        torch_out = net(torch.from_numpy(x).expand(2, -1, -1, -1), torch.from_numpy(z)).clamp(0, 1).numpy()
    assert onnx_out.shape == (2, 3, 20, 28) and np.abs(onnx_out - torch_out).max() < 1e-4


def test_dni_blends_three_factor_pairs_and_names_a_mixed_pair(ckpts, tmp_path, capsys):
    assert (
        dni_main(
            [
                "--model",
                str(ckpts["mse3"]),
                "--gan",
                str(ckpts["gan3"]),
                "--alpha",
                "0.4",
                "-o",
                str(tmp_path / "b.ckpt"),
            ]
        )
        == 0
    )
    net, codec = interpolate(ckpts["mse3"], ckpts["gan3"], 0.4)
    assert codec == CODEC3 and net.cond_dim == 3
    with pytest.raises(IncompatibleCheckpointsError, match="cond_dim: MSE 3, GAN 2.*level codec"):
        interpolate(ckpts["mse3"], ckpts["gan"], 0.5)
    capsys.readouterr()


def test_notebook_session_has_a_quality_slider(ckpts):
    image = libjpeg(center_crop(load_embedded_image("chelsea"), 32), 20)
    session = ModulationSession(ckpts["mse3"], ckpts["gan3"], image=image, alpha=1.0)
    opened = dict(session.levels)  # the estimate of the zoo's blur + noise + JPEG estimator
    out = session.set(jpeg=20)
    assert session.levels == {**opened, "jpeg": 20.0}
    given = {"blur": opened["blur"], "noise": opened["noise"], "jpeg": 20}
    np.testing.assert_array_equal(out, load_restorer(ckpts["mse3"]).restore(image, **given))
    session.set(jpeg=4)  # between "none" and the lowest quality: the lowest
    assert session.levels["jpeg"] == 10
    pytest.importorskip("ipywidgets")
    session.widgets()
    slider = session.controls["jpeg"]
    assert (slider.min, slider.max, slider.step) == (0.0, 100.0, 1.0)


def test_evaluation_grid_knows_jpeg_settings(ckpts):
    settings = parse_settings(["b0_n0_q30", [1, 15], [0, 15, 50]])
    assert [s.grid for s in settings] == [(0.0, 0.0, 30.0), (1.0, 15.0), (0.0, 15.0, 50.0)]
    assert [s.name for s in settings] == ["b0_n0_q30", "b1_n15", "b0_n15_q50"]
    assert len(parse_settings("paper_jpeg")) == 16
    _, three, two = load_models(
        parse_models({"three": str(ckpts["mse3"]), "two": str(ckpts["gan"])}), torch.device("cpu")
    )
    blur, noise, jpeg = (torch.tensor([settings[0].level(f)]) for f in ("blur", "noise", "jpeg"))
    assert torch.allclose(three.z_for(blur, noise, jpeg), torch.tensor([[0.0, 0.0, 72 / 92]]))
    assert torch.allclose(
        two.z_for(blur, noise, jpeg), torch.tensor([[0.0, 0.0]])
    )  # told blur and noise only


def test_both_stages_size_their_condition_layers_from_the_codec(tmp_path):
    cfg = compose_config(
        [*TINY, "degradation=jpeg", "data.eval_settings=[[0,30],[0,0,30]]", "debug=fast_dev_run"],
        tmp_path / "s1",
    )
    assert cfg.model.net_g.cond_dim == 3
    result = train(cfg)
    assert {"val/psnr/b0_n30", "val/psnr/b0_n0_q30"} <= set(result["metrics"])
    stage1 = save_generator_checkpoint(
        tmp_path / "s1.ckpt", make_generator(0, channels=(4, 8, 16), blocks=(1, 1, 1), cond_dim=3), CODEC3
    )
    gan = [
        *TINY, "degradation=jpeg", *TINY_GAN, f"init.ckpt={stage1}", "data.patch_size=32", "callbacks=gan",
        "callbacks.rich_progress_bar=null", "model.log_figures=false", "debug=fast_dev_run", "data.eval_settings=[[0,0,30]]",
    ]  # fmt: skip
    _, model, _ = build(compose_config(gan, tmp_path / "s2"))
    assert model.net_g.cond_dim == 3 and model.net_d.cond_dim == 3


@pytest.mark.slow
def test_a_three_factor_model_deblocks_better_when_told_the_quality(tmp_path):
    """Trained briefly on one or two active factors, then given held-out photographs with noise and JPEG
    (libjpeg): it restores them better told the true quality than with the JPEG entry of z at 0."""
    cfg = compose_config(
        [
            *TINY,
            "degradation=jpeg",
            "degradation.sampler.p_groups=[0.3,0.7,0]",
            "degradation.sampler.jpeg_quality_max=40",
            "model.net_g.channels=[8,16,32]",
            "iterations=800",
            "data.batches_per_epoch=800",
            "data.batch_size=8",
            "model.optimizer.lr=2e-3",
            "data.patch_size=32",
            "data.eval_settings=[[0,15,20]]",
            "data.val_crop=64",
            "model.log_figures=false",
        ],
        tmp_path,
    )
    result = train(cfg)
    net = load_restorer(result["last_checkpoint"]).net_g
    scores = []
    for name in ("chelsea", "coffee"):
        gt = torch.from_numpy(to_float(center_crop(load_embedded_image(name), 96))).permute(2, 0, 1)
        lq = degrade_fixed(gt, 0, 15, image_key=name, jpeg=20)[None]
        with torch.no_grad():
            outs = [net(lq, CODEC3.encode({"noise": 15, "jpeg": q})).clamp(0, 1) for q in (20, 0)]
        scores.append([10 * math.log10(1 / float(((out[0] - gt) ** 2).mean())) for out in outs])
    told, not_told = np.mean(scores, axis=0)
    print(f"PSNR told {told:.2f} dB, not told {not_told:.2f} dB, per image {scores}")
    assert all(t > n + 0.1 for t, n in scores), scores  # telling the network the true quality restores better
