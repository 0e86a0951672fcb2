"""A four-factor model (blur, noise, JPEG, Poisson noise: experiment=quickstart_cpu_4f) trains through the real
Hydra / Lightning app, restores a file with --poisson, exports to ONNX with a four-value z, and every tool refuses
a factor a model lacks by name (docs/degradations.md, "Factors")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, assert_one_line_error, compose_config, make_generator
from cugan_lightning.apps.export import main as export_main
from cugan_lightning.apps.restore import main as restore_main
from cugan_lightning.apps.train import train
from cugan_lightning.checkpoint import read_onnx_metadata, save_generator_checkpoint
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.inference import load_restorer

FOUR = ["blur", "noise", "jpeg", "poisson"]


@pytest.fixture(scope="module")
def four_factor_ckpt(tmp_path_factory):
    """A tiny four-factor CUnet trained for three iterations by the training app."""
    out = tmp_path_factory.mktemp("four")
    cfg = compose_config(
        [
            "experiment=quickstart_cpu_4f", *TINY, "data.eval_settings=[[0,30],[0,0,0,10]]", "iterations=3",
            "data.batches_per_epoch=3", "model.log_figures=false",
        ],
        out,
    )  # fmt: skip
    assert list(cfg.degradation.codec.names) == FOUR and cfg.model.net_g.cond_dim == 4
    result = train(cfg)
    assert "val/psnr/b0_n0_p10" in result["metrics"]
    return result["last_checkpoint"]


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    pixels = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_four_factor_model_trains_restores_and_exports(four_factor_ckpt, photo, tmp_path, capsys):
    restorer = load_restorer(four_factor_ckpt)
    assert list(restorer.codec.names) == FOUR and restorer.codec.max_levels == (4.0, 50.0, 92.0, 25.0)
    out = tmp_path / "restored.png"
    assert (
        restore_main([str(photo), "-o", str(out), "--model", str(four_factor_ckpt), "--poisson", "10"]) == 0
    )
    written = np.asarray(Image.open(out))
    assert written.shape == (24, 20, 3)
    # the flag reaches the network: the file is the library's restoration told Poisson 10, not told none (16 bits:
    # the tiny model's change is below one 8-bit step)
    tifffile = pytest.importorskip("tifffile")
    pixels = np.random.default_rng(1).integers(0, 65536, (24, 20, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "photo16.tif", pixels)
    out16 = tmp_path / "restored16.tif"
    argv = [
        str(tmp_path / "photo16.tif"),
        "-o",
        str(out16),
        "--model",
        str(four_factor_ckpt),
        "--poisson",
        "10",
    ]
    assert restore_main(argv) == 0
    written = tifffile.imread(out16)
    assert written.dtype == np.uint16 and np.array_equal(
        written, restorer.restore(pixels, levels={"poisson": 10.0})
    )
    assert not np.array_equal(written, restorer.restore(pixels))
    # the poisson entry of z is 10 / 25
    assert torch.allclose(restorer.z_for(poisson=10.0), torch.tensor([[0.0, 0.0, 0.0, 0.4]]))

    onnx = pytest.importorskip("onnx")
    exported = tmp_path / "four.onnx"
    assert export_main(["--model", str(four_factor_ckpt), "--format", "onnx", "-o", str(exported)]) == 0
    metadata, codec = read_onnx_metadata(exported)
    assert list(codec.names) == FOUR and metadata["factors"] == ", ".join(FOUR)
    assert "poisson 0..25 (shot-noise sigma at white on the 0-255 scale)" in metadata["inputs"]
    graph = onnx.load(str(exported)).graph
    z = next(i for i in graph.input if i.name == "z")
    assert z.type.tensor_type.shape.dim[1].dim_value == 4


def test_a_model_refuses_a_factor_it_lacks_by_name(four_factor_ckpt, photo, tmp_path, capsys):
    two = save_generator_checkpoint(tmp_path / "two.ckpt", make_generator(0), LevelCodec())
    out = str(tmp_path / "x.png")
    assert restore_main([str(photo), "-o", out, "--model", str(two), "--poisson", "10"]) != 0
    assert_one_line_error(capsys.readouterr().err, "it conditions on ['blur', 'noise'], not on poisson")
    assert restore_main([str(photo), "-o", out, "--model", str(four_factor_ckpt), "--motion", "5"]) != 0
    assert_one_line_error(capsys.readouterr().err, "not on motion")
    with pytest.raises(ValueError, match=r"conditions on \['blur', 'noise'\], not on poisson"):
        load_restorer(two).z_for(poisson=3.0)
    # a level of zero for a factor the codec lacks changes nothing and is accepted where levels are merged
    assert torch.equal(LevelCodec().encode_all({"noise": 25.0, "poisson": 0.0}), torch.tensor([[0.0, 0.5]]))
