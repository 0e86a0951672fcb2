"""Classical restorers as evaluation rows: each method on a tiny image, and the n/a marking in the tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import convolve

from conftest import compose_config, make_generator
from cugan_lightning.apps.evaluate import run
from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.data import load_embedded_image
from cugan_lightning.degradations import LevelCodec, degrade_fixed
from cugan_lightning.evaluation.classical import CLASSICAL_METHODS, classical_method, psf
from cugan_lightning.evaluation.models import load_models, parse_models

SIZE = 48


def tiny(name: str = "astronaut", size: int = SIZE) -> torch.Tensor:
    photo = load_embedded_image(name)
    top, left = (photo.shape[0] - size) // 2, (photo.shape[1] - size) // 2
    crop = photo[top : top + size, left : left + size, :3]
    return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).double() / 255


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / float(torch.mean((a.double() - b.double()) ** 2)))


@pytest.mark.parametrize(
    ("name", "blur", "noise"),
    [("bm3d", 0, 30), ("nlm", 0, 30), ("nlm", 2, 30), ("wiener", 2, 0), ("wiener", 2, 30), ("rl", 2, 0)],
)
def test_each_method_restores_a_tiny_image_it_can_handle(name, blur, noise):
    if name == "bm3d":
        pytest.importorskip("bm3d")
    gt = tiny()
    lq = degrade_fixed(gt.float(), blur, noise, image_key="tiny").double()
    method = CLASSICAL_METHODS[name]
    assert method.handles(blur, noise)
    out = method.restore(lq[None], torch.tensor([float(blur)]), torch.tensor([float(noise)]))
    assert out.shape == (1, 3, SIZE, SIZE) and out.dtype == lq.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert psnr(out[0], gt) > psnr(lq, gt) + 0.5, (psnr(out[0], gt), psnr(lq, gt))


def test_the_kernel_the_methods_are_told_is_the_degradation_kernel():
    # blurring with psf() by an independent convolution reproduces the degradation (replicate border, no noise)
    gt = tiny()
    lq = degrade_fixed(gt.float(), 2.0, 0.0, image_key="k", quantize=False).double()
    kernel = psf(2.0)
    assert kernel.shape == (21, 21) and abs(kernel.sum() - 1) < 1e-12
    ref = np.stack([convolve(gt[c].numpy(), kernel, mode="nearest") for c in range(3)])
    np.testing.assert_allclose(lq.numpy(), ref, atol=1e-6)


def test_reach_and_bad_names():
    assert [m.handles(2, 0) for m in CLASSICAL_METHODS.values()] == [False, False, True, True]
    assert [m.handles(0, 30) for m in CLASSICAL_METHODS.values()] == [True, True, False, False]
    assert not any(m.handles(1, 15, 40) for m in CLASSICAL_METHODS.values())  # JPEG is out of every reach
    with pytest.raises(ValueError, match="unknown classical method 'bm4d'; choose one of classical:bm3d"):
        classical_method("classical:bm4d", "models.x")
    with pytest.raises(ValueError, match="cannot restore blur 2, noise 0"):
        CLASSICAL_METHODS["nlm"].restore(torch.zeros(1, 3, 8, 8), torch.tensor([2.0]), torch.tensor([0.0]))


def test_classical_rows_in_the_evaluation_table_mark_what_they_cannot_do(tmp_path):
    mse = save_generator_checkpoint(tmp_path / "mse.ckpt", make_generator(0), LevelCodec(), kind="cunet")
    cfg = compose_config(
        [
            "data.crop=40",
            "metrics=[psnr]",
            "figures=false",
            f"models.cunet={mse}",
            "models.nlm=classical:nlm",
            "models.wiener=classical:wiener",
            "settings=[[0,30],[2,0],[2,30]]",
        ],
        tmp_path / "run",
        "evaluate",
    )
    summary = run(cfg)["summary"]["psnr"]
    assert set(summary["nlm"]) == {"b0_n30", "b2_n30", "mean"}  # no blur-only score for a denoiser
    assert set(summary["wiener"]) == {"b2_n0", "b2_n30", "mean"}  # no noise-only score for a deconvolution
    assert set(summary["cunet"]) == {"b0_n30", "b2_n0", "b2_n30", "mean"}
    assert summary["nlm"]["b0_n30"] > summary["input"]["b0_n30"]
    assert summary["wiener"]["b2_n0"] > summary["input"]["b2_n0"]
    table = (tmp_path / "run" / "summary.md").read_text()
    nlm_row = next(line for line in table.splitlines() if line.startswith("| nlm |"))
    cells = [c.strip() for c in nlm_row.strip("|").split("|")]
    assert cells[2] == "n/a" and cells[-1].endswith("(2 of 3)")  # the mean says what it averages
    scores = (tmp_path / "run" / "scores.csv").read_text().splitlines()
    assert not any(",nlm," in line and ",b2_n0," in line for line in scores)


def test_models_entries_name_classical_methods():
    (spec,) = parse_models({"bm": "classical:wiener", "unset": None})
    assert spec.classical == "classical:wiener" and spec.path is None
    (model,) = load_models([spec], torch.device("cpu"))[1:]
    assert model.kind == "classical" and model.restores and not model.conditional
    z = model.z_for(torch.tensor([2.0]), torch.tensor([30.0]))
    assert z.tolist() == [[2.0, 30.0]]  # a classical method is told the true levels
    with pytest.raises(ValueError, match="models.x: unknown classical method"):
        parse_models({"x": "classical:median"})
