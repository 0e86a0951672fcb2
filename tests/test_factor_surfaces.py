"""The web page and the notebook session follow the model's factor list: a four-factor model (blur, noise, JPEG,
Poisson noise) gets four sliders labelled and ranged from the factor registry, its Poisson slider changes the
restoration and the command says ``--poisson`` (docs/webapp.md)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import CODEC4_NAMES
from cugan_lightning.data.io import read_image_raw
from cugan_lightning.interactive import ModulationSession
from cugan_lightning.webapp import Workbench


class FakeRequest:
    """What the page's handlers read of a Gradio request."""

    session_hash = "test-session"


def page_parts(bench: Workbench):
    """The built page's sliders by factor name and its handlers by function name."""
    from cugan_lightning.webapp.page import build_page

    page = build_page(bench)
    sliders = {
        block.elem_id.removeprefix("slider-"): block
        for block in page.blocks.values()
        if (getattr(block, "elem_id", None) or "").startswith("slider-")
    }
    handlers = {fn.fn.__name__: fn.fn for fn in page.fns.values() if fn.fn is not None}
    return sliders, handlers


@pytest.fixture
def bench4(ckpts, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # build_page points it at the workbench's folder
    bench = Workbench(ckpts["mse4"], preview_side=256, workdir=tmp_path / "work")
    yield bench
    bench.close()


def test_a_four_factor_model_gets_a_slider_per_factor_from_the_registry(bench4):
    sliders, handlers = page_parts(bench4)
    shown = [name for name, slider in sliders.items() if slider.visible]
    assert shown == [*CODEC4_NAMES]  # no alpha without a GAN model
    poisson = sliders["poisson"]
    assert (poisson.minimum, poisson.maximum, poisson.step) == (0.0, 25.0, 1.0)
    assert poisson.label == "Poisson σ at white (0-255)"
    assert "shot-noise sigma at white on the 0-255 scale" in poisson.info
    assert (sliders["blur"].maximum, sliders["noise"].maximum, sliders["jpeg"].maximum) == (4.0, 50.0, 100.0)
    assert sliders["blur"].label == "blur σ (pixels)" and sliders["jpeg"].label == "JPEG quality (0: none)"

    # the handlers take the slider values in codec order (blur, noise, jpeg, poisson), then alpha
    photo = bench4.open_demo("coffee")
    command, message = handlers["note"](FakeRequest(), photo, 1.0, 10.0, 0.0, 12.0, 0.5)
    assert message == "" and "--poisson 12" in command and "--noise 10" in command

    def restored(poisson: float) -> np.ndarray:
        frames = list(handlers["restore"](FakeRequest(), photo, 1.0, 10.0, 0.0, poisson, 0.5))
        display = frames[-1][0]
        assert frames[-1][2].startswith("Restored"), frames[-1]
        return read_image_raw(display).astype(np.int32)

    at_zero, at_twenty = restored(0.0), restored(20.0)
    assert np.abs(at_zero - at_twenty).mean() > 0.1  # the Poisson entry of z reaches the network
    expected = bench4.restorer.restore(photo.array, levels={"blur": 1.0, "noise": 10.0, "poisson": 20.0})
    np.testing.assert_array_equal(at_twenty, expected.astype(np.int32))


def test_a_page_refuses_a_model_with_a_factor_it_has_no_slider_for(ckpts, bench4, tmp_path):
    two = Workbench(ckpts["mse"], workdir=tmp_path / "two")
    with pytest.raises(
        ValueError, match="conditions on poisson; this page has sliders for blur, noise, jpeg"
    ):
        two.load_model(ckpts["mse4"], factors=("blur", "noise", "jpeg"))
    assert list(two.restorer.codec.names) == ["blur", "noise"]  # the current model stays
    two.close()


def test_the_notebook_session_has_a_poisson_slider(ckpts):
    session = ModulationSession(ckpts["mse4"])
    specs = {spec.name: spec for spec in session.sliders.specs()}
    assert list(specs) == [*CODEC4_NAMES]
    assert (specs["poisson"].minimum, specs["poisson"].maximum, specs["poisson"].step) == (0.0, 25.0, 1.0)
    out = session.set(poisson=7)
    assert session.levels["poisson"] == 7.0
    np.testing.assert_array_equal(
        out, session.restorer.restore(session.image, levels={"blur": 2, "noise": 30, "poisson": 7})
    )
