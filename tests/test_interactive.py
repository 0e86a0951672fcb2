"""Tests of cugan_lightning.interactive (the notebook's logic, driven headlessly) and of the notebook file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_generator as make_net
from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.checkpoint.find import find_checkpoints
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.dni import interpolate
from cugan_lightning.interactive import DEFAULT_DEGRADATION, ModulationSession, default_image

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "interactive_modulation.ipynb"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("logs") / "run" / "checkpoints"
    return {
        "mse": save_generator_checkpoint(folder / "stage1.ckpt", make_net(0), LevelCodec(), kind="cunet"),
        "gan": save_generator_checkpoint(folder / "stage2.ckpt", make_net(1), LevelCodec(), kind="cugan"),
    }


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(20, 28, 3)).astype(np.uint8)


def test_each_slider_recomputes_only_what_it_changes(ckpts, image):
    session = ModulationSession(ckpts["mse"], ckpts["gan"], image=image, alpha=0.5)
    first = session.set(blur=1.0, noise=10)
    assert first.shape == image.shape and first.dtype == np.uint8
    assert session.stats == {"condition_calls": 1, "blend_calls": 1, "forward_calls": 1}

    session.set(noise=20)  # noise only: new condition weights, no re-blend
    assert session.stats == {"condition_calls": 2, "blend_calls": 1, "forward_calls": 2}

    session.set(noise=20)  # nothing moved: nothing runs
    assert session.stats == {"condition_calls": 2, "blend_calls": 1, "forward_calls": 2}

    session.set(alpha=0.8)  # alpha re-blends G and C_G, so C_G runs again for the same z
    assert session.stats == {"condition_calls": 3, "blend_calls": 2, "forward_calls": 3}

    session.set(alpha=0.5)  # back: re-blend, but the (0.5, z) weights are cached
    assert session.stats == {"condition_calls": 3, "blend_calls": 3, "forward_calls": 4}

    again = session.set(noise=10)  # (0.5, noise 10) was computed first: cached weights, same image
    assert session.stats == {"condition_calls": 3, "blend_calls": 3, "forward_calls": 5}
    np.testing.assert_array_equal(again, first)


def test_session_output_equals_the_interpolated_network(ckpts, image):
    session = ModulationSession(ckpts["mse"], ckpts["gan"], image=image)
    out = session.set(blur=2.5, noise=35, alpha=0.3)
    net, codec = interpolate(ckpts["mse"], ckpts["gan"], 0.3)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = net(x, codec.levels_to_z(2.5, 35.0)).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(out, np.round(expected * 255).astype(np.uint8))
    assert session.levels == {"blur": 2.5, "noise": 35.0} and session.alpha == 0.3


def test_bad_slider_values_change_nothing(ckpts, image):
    session = ModulationSession(ckpts["mse"], image=image)
    session.set(noise=5)
    with pytest.raises(ValueError, match="noise level 80 is outside 0..50"):
        session.set(noise=80)
    with pytest.raises(ValueError, match="needs a GAN model"):
        session.set(alpha=0.5)
    with pytest.raises(ValueError, match="unknown slider 'jpeg'"):
        session.set(jpeg=10)
    assert session.levels["noise"] == 5.0 and session.alpha is None


def test_default_image_is_the_degraded_embedded_photo(ckpts):
    clean, degraded = default_image(crop=48)
    assert clean.shape == degraded.shape == (48, 48, 3) and degraded.dtype == np.uint8
    assert np.abs(clean.astype(int) - degraded.astype(int)).mean() > 5
    session = ModulationSession(ckpts["mse"], crop=48)
    assert session.levels == dict(zip(("blur", "noise"), DEFAULT_DEGRADATION, strict=True))
    np.testing.assert_array_equal(session.image, degraded)
    assert session.output().shape == (48, 48, 3)


def test_widgets_are_wired_to_set(ckpts, image):
    pytest.importorskip("ipywidgets")
    session = ModulationSession(ckpts["mse"], ckpts["gan"], image=image, alpha=0.5)
    box = session.widgets()
    assert box is not None
    blur, noise, alpha = (session.controls[k] for k in ("blur", "noise", "alpha"))
    assert (blur.min, blur.max, blur.step) == (0.0, 4.0, 0.1)
    assert (noise.min, noise.max, noise.step) == (0.0, 50.0, 1.0)
    assert (alpha.min, alpha.max, alpha.step, alpha.disabled) == (0.0, 1.0, 0.05, False)
    assert "blur" in blur.description and "noise" in noise.description
    before, stats = session.controls["output"].value, dict(session.stats)

    noise.value = 40.0  # what a user's drag does
    assert session.levels["noise"] == 40.0
    assert session.stats["forward_calls"] == stats["forward_calls"] + 1
    assert session.stats["blend_calls"] == stats["blend_calls"]
    assert session.controls["output"].value != before
    assert "forward calls" in session.controls["status"].value

    alpha.value = 0.9
    assert session.alpha == 0.9 and session.stats["blend_calls"] == stats["blend_calls"] + 1

    without_gan = ModulationSession(ckpts["mse"], image=image)
    without_gan.widgets()
    assert without_gan.controls["alpha"].disabled


def test_find_checkpoints_picks_the_newest_of_each_kind(ckpts, tmp_path):
    root = ckpts["mse"].parents[2]
    mse, gan = find_checkpoints(roots=[root])
    assert (mse, gan) == (ckpts["mse"], ckpts["gan"])
    assert find_checkpoints(ckpts["mse"], roots=[tmp_path]) == (ckpts["mse"], None)
    with pytest.raises(FileNotFoundError, match="make demo"):
        find_checkpoints(roots=[tmp_path])


def test_notebook_is_valid_stripped_and_uses_the_helper():
    # plain JSON checks of the nbformat 4 layout: importing nbformat's schema validator takes seconds
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4 and isinstance(notebook["metadata"], dict)
    cells = notebook["cells"]
    assert all(c["cell_type"] in ("markdown", "code") and isinstance(c["metadata"], dict) for c in cells)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    source = {c["cell_type"]: "" for c in cells}
    for cell in cells:
        text = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        source[cell["cell_type"]] += text + "\n"
    assert "from cugan_lightning.interactive import" in source["code"]
    assert "make demo" in source["markdown"] + source["code"] and "widgets()" in source["code"]
    compile(source["code"], str(NOTEBOOK), "exec")
