"""Tests of the export tool (cugan-export): safetensors and ONNX files that carry the generator config and the codec."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error
from conftest import make_generator as make_net
from cugan_lightning.apps.export import main
from cugan_lightning.checkpoint import (
    CheckpointError,
    OnnxRestorer,
    load_generator,
    load_safetensors_generator,
    read_onnx_metadata,
    read_safetensors_generator,
)
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.dni import interpolate

# ------------------------------------------------------------------------------------------------ safetensors


def test_safetensors_round_trip(tmp_path, ckpts, capsys):
    out = tmp_path / "model.safetensors"
    assert main(["--model", str(ckpts["mse"]), "--format", "safetensors", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    metadata, state = read_safetensors_generator(out)
    assert metadata["kind"] == "cunet"
    assert metadata["generator"] == {"class": "CUnet", "config": make_net(0).config}
    assert metadata["codec"] == LevelCodec().to_dict()
    net, codec = load_generator(out)  # the checkpoint loader dispatches .safetensors here
    reference, _ = load_generator(ckpts["mse"])
    assert codec == LevelCodec()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in reference.state_dict().items())
    x, z = torch.rand(1, 3, 12, 18), torch.tensor([[0.2, 0.7]])
    assert torch.equal(net(x, z), reference(x, z))


def test_safetensors_of_a_dni_blend_records_alpha(tmp_path, ckpts):
    out = tmp_path / "blend.safetensors"
    argv = ["--model", str(ckpts["mse"]), "--gan", str(ckpts["gan"]), "--alpha", "0.25", "-o", str(out)]
    assert main(argv) == 0  # format from the extension
    metadata, _ = read_safetensors_generator(out)
    assert metadata["kind"] == "dni" and metadata["dni"]["alpha"] == 0.25
    net, _ = load_safetensors_generator(out)
    reference, _ = interpolate(ckpts["mse"], ckpts["gan"], 0.25)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in reference.state_dict().items())


def test_default_output_sits_beside_the_checkpoint(tmp_path, ckpts):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(ckpts["mse"].read_bytes())
    assert main(["--model", str(ckpt), "--format", "safetensors"]) == 0
    assert (tmp_path / "model.safetensors").is_file()


def test_restore_accepts_exported_safetensors(tmp_path, ckpts):
    from cugan_lightning.inference import load_restorer

    out = tmp_path / "mse.safetensors"
    assert main(["--model", str(ckpts["mse"]), "-o", str(out)]) == 0
    x = torch.rand(1, 3, 12, 18)
    expected = load_restorer(ckpts["mse"], ckpts["gan"]).restore(x, noise=20, alpha=0.3)
    assert torch.equal(load_restorer(out, ckpts["gan"]).restore(x, noise=20, alpha=0.3), expected)
    assert torch.equal(
        load_restorer(out).restore(x, noise=20), load_restorer(ckpts["mse"]).restore(x, noise=20)
    )


def test_safetensors_without_our_metadata_is_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign, metadata={"note": "someone else's"})
    with pytest.raises(CheckpointError, match="no cugan-lightning metadata"):
        load_safetensors_generator(foreign)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="cannot read safetensors file"):
        load_generator(garbage)


# ------------------------------------------------------------------------------------------------------- ONNX


def test_onnx_matches_pytorch_on_two_sizes_and_two_conditions(tmp_path, ckpts):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    assert main(["--model", str(ckpts["mse"]), "--format", "onnx", "-o", str(out)]) == 0
    metadata, codec = read_onnx_metadata(out)
    assert codec == LevelCodec() and metadata["kind"] == "cunet"
    assert metadata["generator"]["config"] == make_net(0).config

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "z"]
    assert [o.name for o in session.get_outputs()] == ["restored"]
    net, _ = load_generator(ckpts["mse"])
    torch.manual_seed(0)
    worst = 0.0
    for height, width in ((32, 48), (37, 53)):
        for levels in ((0.5, 10.0), (3.0, 45.0)):
            x = torch.rand(1, 3, height, width)
            z = codec.levels_to_z(*levels)
            with torch.no_grad():
                expected = net(x, z).clamp(0, 1).numpy()
            got = session.run(["restored"], {"image": x.numpy(), "z": z.numpy()})[0]
            assert got.shape == (1, 3, height, width)
            worst = max(worst, float(np.abs(got - expected).max()))
            assert np.abs(expected - x.numpy()).max() > 1e-2  # the conditions matter: not an identity check
    assert worst < 1e-4, worst

    # one image against a batch of conditions
    x, z = torch.rand(1, 3, 21, 30), torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    got = session.run(["restored"], {"image": x.numpy(), "z": z.numpy()})[0]
    with torch.no_grad():
        expected = OnnxRestorer(net)(x, z).numpy()
    assert got.shape == (2, 3, 21, 30)
    assert np.abs(got - expected).max() < 1e-4


def test_onnx_of_a_dni_blend_records_alpha(tmp_path, ckpts):
    pytest.importorskip("onnx")
    out = tmp_path / "blend.onnx"
    argv = ["--model", str(ckpts["mse"]), "--gan", str(ckpts["gan"]), "--alpha", "0.6"]
    assert main([*argv, "--format", "onnx", "-o", str(out)]) == 0
    metadata, _ = read_onnx_metadata(out)
    assert metadata["kind"] == "dni" and metadata["dni"]["alpha"] == 0.6
    assert json.loads(json.dumps(metadata["codec"])) == LevelCodec().to_dict()


# ---------------------------------------------------------------------------------------------------- errors


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, ckpts, capsys):
    mse, gan = str(ckpts["mse"]), str(ckpts["gan"])
    (tmp_path / "afile").write_text("")
    cases = [
        (["--model", mse, "--alpha", "0.5", "--format", "onnx", "-o", "x.onnx"], "needs --gan", "x.onnx"),
        (["--model", mse, "--gan", gan, "--format", "onnx", "-o", "x.onnx"], "needs --alpha", "x.onnx"),
        (
            ["--model", mse, "--gan", gan, "--alpha", "-1", "-o", "x.onnx"],
            "alpha -1 is outside",
            "x.onnx",
        ),
        (
            ["--model", mse, "--format", "safetensors", "-o", "x.onnx"],
            "does not end in .safetensors",
            "x.onnx",
        ),
        (["--model", mse, "-o", "x.bin"], "cannot tell the format", "x.bin"),
        (
            ["--model", str(tmp_path / "afile"), "--format", "onnx", "-o", "x.onnx"],
            "not a checkpoint file",
            "x.onnx",
        ),
        (["--model", mse, "--format", "onnx", "-o", "afile/x.onnx"], "is not a folder", "afile/x.onnx"),
        (["--model", mse, "--format", "tflite", "-o", "x.onnx"], "invalid choice: 'tflite'", "x.onnx"),
    ]
    for argv, phrase, out in cases:
        argv = [str(tmp_path / a) if a.startswith(("x.", "afile/")) else a for a in argv]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert_one_line_error(err, phrase)
        assert not (tmp_path / out).exists()
