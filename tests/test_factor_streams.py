"""The random streams of the two- and three-factor samplers and of a degraded training batch stay what they
were before factors became plug-ins (values recorded with the code of that time): existing runs, tests and the
demo's printed numbers depend on them."""

from __future__ import annotations

import pytest
import torch

from cugan_lightning.data.datamodule import RestorationDataModule
from cugan_lightning.degradations import LevelSampler, SpatialLevels, make_generator

THREE = ("blur", "noise", "jpeg")

# (sampler arguments, blur labels (sigma * 10), noise sigmas, jpeg qualities or None, next uniform draw)
RECORDED = [
    (
        {},
        [0, 14, 35, 26, 23, 1, 20, 16, 0, 0, 2, 27],
        [9, 32, 45, 0, 29, 0, 20, 6, 47, 23, 0, 30],
        None,
        0.5935971140861511,
    ),
    (
        {"beta_a": 0.5, "beta_b": 1.0},
        [0, 14, 12, 4, 6, 3, 2, 4, 0, 0, 37, 39],
        [24, 1, 8, 0, 22, 0, 14, 6, 24, 1, 0, 33],
        None,
        0.8652762174606323,
    ),
    (
        {"factors": THREE},
        [0, 19, 26, 0, 15, 0, 27, 30, 35, 28, 0, 11],
        [16, 7, 38, 28, 5, 28, 47, 3, 0, 0, 32, 45],
        [47, 61, 18, 86, 0, 61, 34, 17, 0, 0, 0, 42],
        0.6425469517707825,
    ),
    (
        {"factors": THREE, "beta_a": 0.5, "beta_b": 1.0},
        [0, 1, 2, 0, 0, 0, 0, 2, 14, 12, 0, 1],
        [16, 2, 3, 16, 17, 2, 20, 16, 0, 0, 7, 0],
        [46, 72, 97, 82, 0, 27, 37, 78, 0, 0, 0, 90],
        0.18655890226364136,
    ),
]


@pytest.mark.parametrize(("kwargs", "blur", "noise", "jpeg", "after"), RECORDED)
def test_sampler_stream_unchanged(
    kwargs: dict, blur: list, noise: list, jpeg: list | None, after: float
) -> None:
    generator = make_generator("ref", 1)
    levels = LevelSampler(**kwargs).sample_levels(12, generator)
    assert torch.round(levels["blur"] * 10).long().tolist() == blur
    assert levels["noise"].long().tolist() == noise
    if jpeg is None:
        assert set(levels) == {"blur", "noise"}
    else:
        assert levels["jpeg"].long().tolist() == jpeg
    # the generator is left where it was: later draws of the same generator are unchanged too
    assert float(torch.rand(1, generator=generator)) == after


@pytest.mark.parametrize(
    ("kind", "total"),
    [("default", 9251.823798394762), ("jpeg", 9260.933572853915), ("spatial", 9252.87477903068)],
)
def test_training_batch_unchanged(kind: str, total: float) -> None:
    if kind == "jpeg":
        codec = {"names": list(THREE), "max_levels": [4.0, 50.0, 92.0]}
        module = RestorationDataModule(sampler=LevelSampler(factors=THREE), codec=codec)
    else:
        module = RestorationDataModule(spatial=SpatialLevels(p=0.5) if kind == "spatial" else None)
    gt = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    batch = module.degrade_train_batch(gt, 3, 0)
    assert float(batch["lq"].double().sum()) == pytest.approx(total, abs=1e-6)


def test_a_batch_carries_each_factors_levels_under_its_key_and_a_figure_reads_them_back() -> None:
    """Training batch, evaluation item and the validation figure's sample name each factor's levels alike:
    ``blur_sigma``, ``noise_sigma``, ``jpeg_quality``, ``<name>_level`` for a plug-in factor."""
    from conftest import CODEC4_NAMES
    from cugan_lightning.modules.base import _capture_sample

    codec = {"names": list(CODEC4_NAMES), "max_levels": [4.0, 50.0, 92.0, 25.0]}
    module = RestorationDataModule(
        sampler=LevelSampler(factors=CODEC4_NAMES, p_groups=(0, 0, 0, 1)), codec=codec
    )
    batch = module.degrade_train_batch(torch.rand(2, 3, 16, 16), 0)
    levels = module.sampler.sample_levels(2, make_generator("train-levels", module.seed, 0, 0))
    keys = {"blur": "blur_sigma", "noise": "noise_sigma", "jpeg": "jpeg_quality", "poisson": "poisson_level"}
    for name, key in keys.items():
        assert torch.equal(batch[key], levels[name]) and bool((levels[name] > 0).all()), name
    batch["setting"] = ["x", "y"]
    sample = _capture_sample(batch, "y")
    assert sample["levels"] == {name: float(levels[name][1]) for name in keys}
    assert torch.equal(sample["lq"], batch["lq"][1])
