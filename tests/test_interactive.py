"""Tests of cugan_lightning.interactive (the notebook's logic, driven headlessly) and of the notebook file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cugan_lightning.checkpoint.find import find_checkpoints
from cugan_lightning.dni import interpolate
from cugan_lightning.interactive import DEFAULT_DEGRADATION, ModulationSession, default_image
from cugan_lightning.zoo import default_model

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "interactive_modulation.ipynb"


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
    session = ModulationSession(ckpts["mse"], ckpts["gan"], image=image, precision="float32")
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
    root = tmp_path / "logs"
    placed = {}
    for age, (name, source) in enumerate(
        [
            ("old_mse", "mse"),
            ("old_gan", "gan"),
            ("new_mse", "mse3"),
            ("new_gan", "gan3"),
            ("older_mse", "mse"),
        ]
    ):
        target = root / name / "checkpoints" / "last.ckpt"
        target.parent.mkdir(parents=True)
        shutil.copyfile(ckpts[source], target)
        os.utime(target, (1_000_000 + age * 10, 1_000_000 + (age if name != "older_mse" else -5) * 10))
        placed[name] = target
    assert find_checkpoints(roots=[root]) == (placed["new_mse"], placed["new_gan"])
    assert find_checkpoints(ckpts["mse"], roots=[tmp_path / "none"]) == (ckpts["mse"], None)
    assert find_checkpoints(roots=[tmp_path / "none"]) == (
        f"zoo:{default_model()}",
        None,
    )  # nothing trained yet
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_checkpoints(tmp_path / "gone.ckpt")


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


def test_the_notebook_runs_headless_on_tiny_checkpoints(ckpts, tmp_path):
    """Every cell of the notebook, executed by a real kernel in a folder whose logs/ holds a stage-1 and a
    stage-2 file (as `make demo` leaves them): no error, the widgets built, the stats and the image shown."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient", reason="needs the dev extra (nbclient, ipykernel)")
    for name, kind in (("stage1_cunet", "mse"), ("stage2_cugan", "gan")):
        target = tmp_path / "logs" / "demo" / name / "checkpoints" / "last.ckpt"
        target.parent.mkdir(parents=True)
        shutil.copyfile(ckpts[kind], target)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "stage1_cunet" in text and "stage2_cugan" in text  # the checkpoints it found, printed
    assert "'forward_calls'" in text  # session.stats
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the restored image of the last cell
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def test_a_photo_opens_at_its_blind_estimate_and_auto_returns_there(ckpts):
    from skimage import data

    clean = data.astronaut()[100:164, 200:280].astype(float)
    rng = np.random.default_rng(2)
    noisy = np.clip(np.round(clean + rng.normal(0, 25, clean.shape)), 0, 255).astype(np.uint8)
    session = ModulationSession(ckpts["mse"], image=noisy, crop=None, preview_side=None)
    estimate = session.restorer.estimate(noisy)
    assert session.estimates == estimate
    assert session.levels["noise"] == round(estimate["noise"].value)
    assert abs(session.levels["noise"] - 25) <= 3
    session.set(noise=5)
    restored = session.auto()
    assert session.levels["noise"] == round(estimate["noise"].value)
    np.testing.assert_array_equal(restored, session.restorer.restore(noisy, **session.levels))
