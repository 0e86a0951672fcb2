"""Tests of the restore tool (cugan-restore) and the Restorer API (kinds in and out, caching, tiling) and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import cugan_lightning
from conftest import assert_one_line_error
from conftest import make_generator as make_net
from cugan_lightning.apps.restore import main
from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.data.io import read_image_raw as read_input_image
from cugan_lightning.data.io import write_image as write_output_image
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.dni import interpolate
from cugan_lightning.inference import Restorer, load_restorer, resolve_device, tile_spans, tiled_forward

H, W = 21, 30  # not multiples of 4: the network pads internally


@pytest.fixture(scope="module")
def ckpts(ckpts, tmp_path_factory) -> dict[str, Path]:
    """The shared generator files, and a wider generator, a file of another kind and a foreign checkpoint."""
    folder = tmp_path_factory.mktemp("more")
    codec = LevelCodec()
    paths = {
        **ckpts,
        "wide": save_generator_checkpoint(
            folder / "wide.ckpt", make_net(2, channels=(8, 16, 16)), codec, kind="cugan"
        ),
        "other_kind": save_generator_checkpoint(folder / "d.ckpt", make_net(3), codec, kind="discriminator"),
    }
    torch.save({"state_dict": {}}, folder / "foreign.ckpt")
    paths["foreign"] = folder / "foreign.ckpt"
    return paths


@pytest.fixture(scope="module")
def restorer(ckpts) -> Restorer:
    return load_restorer(ckpts["mse"], ckpts["gan"], precision="float32")  # compared with float32 networks


def rng_image(shape, dtype=np.uint8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = 65535 if dtype == np.uint16 else 255
    return rng.integers(0, top + 1, size=shape).astype(dtype)


# ----------------------------------------------------------------------------------------------- python API


def test_load_restorer_is_exported_at_the_top_level(ckpts):
    r = cugan_lightning.load_restorer(ckpts["mse"])
    assert isinstance(r, Restorer) and r.blender is None and r.codec == LevelCodec()
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_same_kind_out_as_in(restorer):
    rgb = rng_image((H, W, 3))
    expected = restorer.restore(rgb, blur=1.0, noise=20)
    assert expected.dtype == np.uint8 and expected.shape == (H, W, 3)
    assert not np.array_equal(expected, rgb)

    pil = restorer.restore(Image.fromarray(rgb), blur=1.0, noise=20)
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and pil.size == (W, H)
    np.testing.assert_array_equal(np.asarray(pil), expected)

    tensor = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    out = restorer.restore(tensor, blur=1.0, noise=20)
    assert isinstance(out, torch.Tensor) and out.shape == (3, H, W) and out.dtype == torch.float32
    batched = restorer.restore(tensor[None].double(), blur=1.0, noise=20)
    assert batched.shape == (1, 3, H, W) and batched.dtype == torch.float64
    np.testing.assert_array_equal((out.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), expected)

    floats = restorer.restore(rgb.astype(np.float64) / 255, blur=1.0, noise=20)
    assert floats.dtype == np.float64 and floats.shape == (H, W, 3)
    np.testing.assert_allclose(floats, out.permute(1, 2, 0).numpy(), atol=1e-6)


def test_gray_comes_back_gray_as_the_mean_of_the_rgb_restoration(restorer):
    gray = rng_image((H, W), seed=1)
    out = restorer.restore(gray, noise=10)
    assert out.shape == (H, W) and out.dtype == np.uint8
    as_rgb = restorer.restore(np.repeat(gray[:, :, None] / 255.0, 3, axis=2), noise=10)
    np.testing.assert_array_equal(out, np.round(as_rgb.mean(axis=2) * 255).astype(np.uint8))
    assert restorer.restore(gray[:, :, None], noise=10).shape == (H, W, 1)
    pil = restorer.restore(Image.fromarray(gray), noise=10)
    assert pil.mode == "L"
    np.testing.assert_array_equal(np.asarray(pil), out)


@pytest.mark.parametrize("channels", [2, 4])
def test_alpha_channel_passes_through_untouched(restorer, channels):
    image = rng_image((H, W, channels), seed=2)
    out = restorer.restore(image, blur=2.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, -1], image[:, :, -1])
    assert not np.array_equal(out[:, :, 0], image[:, :, 0])
    pil = restorer.restore(Image.fromarray(image), blur=2.0)
    assert pil.mode == ("LA" if channels == 2 else "RGBA")
    np.testing.assert_array_equal(np.asarray(pil), out)


def test_sixteen_bit_stays_sixteen_bit(restorer):
    image = rng_image((H, W, 3), np.uint16, seed=3)
    out = restorer.restore(image, noise=5)
    assert out.dtype == np.uint16 and out.shape == image.shape
    assert np.any(out % 257 != 0)  # real 16-bit values, not 8-bit ones scaled up
    floats = restorer.restore(image.astype(np.float32) / 65535, noise=5)
    np.testing.assert_array_equal(out, np.round(floats.astype(np.float64) * 65535).astype(np.uint16))
    gray16 = Image.fromarray(rng_image((H, W), np.uint16, seed=4))
    out16 = restorer.restore(gray16, noise=5)
    assert out16.mode == "I;16" and np.asarray(out16).dtype == np.uint16


def test_condition_weights_and_blends_are_cached(ckpts):
    r = load_restorer(ckpts["mse"], ckpts["gan"])
    image = rng_image((H, W, 3))
    r.restore(image, noise=10)
    assert r.stats == {"condition_calls": 1, "blend_calls": 0, "forward_calls": 1}
    r.restore(image, noise=10)
    assert r.stats["condition_calls"] == 1 and r.stats["forward_calls"] == 2
    r.restore(image, noise=10, alpha=0.5)  # C_G is blended too: new weights for the same z
    assert r.stats["blend_calls"] == 1 and r.stats["condition_calls"] == 2
    r.restore(image, noise=20, alpha=0.5)
    assert r.stats["blend_calls"] == 1 and r.stats["condition_calls"] == 3
    r.restore(image, noise=10)  # back to alpha 1: re-blend, but the (1.0, z) weights are cached
    assert r.stats["blend_calls"] == 2 and r.stats["condition_calls"] == 3


def test_dni_restoration_equals_the_interpolated_network(ckpts, restorer):
    x = torch.rand(1, 3, H, W)
    net, codec = interpolate(ckpts["mse"], ckpts["gan"], 0.35)
    z = codec.levels_to_z(1.5, 25.0)
    expected = net(x, z).clamp(0, 1)
    torch.testing.assert_close(
        restorer.restore(x, blur=1.5, noise=25, alpha=0.35), expected, atol=1e-6, rtol=0
    )
    torch.testing.assert_close(restorer.restore(x, z=z[0].tolist(), alpha=0.35), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"noise": 60}, "noise level 60 is outside 0..50"),
        ({"blur": -1}, "blur level -1 is outside 0..4"),
        ({"z": [0.5, 1.2]}, "z value 1.2 is outside 0..1"),
        ({"z": [0.5]}, "z must hold 2 values"),
        ({"z": [0.5, 0.5], "noise": 3}, "not both"),
        ({"noise": 3, "alpha": 1.5}, "alpha 1.5 is outside"),
        ({"levels": {"jpeg": 3}}, "unknown degradation factor"),
    ],
)
def test_bad_conditions_raise_value_errors(restorer, kwargs, phrase):
    with pytest.raises(ValueError, match=phrase.replace("(", r"\(").replace(".", r"\.")):
        restorer.restore(rng_image((8, 8, 3)), **kwargs)


def test_alpha_without_a_gan_checkpoint_is_refused(ckpts):
    with pytest.raises(ValueError, match="needs a GAN model"):
        load_restorer(ckpts["mse"]).restore(rng_image((8, 8, 3)), noise=3, alpha=0.5)


def test_bad_images_raise(restorer):
    with pytest.raises(ValueError, match="dtype"):
        restorer.restore(np.zeros((8, 8, 3), np.int32), noise=1)
    with pytest.raises(ValueError, match="shape"):
        restorer.restore(np.zeros((8, 8, 5), np.uint8), noise=1)
    with pytest.raises(ValueError, match="float"):
        restorer.restore(torch.zeros(1, 4, 8, 8), noise=1)
    with pytest.raises(TypeError, match="PIL image"):
        restorer.restore([[0, 1]], noise=1)


# ---------------------------------------------------------------------------------------------------- tiling


@pytest.mark.parametrize(
    ("size", "tile", "overlap", "multiple"), [(97, 32, 16, 4), (64, 32, 8, 4), (50, 16, 12, 2)]
)
def test_tile_spans_cover_the_image_on_the_network_grid(size, tile, overlap, multiple):
    spans = tile_spans(size, tile, overlap, multiple)
    assert spans[0][0] == 0 and spans[-1][1] == size
    assert all(start % multiple == 0 for start, _ in spans)
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))  # neighbours overlap
    assert all(end - start <= tile + multiple - 1 for start, end in spans)


def test_tiled_restoration_matches_the_untiled_one():
    net = make_net(5)
    x = torch.rand(1, 3, 90, 117)
    weights = net.condition(torch.tensor([[0.5, 0.6]]))
    with torch.no_grad():
        full = net(x, weights=weights)
        assert (full - x).abs().max() > 0.05  # a network that really changes the image
        for tile, overlap in ((32, 16), (48, 16), (64, 32)):
            tiled = tiled_forward(lambda t: net(t, weights=weights), x, tile, overlap, net.pad_multiple)
            assert (tiled - full).abs().max() < 1e-3, (tile, overlap)
        # without overlap the tile borders show: the comparison above can fail
        seams = tiled_forward(lambda t: net(t, weights=weights), x, 32, 0, net.pad_multiple)
        assert (seams - full).abs().max() > 1e-2


def test_restorer_tiles_through_restore(restorer):
    image = rng_image((70, 90, 3), seed=6)
    full = restorer.restore(image.astype(np.float32) / 255, noise=15, blur=1)
    calls = restorer.stats["forward_calls"]
    tiled = restorer.restore(image.astype(np.float32) / 255, noise=15, blur=1, tile=32, tile_overlap=16)
    assert restorer.stats["forward_calls"] - calls > 1
    assert np.abs(tiled - full).max() < 1e-3
    with pytest.raises(ValueError, match="tile size"):
        restorer.restore(image, noise=1, tile=8)
    with pytest.raises(ValueError, match="overlap"):
        restorer.restore(image, noise=1, tile=32, tile_overlap=32)


# ------------------------------------------------------------------------------------------------ image files


@pytest.mark.parametrize(
    ("name", "shape", "dtype"),
    [
        ("rgb16.png", (9, 11, 3), np.uint16),
        ("rgba16.png", (9, 11, 4), np.uint16),
        ("gray16.png", (9, 11), np.uint16),
        ("graya16.png", (9, 11, 2), np.uint16),
        ("rgb16.tif", (9, 11, 3), np.uint16),
        ("rgba8.tif", (9, 11, 4), np.uint8),
        ("gray8.tif", (9, 11), np.uint8),
        ("gray.png", (9, 11), np.uint8),
        ("graya.png", (9, 11, 2), np.uint8),
        ("rgb.jpg", (9, 11, 3), np.uint8),
    ],
)
def test_image_files_round_trip_at_their_bit_depth(tmp_path, name, shape, dtype):
    image = rng_image(shape, dtype, seed=7)
    path = write_output_image(image, tmp_path / name)
    back = read_input_image(path)
    assert back.shape == shape and back.dtype == dtype
    if not name.endswith(".jpg"):
        np.testing.assert_array_equal(back, image)
    assert not list(tmp_path.glob(".*.tmp"))


# --------------------------------------------------------------------------------------------- command line


@pytest.fixture
def images(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(rng_image((H, W, 3), seed=10)).save(folder / "rgb.png")
    Image.fromarray(rng_image((H, W), seed=11)).save(folder / "gray.png")
    Image.fromarray(rng_image((H, W, 4), seed=12)).save(folder / "rgba.png")
    Image.fromarray(rng_image((H, W), np.uint16, seed=13)).save(folder / "gray16.png")
    tifffile.imwrite(folder / "rgb16.tif", rng_image((H, W, 3), np.uint16, seed=14), photometric="rgb")
    return {p.stem: p for p in folder.iterdir()}


def test_cli_one_file_equals_the_api(tmp_path, ckpts, images, restorer, capsys):
    out = tmp_path / "out" / "restored.png"
    argv = [str(images["rgb"]), "-o", str(out), "--model", str(ckpts["mse"]), "--blur", "1", "--noise", "10"]
    assert main([*argv, "--device", "cpu", "--precision", "float32"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    expected = restorer.restore(read_input_image(images["rgb"]), blur=1, noise=10)
    np.testing.assert_array_equal(read_input_image(out), expected)
    # tiles: the same image to within one 8-bit step
    tiled = tmp_path / "tiled.png"
    argv_tiled = [
        str(images["rgb"]),
        "-o",
        str(tiled),
        "--model",
        str(ckpts["mse"]),
        "--blur",
        "1",
        "--noise",
        "10",
    ]
    assert main([*argv_tiled, "--tile", "16", "--tile-overlap", "8"]) == 0
    assert np.abs(read_input_image(tiled).astype(int) - expected.astype(int)).max() <= 1


def test_cli_folder_keeps_layout_and_bit_depth(tmp_path, ckpts, images):
    out = tmp_path / "out"
    argv = [
        str(images["rgb"].parent),
        "-o",
        str(out),
        "--model",
        str(ckpts["mse"]),
        "--gan",
        str(ckpts["gan"]),
    ]
    assert main([*argv, "--alpha", "0.4", "--z", "0.25", "0.2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "gray.png",
        "gray16.png",
        "rgb.png",
        "rgb16.png",
        "rgba.png",
    ]
    for stem, source in images.items():
        before, after = read_input_image(source), read_input_image(out / f"{stem}.png")
        assert after.shape == before.shape and after.dtype == before.dtype, stem
    np.testing.assert_array_equal(
        read_input_image(out / "rgba.png")[:, :, 3], read_input_image(images["rgba"])[:, :, 3]
    )
    restored = read_input_image(out / "rgb16.png")
    assert np.any(restored % 257 != 0)
    # --ext tif keeps 16 bit in TIFF too
    argv = [str(images["rgb16"]), "-o", str(tmp_path / "tif"), "--model", str(ckpts["mse"]), "--noise", "10"]
    assert main([*argv, "--ext", "tif"]) == 0
    assert read_input_image(tmp_path / "tif" / "rgb16.tif").dtype == np.uint16


def test_cli_gan_blend_equals_the_api(tmp_path, ckpts, images, restorer):
    out = tmp_path / "blend.png"
    argv = [str(images["rgb"]), "-o", str(out), "--model", str(ckpts["mse"]), "--gan", str(ckpts["gan"])]
    assert main([*argv, "--alpha", "0.2", "--noise", "30", "--precision", "float32"]) == 0
    expected = restorer.restore(read_input_image(images["rgb"]), noise=30, alpha=0.2)
    np.testing.assert_array_equal(read_input_image(out), expected)


def test_the_default_precision_is_the_same_in_the_tool_and_the_api(tmp_path, ckpts, images):
    out = tmp_path / "default.png"
    argv = [str(images["rgb"]), "-o", str(out), "--model", str(ckpts["mse"]), "--gan", str(ckpts["gan"])]
    assert main([*argv, "--alpha", "0.4", "--noise", "25"]) == 0
    default = load_restorer(ckpts["mse"], ckpts["gan"])  # precision auto, as the tool's default
    expected = default.restore(read_input_image(images["rgb"]), noise=25, alpha=0.4)
    np.testing.assert_array_equal(read_input_image(out), expected)


@pytest.mark.parametrize("with_gan", [True, False])
def test_cli_sweep_writes_a_modulation_grid(tmp_path, ckpts, images, with_gan):
    out = tmp_path / "grid.png"
    argv = [str(images["rgb"]), "-o", str(out), "--model", str(ckpts["mse"]), "--sweep", "--noise", "20"]
    if with_gan:
        argv += ["--gan", str(ckpts["gan"])]
    assert main(argv) == 0
    grid = np.asarray(Image.open(out))
    rows = 3 if with_gan else 2  # deblurring, denoising (, MSE to GAN)
    gap, label = 4, 14
    assert grid.shape == (rows * (H + 2 * label + gap) + gap, 7 * (W + gap) + gap, 3)  # row title + labels


def _error_cases(
    tmp_path: Path, ckpts: dict[str, Path], images: dict[str, Path]
) -> list[tuple[list[str], str]]:
    rgb, mse, gan = str(images["rgb"]), str(ckpts["mse"]), str(ckpts["gan"])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "afile").write_text("")
    return [
        ([str(tmp_path / "broken.png"), "--model", mse, "--noise", "5"], "cannot read image"),
        ([str(tmp_path / "empty"), "--model", mse, "--noise", "5"], "holds no images"),
        ([str(tmp_path / "missing.png"), "--model", mse, "--noise", "5"], "does not exist"),
        ([rgb, "--model", mse, "--noise", "51"], "noise level 51 is outside 0..50"),
        ([rgb, "--model", mse, "--blur", "4.5"], "blur level 4.5 is outside 0..4"),
        ([rgb, "--model", mse, "--z", "0.1", "1.1"], "z value 1.1 is outside 0..1"),
        ([rgb, "--model", mse, "--z", "0.1"], "z must hold 2 values"),
        ([rgb, "--model", mse, "--z", "0.1", "0.1", "--noise", "3"], "not both"),
        ([rgb, "--model", mse], "give the input's degradation"),
        ([rgb, "--model", str(tmp_path / "notes.txt"), "--noise", "5"], "is not a checkpoint file"),
        (
            [rgb, "--model", str(ckpts["foreign"]), "--noise", "5"],
            "not a cugan-lightning training checkpoint",
        ),
        ([rgb, "--model", str(ckpts["other_kind"]), "--noise", "5"], "of kind 'discriminator'"),
        (
            [rgb, "--model", mse, "--gan", str(ckpts["wide"]), "--alpha", "0.5", "--noise", "5"],
            "different generator architectures",
        ),
        (
            [rgb, "--model", mse, "--alpha", "0.5", "--noise", "5"],
            "--alpha blends two models and needs --gan",
        ),
        ([rgb, "--model", mse, "--gan", gan, "--noise", "5"], "--gan needs --alpha"),
        (
            [rgb, "--model", mse, "--gan", gan, "--alpha", "2", "--noise", "5"],
            "alpha 2 is outside [0, 1]",
        ),
        ([rgb, "--model", mse, "--noise", "5", "--tile", "8"], "tile size must be an integer >= 16"),
        ([rgb, "--model", mse, "--noise", "5", "--device", "tpu"], "invalid choice: 'tpu'"),
        ([rgb, "--model", mse, "--noise", "5", "--bogus"], "unrecognized arguments: --bogus"),
    ]


def test_cli_errors_are_one_line_exit_2_and_write_nothing(tmp_path, ckpts, images, capsys):
    for argv, phrase in _error_cases(tmp_path, ckpts, images):
        out = tmp_path / "out.png"
        code = main([*argv, "-o", str(out)])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert_one_line_error(err, phrase)
        assert not out.exists(), argv


def test_cli_output_errors(tmp_path, ckpts, images, capsys):
    mse = str(ckpts["mse"])
    rgb, rgba = str(images["rgb"]), str(images["rgba"])
    (tmp_path / "afile").write_text("")
    cases = [
        ([rgb, "-o", str(tmp_path / "afile" / "out.png")], "is not a folder", tmp_path / "afile" / "out.png"),
        ([rgb, rgba, "-o", str(tmp_path / "two.png")], "give a folder", tmp_path / "two.png"),
        ([rgba, "-o", str(tmp_path / "x.jpg")], "cannot store the alpha channel", tmp_path / "x.jpg"),
        ([rgb, "-o", str(tmp_path / "x.webm")], "unsupported output extension", tmp_path / "x.webm"),
        ([rgb, "-o", rgb], "would overwrite an input", None),
        (
            [rgb, "-o", str(tmp_path / "grid.jpg"), "--sweep"],
            "a sweep is written as PNG",
            tmp_path / "grid.jpg",
        ),
    ]
    for argv, phrase, out in cases:
        code = main([*argv, "--model", mse, "--noise", "5"])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert_one_line_error(err, phrase)
        assert out is None or not out.exists()


def test_cli_one_bad_input_means_no_output_at_all(tmp_path, ckpts, images, capsys):
    bad = images["rgb"].parent / "zzz_broken.png"
    bad.write_bytes(b"garbage")
    out = tmp_path / "out"
    code = main([str(images["rgb"].parent), "-o", str(out), "--model", str(ckpts["mse"]), "--noise", "5"])
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, "zzz_broken.png")
    assert not out.exists() or not any(out.iterdir())


def test_cli_as_a_process_prints_one_line_without_traceback(tmp_path, ckpts, images):
    argv = [str(images["rgb"]), "-o", str(tmp_path / "o.png"), "--model", str(ckpts["mse"]), "--noise", "500"]
    result = subprocess.run(
        [sys.executable, "-m", "cugan_lightning.apps.restore", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: noise level 500 is outside 0..50 (sigma on the 0-255 scale)"
    assert not (tmp_path / "o.png").exists()
