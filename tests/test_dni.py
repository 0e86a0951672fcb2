"""Tests of cugan_lightning.dni: blending MSE and GAN generators (docs/model.md) and its command line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import assert_one_line_error
from conftest import make_generator as make_net
from cugan_lightning.apps.dni import main
from cugan_lightning.checkpoint import (
    CheckpointError,
    load_generator,
    read_checkpoint,
    save_generator_checkpoint,
)
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.dni import (
    DNIBlender,
    IncompatibleCheckpointsError,
    blend_state_dicts,
    check_alpha,
    interpolate,
)
from cugan_lightning.networks import CUnet


def write_pair(folder: Path, mse_seed: int = 0, gan_seed: int = 1) -> tuple[Path, Path]:
    """An MSE (kind cunet) and a GAN (kind cugan) checkpoint; the GAN one also holds discriminator weights."""
    mse = save_generator_checkpoint(folder / "mse.ckpt", make_net(mse_seed, 0.05), LevelCodec(), kind="cunet")
    gan = save_generator_checkpoint(folder / "gan.ckpt", make_net(gan_seed, 0.05), LevelCodec(), kind="cugan")
    checkpoint = torch.load(gan, weights_only=True)
    checkpoint["state_dict"]["net_d.head.weight"] = torch.randn(4, 3)  # stage-2 checkpoints carry net_d too
    torch.save(checkpoint, gan)
    return mse, gan


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return write_pair(tmp_path_factory.mktemp("dni"))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return {
        k[len("net_g.") :]: v
        for k, v in read_checkpoint(path)["state_dict"].items()
        if k.startswith("net_g.")
    }


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ blending


def test_endpoints_are_exactly_the_two_models(pair):
    mse_path, gan_path = pair
    mse_sd, gan_sd = weights(mse_path), weights(gan_path)
    gan_net, _ = interpolate(mse_path, gan_path, 0.0)
    mse_net, codec = interpolate(mse_path, gan_path, 1.0)
    assert codec == LevelCodec()
    assert all(torch.equal(v, gan_sd[k]) for k, v in gan_net.state_dict().items())
    assert all(torch.equal(v, mse_sd[k]) for k, v in mse_net.state_dict().items())


def test_blend_is_the_weighted_average_of_g_and_c_g(pair):
    mse_path, gan_path = pair
    mse_sd, gan_sd = weights(mse_path), weights(gan_path)
    assert any(k.startswith("cond.") for k in gan_sd)  # C_G is part of the blend
    for alpha in (0.5, 0.3):
        net, _ = interpolate(mse_path, gan_path, alpha)
        blended = net.state_dict()
        assert set(blended) == set(gan_sd)
        for key, value in blended.items():
            expected = (1 - alpha) * gan_sd[key] + alpha * mse_sd[key]
            assert not torch.equal(gan_sd[key], mse_sd[key])
            torch.testing.assert_close(value, expected, atol=1e-7, rtol=0)


def test_integer_buffers_are_copied_from_the_gan_side():
    gan = {"w": torch.tensor([0.0, 2.0]), "count": torch.tensor(7)}
    mse = {"w": torch.tensor([4.0, 6.0]), "count": torch.tensor(3)}
    out = blend_state_dicts(gan, mse, 0.25)
    torch.testing.assert_close(out["w"], torch.tensor([1.0, 3.0]))
    assert out["count"].item() == 7 and out["count"].dtype == torch.int64
    assert out["w"] is not gan["w"]  # a new state dict, inputs untouched
    assert torch.equal(gan["w"], torch.tensor([0.0, 2.0]))


@pytest.mark.parametrize("alpha", [-0.1, 1.5, math.nan, math.inf, "half", None, True])
def test_alpha_outside_zero_one_is_refused(alpha, pair):
    with pytest.raises(ValueError, match=r"alpha.*\[0, 1\]"):
        check_alpha(alpha)
    with pytest.raises(ValueError, match="alpha"):
        blend_state_dicts({"w": torch.zeros(1)}, {"w": torch.ones(1)}, alpha)
    with pytest.raises(ValueError, match="alpha"):
        interpolate(*pair, alpha)


def test_blender_matches_the_functional_path_and_hits_the_endpoints_exactly(pair):
    mse_path, gan_path = pair
    blender = DNIBlender.from_checkpoints(mse_path, gan_path)
    net = blender.build(1.0)
    mse_sd, gan_sd = weights(mse_path), weights(gan_path)
    # back and forth: each blend starts from the stored weights, so no error accumulates
    for alpha in (0.25, 0.8, 0.0, 0.5, 1.0, 0.25):
        blender.blend_into(net, alpha)
        reference, _ = interpolate(mse_path, gan_path, alpha)
        for key, value in reference.state_dict().items():
            assert torch.equal(net.state_dict()[key], value), (alpha, key)
        if alpha in (0.0, 1.0):
            source = gan_sd if alpha == 0.0 else mse_sd
            assert all(torch.equal(net.state_dict()[k], v) for k, v in source.items())


def test_blender_hot_path_reads_no_file_and_builds_no_state_dict(pair, monkeypatch):
    blender = DNIBlender.from_checkpoints(*pair)
    net = blender.build(0.0)
    x, z = torch.rand(1, 3, 16, 20), torch.tensor([[0.4, 0.6]])
    before = net(x, z)

    def forbidden(*args, **kwargs):
        raise AssertionError("the hot path must not do this")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(net, "state_dict", forbidden)
    calls = blender.blend_calls
    blender.blend_into(net, 0.6)
    assert blender.blend_calls == calls + 1
    assert not torch.equal(net(x, z), before)  # the blend changed the network in place
    blender.blend_into(net, 0.0)
    assert torch.equal(net(x, z), before)


def test_blender_refuses_a_network_of_another_architecture(pair):
    blender = DNIBlender.from_checkpoints(*pair)
    with pytest.raises(IncompatibleCheckpointsError, match="shape"):
        blender.blend_into(CUnet(channels=(8, 16, 16)), 0.5)


# ---------------------------------------------------------------------------------------- incompatibility


@pytest.mark.parametrize(
    ("config", "codec", "phrase"),
    [
        ({"channels": (8, 16, 16)}, LevelCodec(), "channels: MSE [8, 16, 32], GAN [8, 16, 16]"),
        ({"blocks": (1, 2, 2)}, LevelCodec(), "blocks"),
        ({}, LevelCodec(max_levels=(4.0, 75.0)), "level codec: MSE"),
        (
            {"cond_dim": 3},
            LevelCodec(names=("blur", "noise", "jpeg"), max_levels=(4.0, 50.0, 1.0)),
            "cond_dim",
        ),
    ],
)
def test_different_architectures_are_a_clear_error(tmp_path, pair, config, codec, phrase):
    other = save_generator_checkpoint(tmp_path / "other.ckpt", make_net(2, **config), codec, kind="cugan")
    with pytest.raises(IncompatibleCheckpointsError, match="architectures|codecs") as info:
        interpolate(pair[0], other, 0.5)
    assert phrase in str(info.value)


def test_different_weight_names_are_a_clear_error(tmp_path, pair):
    checkpoint = read_checkpoint(pair[1])
    del checkpoint["state_dict"]["net_g.tail.bias"]
    torch.save(checkpoint, tmp_path / "broken.ckpt")
    with pytest.raises(IncompatibleCheckpointsError, match="only in MSE: tail.bias"):
        interpolate(pair[0], tmp_path / "broken.ckpt", 0.5)


def test_swapped_checkpoints_are_named(pair):
    mse, gan = pair
    with pytest.raises(IncompatibleCheckpointsError, match="swapped"):
        interpolate(gan, mse, 0.5)


def test_a_checkpoint_of_another_kind_is_refused(tmp_path, pair):
    other = save_generator_checkpoint(
        tmp_path / "d.ckpt", make_net(3, 0.05), LevelCodec(), kind="discriminator"
    )
    with pytest.raises(CheckpointError, match="kind 'discriminator'"):
        interpolate(pair[0], other, 0.5)


# ---------------------------------------------------------------------------------------------- command line


def test_cli_writes_a_loadable_dni_checkpoint(tmp_path, pair, capsys):
    out = tmp_path / "sub" / "blend.ckpt"
    code = main(["--model", str(pair[0]), "--gan", str(pair[1]), "--alpha", "0.3", "-o", str(out)])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    metadata = read_checkpoint(out)["cugan"]
    assert metadata["kind"] == "dni"
    assert metadata["dni"] == {"alpha": 0.3, "mse_checkpoint": str(pair[0]), "gan_checkpoint": str(pair[1])}
    net, codec = load_generator(out)
    reference, _ = interpolate(*pair, 0.3)
    assert codec == LevelCodec()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in reference.state_dict().items())
    assert not list(out.parent.glob(".*.tmp"))


def _cli_error_cases(tmp_path: Path, pair: tuple[Path, Path]) -> list[tuple[list[str], str]]:
    mse, gan = (str(p) for p in pair)
    other = save_generator_checkpoint(tmp_path / "wide.ckpt", make_net(2, channels=(8, 16, 16)), LevelCodec())
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    (tmp_path / "afile").write_text("")
    return [
        (["--model", mse, "--gan", gan, "--alpha", "1.5"], "alpha 1.5 is outside [0, 1]"),
        (["--model", mse, "--gan", gan, "--alpha", "nan"], "alpha must be a number in [0, 1]"),
        (["--model", mse, "--gan", str(other), "--alpha", "0.5"], "different generator architectures"),
        (["--model", mse, "--gan", str(tmp_path / "missing.ckpt"), "--alpha", "0.5"], "does not exist"),
        (
            ["--model", str(tmp_path / "notes.txt"), "--gan", gan, "--alpha", "0.5"],
            "is not a checkpoint file",
        ),
        (["--model", mse, "--alpha", "0.5"], "the following arguments are required: --gan"),
    ]


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, pair, capsys):
    for argv, phrase in _cli_error_cases(tmp_path, pair):
        out = tmp_path / "out.ckpt"
        code, err = run_main([*argv, "-o", str(out)], capsys)
        assert code == 2, (argv, err)
        assert_one_line_error(err, phrase)
        assert not out.exists()


def test_cli_unwritable_output(tmp_path, pair, capsys):
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "blend.ckpt"
    code, err = run_main(
        ["--model", str(pair[0]), "--gan", str(pair[1]), "--alpha", "0.5", "-o", str(out)], capsys
    )
    assert code == 2
    assert_one_line_error(err, "is not a folder")
