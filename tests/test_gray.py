"""Gray and 16-bit images end to end: data.channels=1 and degradation.bits=16 through the data module, both
training stages, the checkpoint's channel count, and the tools that read it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf.errors import InterpolationResolutionError

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
        data.setup("test")  # the test grid reads the validation folder again: said once
    said = [r.message for r in caplog.records if "converted to gray" in r.message]
    assert len(said) == 1 and "2 colour image(s)" in said[0] and "data.val_dir" in said[0]
    gt = data.train_set[0]["gt"]
    assert gt.shape == (1, 16, 16)
    assert (gt * 65535 % 257 != 0).any()  # 16-bit values, not squeezed to 8 bits
    batch = data.degrade_train_batch(torch.stack([gt, data.train_set[1]["gt"]]), 0)
    assert batch["lq"].shape == (2, 1, 16, 16)
    codes = batch["lq"] * 65535
    assert torch.equal(codes, torch.round(codes))  # quantised to 16 bits ...
    assert (torch.round(codes) % 257 != 0).any()  # ... and not to 8 (an 8-bit value is a multiple of 257)
    item = data.val_set[0]
    assert item["gt"].shape == item["lq"].shape == (1, 32, 32)
    assert (torch.round(item["lq"] * 65535) % 257 != 0).any()  # the evaluation inputs as well


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


@pytest.mark.parametrize("name", ["quickstart_cpu_gray", "cpu_hour_gray", "own_gray16"])
def test_gray_experiments_compose_gray_models(name, tmp_path):
    cfg = compose_config([f"experiment={name}"], tmp_path)
    assert cfg.data.channels == 1 and cfg.model.net_g.in_channels == 1
    if name == "own_gray16":  # your own folders: required, never the embedded photographs in their place
        for key in ("train_dir", "val_dir"):
            with pytest.raises(InterpolationResolutionError, match=f"data.{key} is required"):
                cfg.data[key]
        assert cfg.degradation.bits == 16 and list(cfg.degradation.codec.names) == ["noise", "poisson"]
    if name == "cpu_hour_gray":
        assert cfg.data.train_dir.endswith("Train400") and cfg.data.val_dir.endswith("Set12")
        assert cfg.degradation.sampler.p_single == 1.0 and cfg.degradation.sampler.p_blur_given_single == 0.0
        assert [list(s) for s in cfg.data.eval_settings] == [[0, 15], [0, 25], [0, 50]]


def test_read_back_16_bit_gray(tmp_path):
    folder = gray16_folder(tmp_path / "g", count=1)
    array = read_image_raw(folder / "g0.png")
    assert array.dtype == np.uint16 and array.ndim == 2 and (array % 257 != 0).any()


# ------------------------------------------------------------------------------------------------- the surfaces


@pytest.fixture(scope="module")
def gray_ckpts(tmp_path_factory) -> dict[str, Path]:
    """A gray MSE / GAN pair of tiny generators (one input channel) and an RGB MSE file."""
    from conftest import make_generator
    from cugan_lightning.checkpoint import save_generator_checkpoint
    from cugan_lightning.degradations import LevelCodec

    folder = tmp_path_factory.mktemp("gray")
    return {
        "gray": save_generator_checkpoint(
            folder / "gray.ckpt", make_generator(0, in_channels=1), LevelCodec()
        ),
        "gray_gan": save_generator_checkpoint(
            folder / "gray_gan.ckpt", make_generator(1, in_channels=1), LevelCodec(), kind="cugan"
        ),
        "rgb": save_generator_checkpoint(folder / "rgb.ckpt", make_generator(0), LevelCodec()),
    }


def low_byte_gray16(size: int = 24) -> np.ndarray:
    image = np.linspace(300, 65000, size * size).reshape(size, size)
    return (image + np.random.default_rng(2).integers(0, 255, (size, size))).astype(np.uint16)


@pytest.mark.parametrize("ext", ["tif", "png"])
def test_restore_keeps_16_bit_gray_files_16_bit_with_a_gray_model(gray_ckpts, tmp_path, capsys, ext):
    from cugan_lightning.apps.restore import main

    source = tmp_path / f"in.{ext}"
    write_image(low_byte_gray16(), source)
    out = tmp_path / f"out.{ext}"
    argv = [
        str(source),
        "-o",
        str(out),
        "--model",
        str(gray_ckpts["gray"]),
        "--noise",
        "10",
        "--device",
        "cpu",
    ]
    assert main([*argv, "--precision", "float32"]) == 0
    assert "gray model" not in capsys.readouterr().out  # gray into a gray model: nothing to say
    restored = read_image_raw(out)
    assert restored.dtype == np.uint16 and restored.shape == (24, 24)
    assert (restored % 257 != 0).mean() > 0.9  # the low byte is used: not 8-bit values scaled by 257


def test_a_gray_model_given_rgb_converts_it_and_says_so_in_one_line(gray_ckpts, tmp_path, capsys):
    from cugan_lightning.apps.restore import main
    from cugan_lightning.inference import load_restorer

    photo = np.random.default_rng(4).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    write_image(photo, tmp_path / "rgb.png")
    argv = [str(tmp_path / "rgb.png"), "-o", str(tmp_path / "out.png"), "--model", str(gray_ckpts["gray"])]
    assert main([*argv, "--noise", "10", "--device", "cpu", "--precision", "float32"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "converted to gray" in line]
    assert len(said) == 1 and "rgb.png" in said[0]
    assert read_image_raw(tmp_path / "out.png").shape == (20, 28)  # a gray model gives gray back

    restorer = load_restorer(gray_ckpts["gray"], precision="float32")
    expected = restorer.restore(to_gray_array(photo), noise=10)
    assert np.abs(restorer.restore(photo, noise=10).astype(int) - expected).max() <= 1  # luma then restored
    batch = torch.rand(2, 3, 16, 16)
    assert restorer.restore(batch, noise=10).shape == (2, 1, 16, 16)


def test_an_rgb_model_given_a_gray_image_says_so_in_one_line(gray_ckpts, tmp_path, capsys):
    from cugan_lightning.apps.restore import main

    write_image(low_byte_gray16(), tmp_path / "g.png")
    argv = [str(tmp_path / "g.png"), "-o", str(tmp_path / "out.png"), "--model", str(gray_ckpts["rgb"])]
    assert main([*argv, "--noise", "10", "--device", "cpu", "--precision", "float32"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "RGB model" in line]
    assert len(said) == 1 and "averaged back to gray" in said[0]
    assert read_image_raw(tmp_path / "out.png").dtype == np.uint16


def test_onnx_export_of_a_gray_model_takes_one_channel(gray_ckpts, tmp_path):
    onnx = pytest.importorskip("onnx")
    from cugan_lightning.apps.export import main
    from cugan_lightning.checkpoint import read_onnx_metadata

    out = tmp_path / "gray.onnx"
    assert main(["--model", str(gray_ckpts["gray"]), "--format", "onnx", "-o", str(out)]) == 0
    graph = onnx.load(str(out)).graph
    image = next(i for i in graph.input if i.name == "image")
    assert image.type.tensor_type.shape.dim[1].dim_value == 1
    metadata, _ = read_onnx_metadata(out)
    assert "(1 or N, 1, H, W)" in metadata["inputs"] and "(N, 1, H, W)" in metadata["outputs"]
    assert metadata["generator"]["config"]["in_channels"] == 1


def test_dni_refuses_a_gray_and_an_rgb_model_naming_the_channels(gray_ckpts, tmp_path, capsys):
    from conftest import assert_one_line_error
    from cugan_lightning.apps.dni import main

    argv = ["--model", str(gray_ckpts["rgb"]), "--gan", str(gray_ckpts["gray_gan"]), "--alpha", "0.5"]
    assert main([*argv, "-o", str(tmp_path / "blend.ckpt")]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, "image channels (in_channels: 1 gray, 3 RGB)")
    assert "3" in err and "1" in err and not (tmp_path / "blend.ckpt").exists()
    argv = ["--model", str(gray_ckpts["gray"]), "--gan", str(gray_ckpts["gray_gan"]), "--alpha", "0.5"]
    assert main([*argv, "-o", str(tmp_path / "blend.ckpt")]) == 0  # two gray models blend


def test_the_evaluation_app_scores_a_gray_model_with_gray_classical_rows(gray_ckpts, tmp_path, caplog):
    from cugan_lightning.apps.evaluate import run

    rgb_folder(tmp_path / "test", count=2, size=48)
    cfg = compose_config(
        ["data.crop=40", "metrics=[psnr,psnr_y,ssim]", "figures=true", "precision=float32",
         f"models.cunet={gray_ckpts['gray']}", "models.nlm=classical:nlm", "models.wiener=classical:wiener",
         f"data.test_dir={tmp_path / 'test'}", "settings=[[0,25],[2,0]]"],
        tmp_path / "run", "evaluate",
    )  # fmt: skip
    with caplog.at_level(logging.INFO):
        summary = run(cfg)["summary"]
    said = [r.message for r in caplog.records if "converted to gray" in r.message]
    assert len(said) == 1 and "data.test_dir" in said[0]
    psnr = summary["psnr"]
    assert set(psnr["nlm"]) == {"b0_n25", "mean"} and set(psnr["wiener"]) == {"b2_n0", "mean"}
    assert (
        psnr["nlm"]["b0_n25"] > psnr["input"]["b0_n25"] and psnr["wiener"]["b2_n0"] > psnr["input"]["b2_n0"]
    )
    assert np.isfinite(psnr["cunet"]["mean"]) and (tmp_path / "run" / "examples.png").is_file()
    assert "PSNR and SSIM on the gray channel" in (tmp_path / "run" / "summary.md").read_text()


def test_gray_and_rgb_models_do_not_share_an_evaluation_table(gray_ckpts, tmp_path):
    from cugan_lightning.apps.evaluate import prepare

    cfg = compose_config(
        ["data.crop=40", "metrics=[psnr]", f"models.cunet={gray_ckpts['gray']}", f"models.cugan={gray_ckpts['rgb']}"],
        tmp_path, "evaluate",
    )  # fmt: skip
    with pytest.raises(ValueError, match="gray and RGB models cannot share a table"):
        prepare(cfg)


def test_gray_scores_equal_those_of_the_rgb_copy():
    from cugan_lightning.evaluation.metrics import ImageScorer

    scorer = ImageScorer(["psnr", "psnr_y", "ssim"])
    out, gt = torch.rand(2, 1, 24, 24), torch.rand(2, 1, 24, 24)
    gray, rgb = scorer(out, gt), scorer(out.expand(-1, 3, -1, -1), gt.expand(-1, 3, -1, -1))
    for label in gray:
        assert torch.allclose(gray[label], rgb[label], atol=1e-4), label


def test_the_web_app_builds_for_a_gray_model(gray_ckpts, ckpts, tmp_path):
    from cugan_lightning.webapp import DEMO_PHOTOS, Workbench
    from cugan_lightning.webapp.page import build_page

    bench = Workbench(gray_ckpts["gray"], gray_ckpts["gray_gan"], preview_side=32, workdir=tmp_path / "work")
    assert "gray" in bench.describe_model()
    demo = bench.open_demo(DEMO_PHOTOS[0].label)
    assert demo.array.ndim == 2 and demo.name.endswith("_gray.png") and ";" not in bench.describe(demo)
    write_image(np.random.default_rng(5).integers(0, 256, (30, 40, 3), dtype=np.uint8), tmp_path / "c.png")
    upload = bench.open_upload(tmp_path / "c.png")
    assert "converted to gray" in bench.describe(upload)
    frames = list(bench.render("s", upload, bench.settings({"noise": 10}, alpha=0.5)))
    assert frames and read_image_raw(frames[-1].download).ndim == 2
    build_page(bench)
    # another model served: the same photos' lines say how they meet it now
    bench.load_model(ckpts["mse"])
    assert ";" not in bench.describe(upload)
    assert "an RGB model: the gray image is restored as RGB" in bench.describe(demo)


@pytest.mark.parametrize(
    "name, blur, noise", [("bm3d", 0, 25), ("nlm", 0, 25), ("wiener", 2, 0), ("rl", 2, 0)]
)
def test_classical_methods_restore_gray_images_in_gray(name, blur, noise):
    pytest.importorskip("bm3d") if name == "bm3d" else None
    from cugan_lightning.degradations import degrade_fixed
    from cugan_lightning.evaluation.classical import CLASSICAL_METHODS

    ramp = torch.linspace(0.1, 0.9, 48)
    gt = (ramp[None, :] * ramp[:, None] + 0.05 * torch.sin(ramp * 30)[None, :])[None].clamp(0, 1)
    lq = degrade_fixed(gt, blur, noise, image_key="g")[None]
    out = CLASSICAL_METHODS[name].restore(lq, torch.tensor([float(blur)]), torch.tensor([float(noise)]))
    assert out.shape == (1, 1, 48, 48)
    assert torch.mean((out - gt) ** 2) < torch.mean((lq - gt) ** 2)


def test_a_gray_model_with_the_jpeg_factor_is_refused_by_name():
    from cugan_lightning.degradations import LevelCodec, LevelSampler

    codec = LevelCodec(names=("blur", "noise", "jpeg"), max_levels=(4.0, 50.0, 92.0))
    sampler = LevelSampler(factors=("blur", "noise", "jpeg"))
    with pytest.raises(ValueError, match="data.channels=1 with the jpeg factor"):
        RestorationDataModule(codec=codec, sampler=sampler, channels=1)


def test_the_notebook_session_restores_a_16_bit_gray_image_with_a_gray_model(gray_ckpts):
    from cugan_lightning.interactive import ModulationSession

    image = (np.linspace(1000, 64000, 48 * 40).reshape(48, 40) + 37).astype(np.uint16)
    session = ModulationSession(gray_ckpts["gray"], gray_ckpts["gray_gan"], image=image, precision="float32")
    out = session.set(noise=20, blur=0.5, alpha=0.3)
    assert out.dtype == np.uint16 and out.shape == image.shape  # gray stays gray, 16 bits stay 16 bits
    expected = session.restorer.restore(image, blur=0.5, noise=20, alpha=0.3)
    assert np.array_equal(out, expected) and not np.array_equal(out, image)


def test_a_gray_models_notebook_session_opens_on_the_demo_photo_degraded_in_gray(gray_ckpts):
    """With no image, the session degrades its demo photograph in gray at the default levels (as the web app's demo
    is), so the sliders open at the levels the image truly has; luma of the colour copy would not have them."""
    from cugan_lightning.data import degraded_embedded_image
    from cugan_lightning.data.layouts import to_gray_array
    from cugan_lightning.interactive import DEFAULT_DEGRADATION, DEFAULT_IMAGE, ModulationSession

    session = ModulationSession(gray_ckpts["gray"], crop=48, precision="float32")
    clean, degraded = degraded_embedded_image(DEFAULT_IMAGE, *DEFAULT_DEGRADATION, channels=1, crop=48)
    assert session.image.shape == session.clean.shape == (48, 48) and np.array_equal(session.image, degraded)
    _, colour = degraded_embedded_image(DEFAULT_IMAGE, *DEFAULT_DEGRADATION, crop=48)
    assert not np.array_equal(session.image, to_gray_array(colour))
    assert session.levels == dict(zip(("blur", "noise"), DEFAULT_DEGRADATION, strict=True))
    assert session.output().shape == (48, 48)
