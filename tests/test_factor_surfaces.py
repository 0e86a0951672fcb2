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


# ------------------------------------------------------------------------------------------------ evaluation
EVAL_FAST = ["data.crop=40", "metrics=[psnr]", "figures=false", "precision=float32"]


def evaluate_in_process(tmp_path, *overrides: str) -> dict:
    from conftest import compose_config
    from cugan_lightning.apps.evaluate import run

    return run(compose_config([*EVAL_FAST, *overrides], tmp_path, config_name="evaluate"))


def test_old_settings_degrade_through_the_pipeline_to_the_same_bytes():
    """Every evaluation input goes through the factor pipeline; for the blur / noise / JPEG settings it is the
    input the fixed blur-noise-store path made before factors were plug-ins, byte for byte, in both protocols."""
    import torch

    from cugan_lightning.data import load_embedded_image
    from cugan_lightning.degradations import setting_name
    from cugan_lightning.degradations.noise import degrade
    from cugan_lightning.degradations.sampling import seed_for
    from cugan_lightning.evaluation.runner import degraded_inputs
    from cugan_lightning.evaluation.settings import parse_settings

    gt = torch.from_numpy(load_embedded_image("coffee")[:40, :48].copy()).permute(2, 0, 1).float() / 255
    settings = parse_settings("paper_jpeg") + parse_settings([[1.5, 25], [3, 10, 70]])
    for protocol, exact in (("paper", True), ("standard", False)):
        made = degraded_inputs(gt, "coffee", settings, seed=0, protocol=protocol)
        for lq, setting in zip(made, settings, strict=True):
            blur, noise, quality = (setting.level(f) for f in ("blur", "noise", "jpeg"))
            generator = torch.Generator().manual_seed(
                seed_for("eval", 0, "coffee", setting_name(*setting.grid))
            )
            before = degrade(
                gt.double()[None], blur, noise, generator=generator, quantize=exact,
                jpeg_quality=int(quality) if quality else None, clip_values=exact,
            )  # fmt: skip
            assert torch.equal(lq, before[0].float()), (protocol, setting.name)


def test_the_evaluation_app_scores_a_four_factor_model_on_a_poisson_setting(ckpts, tmp_path):
    summary = evaluate_in_process(
        tmp_path, f"+models.four={ckpts['mse4']}", f"+models.two={ckpts['mse']}", "models.bm3d=classical:bm3d",
        "models.wiener=classical:wiener", "settings=[b0_n0_p10,b2_n30]", "told={poisson: 0}",
    )  # fmt: skip
    psnr = summary["summary"]["psnr"]
    assert summary["settings"] == ["b0_n0_p10", "b2_n30"]
    assert set(psnr["four"]) == {"b0_n0_p10", "b2_n30", "mean"}
    assert set(psnr["input"]) == {"b0_n0_p10", "b2_n30", "mean"}
    # classical rows for the Gaussian setting only; none is faked for Poisson noise (registry: classical none)
    assert set(psnr["bm3d"]) == {"b2_n30", "mean"} and set(psnr["wiener"]) == {"b2_n30", "mean"}
    notes = "\n".join(summary["not_scored"])
    assert "bm3d is not scored on b0_n0_p10: no classical method restores poisson (classical: none)" in notes
    assert "wiener is not scored on b0_n0_p10" in notes
    # a two-factor model is scored on its own factors only, with one line naming the one it lacks
    assert set(psnr["two"]) == {"b2_n30", "mean"}
    assert (
        "two is not scored on b0_n0_p10: it conditions on ['blur', 'noise'], not on poisson"
        in (summary["not_scored"])
    )
    assert "not on poisson" in (tmp_path / "summary.md").read_text()
    # the Poisson input is the pipeline's, seeded per image: noisy, and the scores file has a poisson column
    scores = (tmp_path / "scores.csv").read_text().splitlines()
    assert scores[0] == "image,setting,blur,noise,jpeg,poisson,model,alpha,metric,value"
    assert psnr["input"]["b0_n0_p10"] < 40
    # told zero: the same network told no Poisson noise, scored beside the one told the truth
    told = psnr["four_told_poisson0"]
    assert set(told) == {"b0_n0_p10", "b2_n30", "mean"}
    assert told["b0_n0_p10"] != psnr["four"]["b0_n0_p10"]
    assert told["b2_n30"] == psnr["four"]["b2_n30"]  # the truth there is poisson 0 as well


def test_told_levels_are_checked_against_the_models(ckpts, tmp_path):
    with pytest.raises(Exception, match="told names poisson, which no conditional model here conditions on"):
        evaluate_in_process(tmp_path, f"+models.two={ckpts['mse']}", "settings=[b0_n30]", "told={poisson: 0}")
    with pytest.raises(ValueError, match="poisson level 40 is outside 0..25"):
        evaluate_in_process(
            tmp_path, f"+models.four={ckpts['mse4']}", "settings=[b0_n30]", "told={poisson: 40}"
        )
    for told in ("5", "{poisson: null}", "{poisson: high}"):
        with pytest.raises(ValueError, match="told must map factor names to levels, e.g. told={poisson: 0}"):
            evaluate_in_process(
                tmp_path, f"+models.four={ckpts['mse4']}", "settings=[b0_n30]", f"told={told}"
            )
    for settings, said in (
        ("5", "settings must be a name like 'paper' or a list"),
        ("[[1,null]]", "setting \\[1, None\\] is not"),
    ):
        with pytest.raises(ValueError, match=said):
            evaluate_in_process(tmp_path, f"+models.four={ckpts['mse4']}", f"settings={settings}")


def test_told_and_blind_rows_do_not_multiply(ckpts, tmp_path):
    """Each network once told the truth, once told the fixed level, once blind: a told row has no blind twin (it
    would be the blind row again, one more network pass per image)."""
    from conftest import compose_config
    from cugan_lightning.apps.evaluate import prepare

    cfg = compose_config(
        ["metrics=[psnr]", f"+models.four={ckpts['mse4']}", "settings=[b0_n30]", "told={poisson: 0}", "blind=classical"],
        tmp_path, config_name="evaluate",
    )  # fmt: skip
    assert [m.name for m in prepare(cfg).models] == ["input", "four", "four_told_poisson0", "four_blind"]
