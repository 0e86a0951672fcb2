"""Generator files: reading every format as data, kinds from metadata, differences named, the released layout."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from conftest import make_generator, released_state_dict
from cugan_lightning import load_generator
from cugan_lightning.apps.dni import main as dni_main
from cugan_lightning.apps.export import main as export_main
from cugan_lightning.apps.restore import main as restore_main
from cugan_lightning.checkpoint import (
    CheckpointError,
    checkpoint_kind,
    describe_generator,
    generator_differences,
    read_generator_file,
    save_generator_checkpoint,
)
from cugan_lightning.data.io import read_image_raw
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.dni import interpolate
from cugan_lightning.evaluation.models import load_models, parse_models
from cugan_lightning.interactive import ModulationSession
from cugan_lightning.networks import CUnet, load_released_state_dict

TINY = (8, 16, 32)


def test_load_generator_refuses_files_that_are_not_checkpoints(tmp_path):
    (tmp_path / "photo.ckpt").write_bytes(b"\x89PNG\r\n\x1a\n not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a checkpoint file"):
        load_generator(tmp_path / "photo.ckpt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "missing.ckpt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match="nor the authors' released generator"):
        load_generator(tmp_path / "foreign.ckpt")


# ------------------------------------------------------------------------------------------- released layout


def reference_network(released: dict[str, torch.Tensor]) -> CUnet:
    """The released weights loaded the documented way: rename, then a strict load into a CUnet."""
    net = CUnet(channels=TINY)
    net.load_state_dict(load_released_state_dict(released))
    return net.eval()


def write_released(folder: Path, container: str, released: dict[str, torch.Tensor]) -> Path:
    if container == "safetensors":
        path = folder / "released.safetensors"
        save_file({k.removeprefix("module."): v.contiguous() for k, v in released.items()}, path)
        return path
    obj = {"params": released} if container == "wrapped" else released
    torch.save(obj, folder / "released.pth")
    return folder / "released.pth"


@pytest.mark.parametrize("container", ["plain", "wrapped", "safetensors"])
def test_released_file_reads_as_the_paper_generator(tmp_path, container):
    released = released_state_dict(TINY, seed=3)
    path = write_released(tmp_path, container, released)
    net, codec = load_generator(path)
    assert codec == LevelCodec.default()  # blur sigma 0..4, noise sigma 0..50
    assert net.config == {
        "in_channels": 3,
        "cond_dim": 2,
        "channels": list(TINY),
        "blocks": [2, 2, 2],
        "conditional": True,
    }
    assert checkpoint_kind(path) == "released"
    x, z = torch.rand(2, 3, 20, 28), torch.tensor([[0.5, 0.6], [0.0, 1.0]])
    with torch.no_grad():
        torch.testing.assert_close(net(x, z), reference_network(released)(x, z), rtol=0, atol=0)


def test_released_file_with_another_condition_width_is_refused(tmp_path):
    released = released_state_dict(TINY)
    for key in [k for k in released if k.endswith(("local_scale.weight", "_scale.weight"))]:
        released[key] = torch.zeros(released[key].shape[0], 3)
    torch.save(released, tmp_path / "three.pth")
    with pytest.raises(CheckpointError, match="3-value condition"):
        load_generator(tmp_path / "three.pth")


def test_every_tool_accepts_the_released_file(tmp_path, capsys):
    released = released_state_dict(TINY, seed=4)
    path = write_released(tmp_path, "plain", released)
    gan = save_generator_checkpoint(tmp_path / "gan.ckpt", make_generator(5), LevelCodec(), kind="cugan")
    photo = tmp_path / "photo.png"
    rgb = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    from PIL import Image

    Image.fromarray(rgb).save(photo)

    # restore: the file's generator at noise 20 (z = 0.4)
    assert (
        restore_main(
            [
                str(photo),
                "-o",
                str(tmp_path / "out.png"),
                "--model",
                str(path),
                "--noise",
                "20",
                "--precision",
                "float32",
            ]
        )
        == 0
    )
    with torch.no_grad():
        expected = reference_network(released)(
            torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, torch.tensor([[0.0, 0.4]])
        )
    expected = (expected.clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(read_image_raw(tmp_path / "out.png"), expected)

    # dni: the released model as the MSE end
    blend = tmp_path / "blend.ckpt"
    assert dni_main(["--model", str(path), "--gan", str(gan), "--alpha", "0.5", "-o", str(blend)]) == 0
    net, _ = load_generator(blend)
    reference, _ = interpolate(path, gan, 0.5)
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in net.state_dict().items())

    # export: safetensors keeps the kind and the provenance
    exported = tmp_path / "released_export.safetensors"
    assert export_main(["--model", str(path), "-o", str(exported)]) == 0
    assert read_generator_file(exported, tensors=False).metadata["released"]["source"] == str(path)

    # notebook session
    session = ModulationSession(path, gan, image=rgb, alpha=1.0, precision="float32")
    np.testing.assert_array_equal(session.set(blur=0, noise=20), expected)  # it opened at the estimate

    # evaluation app: a row like any generator file
    (_, row) = load_models(parse_models({"released": str(path)}), torch.device("cpu"))
    assert row.kind == "released" and row.conditional and row.codec == LevelCodec.default()
    capsys.readouterr()


# ----------------------------------------------------------------------------------------------------- kinds


def test_kinds_come_from_the_metadata(tmp_path):
    codec = LevelCodec()
    cases = {
        "cunet": (make_generator(0), "cunet"),
        "cugan": (make_generator(0), "cugan"),
        "unet": (CUnet(channels=TINY, conditional=False), "cunet"),  # a stage-1 run of the Unet baseline
        "ugan": (CUnet(channels=TINY, conditional=False), "cugan"),
    }
    for expected, (net, stage) in cases.items():
        path = save_generator_checkpoint(tmp_path / f"{expected}.ckpt", net, codec, kind=stage)
        assert checkpoint_kind(path) == expected
    # a file written before baselines had a kind of their own still reads as the baseline
    old = {
        "state_dict": {},
        "cugan": describe_generator("cunet", cases["unet"][0], codec) | {"kind": "cunet"},
    }
    torch.save(old, tmp_path / "old.ckpt")
    assert checkpoint_kind(tmp_path / "old.ckpt") == "unet"


@pytest.mark.slow
def test_the_kind_is_read_without_reading_the_tensors(tmp_path):
    """A full-size generator file (26 MB): telling its kind reads a small share of it, loading reads it all."""
    path = save_generator_checkpoint(tmp_path / "big.ckpt", CUnet(), LevelCodec(), kind="cugan")
    warm_up = save_generator_checkpoint(tmp_path / "small.ckpt", make_generator(0), LevelCodec())
    code = textwrap.dedent(
        f"""
        from cugan_lightning.checkpoint import checkpoint_kind, load_generator

        def bytes_read():
            with open("/proc/self/io") as handle:
                return int(next(line for line in handle if line.startswith("rchar")).split()[1])

        checkpoint_kind({str(warm_up)!r}), load_generator({str(warm_up)!r})  # imports done before measuring
        start = bytes_read()
        kind = checkpoint_kind({str(path)!r})
        peek = bytes_read() - start
        start = bytes_read()
        load_generator({str(path)!r})
        print(kind, peek, bytes_read() - start)
        """
    )
    if not Path("/proc/self/io").exists():
        pytest.skip("needs /proc/self/io (Linux) to count the bytes a process reads")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    kind, peek, full = out.split()
    size = path.stat().st_size
    assert kind == "cugan"
    assert int(full) > size / 2  # the counter sees a full load
    assert int(peek) < size / 20, (peek, size)


def test_differences_are_each_named():
    codec = LevelCodec()
    first = describe_generator("cunet", make_generator(0), codec)
    second = describe_generator("cunet", make_generator(0, channels=(8, 16, 16), blocks=(1, 2, 2)), codec)
    second["codec"] = LevelCodec(max_levels=(4.0, 75.0)).to_dict()
    differences = generator_differences(first, second, ("MSE", "GAN"))
    assert differences[0] == "blocks: MSE [2, 2, 2], GAN [1, 2, 2]"
    assert differences[1] == "channels: MSE [8, 16, 32], GAN [8, 16, 16]"
    assert differences[2].startswith(
        "level codec: MSE {'names': ['blur', 'noise'], 'max_levels': [4.0, 50.0]}"
    )
    assert len(differences) == 3
    assert generator_differences(first, dict(first)) == []
