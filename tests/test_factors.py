"""Degradation factors as plug-ins (docs/degradations.md, "Factors"): the registry, each factor's level <-> z
mapping, Poisson noise and motion blur, the n-factor sampler and the evaluation grid's names."""

from __future__ import annotations

import math

import pytest
import torch

from cugan_lightning.degradations import (
    GRID_FACTORS,
    LevelCodec,
    LevelSampler,
    degrade_levels,
    known_factors,
    lookup,
    make_generator,
    parse_setting,
    setting_name,
)
from cugan_lightning.degradations.factors import Motion, Poisson, make_factor, motion_kernels, pipeline_order

FOUR = ("blur", "noise", "jpeg", "poisson")


def test_registry_knows_the_factors_in_pipeline_order() -> None:
    assert known_factors() == ("blur", "motion", "poisson", "noise", "jpeg")
    assert pipeline_order(["jpeg", "noise", "poisson", "blur"]) == ["blur", "poisson", "noise", "jpeg"]


def test_registry_refuses_an_unknown_name_listing_the_known_ones() -> None:
    message = r"unknown degradation factor 'haze'; known factors: blur, motion, poisson, noise, jpeg"
    with pytest.raises(ValueError, match=message):
        lookup("haze")
    with pytest.raises(ValueError, match="known factors: blur"):
        LevelCodec(names=("blur", "haze"), max_levels=(4.0, 1.0))
    with pytest.raises(ValueError, match="known factors: blur"):
        LevelSampler(factors=("blur", "haze"), p_groups=(0.5, 0.5))


def test_a_setting_a_factor_does_not_take_is_named_with_the_ones_it_takes(tmp_path) -> None:
    from omegaconf.errors import InterpolationResolutionError

    from conftest import compose_config

    with pytest.raises(
        ValueError, match="degradation.factor.poisson has no setting 'foo'; it takes max_level, step"
    ):
        LevelSampler(factors=("noise", "poisson"), p_groups=(0.5, 0.5), levels={"poisson": {"foo": 1}})
    cfg = compose_config(["experiment=quickstart_cpu_4f", "+degradation.factor.jpeg.max_level=5"], tmp_path)
    with pytest.raises(InterpolationResolutionError, match="it takes quality_min, quality_max"):
        cfg.degradation.codec.max_levels  # noqa: B018 - resolving it is the check


@pytest.mark.parametrize("name", ["blur", "noise", "jpeg", "poisson", "motion"])
def test_level_z_level_round_trip(name: str) -> None:
    factor = make_factor(name)
    codec = LevelCodec(names=(name,), max_levels=(factor.codec_max,))
    if name == "jpeg":
        levels = torch.tensor([0.0, 10.0, 37.0, 100.0])
    else:
        levels = torch.arange(0, factor.max_label + 1, dtype=torch.float64) * factor.step
    z = codec.encode({name: levels})
    assert float(z.min()) >= 0 and float(z.max()) <= 1
    assert torch.allclose(codec.decode(z)[:, 0].double(), levels.double(), atol=1e-5)
    top = codec.encode({name: 10.0 if name == "jpeg" else factor.max_level})
    assert float(top) == pytest.approx(1.0)  # the strongest level is z = 1
    with pytest.raises(ValueError, match=name):
        codec.encode({name: factor.codec_max * 2 + 200})


def test_codec_names_the_factor_a_model_lacks() -> None:
    codec = LevelCodec()
    with pytest.raises(ValueError, match=r"this model conditions on \['blur', 'noise'\], not on poisson"):
        codec.encode_all({"blur": 1.0, "poisson": 5.0})
    assert codec.encode_all({"blur": 2.0, "poisson": 0.0}).tolist() == [[0.5, 0.0]]
    with pytest.raises(ValueError, match="not on motion"):
        codec.factor("motion")


def test_poisson_variance_is_level_squared_times_signal() -> None:
    """Many samples of flat gray levels: the mean is kept and the variance on the 0..255 scale is level^2 * x."""
    x = torch.tensor([0.05, 0.25, 0.5, 1.0], dtype=torch.float64).view(4, 1, 1, 1).expand(4, 1, 200, 200)
    level = 20.0
    out = Poisson().apply(x.contiguous(), torch.full((4,), level), make_generator("poisson", 0))
    values = out.flatten(1) * 255.0
    for i, signal in enumerate([0.05, 0.25, 0.5, 1.0]):
        assert float(values[i].mean()) == pytest.approx(signal * 255, rel=0.01)
        assert float(values[i].var()) == pytest.approx(level**2 * signal, rel=0.03)
    # level 0 is no noise, bit for bit, and a darker pixel is less noisy than a bright one
    assert torch.equal(Poisson().apply(x.contiguous(), torch.zeros(4), make_generator("poisson", 0)), x)
    assert float(values[0].var()) < float(values[3].var()) / 10


def test_poisson_map_matches_the_uniform_level_and_is_deterministic() -> None:
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    level = torch.tensor([8.0, 0.0])
    uniform = Poisson().apply(x, level, make_generator("p", 1))
    per_pixel = Poisson().apply_map(x, level[:, None, None].expand(2, 16, 16), make_generator("p", 1))
    assert torch.equal(uniform, per_pixel)
    assert torch.equal(uniform, Poisson().apply(x, level, make_generator("p", 1)))
    assert torch.equal(uniform[1], x[1])


@pytest.mark.parametrize("length", [0.0, 1.0, 4.5, 15.0])
def test_motion_kernel_sums_to_one_and_spans_its_length(length: float) -> None:
    angle = torch.tensor([0.0])
    kernel = motion_kernels(torch.tensor([length]), angle, Motion().kernel_size)[0]
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-12)
    row = kernel[kernel.shape[0] // 2]  # a horizontal segment lies in the centre row
    assert float(row.sum()) == pytest.approx(1.0, abs=1e-12)
    if length == 0:
        assert float(kernel.max()) == 1.0  # the delta kernel
    else:  # the segment's pixels, and at each end at most one more partly covered
        assert length <= int((row > 0).sum()) <= length + 3
        vertical = motion_kernels(torch.tensor([length]), torch.tensor([math.pi / 2]), Motion().kernel_size)[
            0
        ]
        assert torch.allclose(vertical, kernel.T, atol=1e-6)  # (a float32 angle)


def test_motion_length_zero_is_the_identity_and_directions_come_from_the_generator() -> None:
    x = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([0.0, 9.0, 9.0])
    out = Motion().apply(x, lengths, make_generator("m", 0))
    assert torch.equal(out[0], x[0])
    assert not torch.allclose(out[1], out[2])  # same length, different drawn directions
    assert torch.equal(out, Motion().apply(x, lengths, make_generator("m", 0)))
    global_state = torch.random.get_rng_state()
    Motion().apply(x, lengths, make_generator("m", 1))
    assert torch.equal(torch.random.get_rng_state(), global_state)  # nothing touches the global RNG
    with pytest.raises(ValueError, match="motion blur keeps one length per image"):
        Motion().apply_map(x, torch.ones(3, 24, 24))


def test_four_factor_sampler_draws_every_group_size_and_is_deterministic() -> None:
    sampler = LevelSampler(factors=FOUR, p_groups=(0.25, 0.25, 0.25, 0.25))
    levels = sampler.sample_levels(4000, make_generator("four", 0))
    assert list(levels) == list(FOUR)
    active = torch.stack([levels[n] > 0 for n in FOUR], dim=1).sum(dim=1)
    counts = torch.bincount(active, minlength=5)[1:] / 4000
    assert torch.allclose(counts, torch.full((4,), 0.25), atol=0.04)  # (a drawn level may round to 0)
    assert float(levels["poisson"].max()) == 25.0 and set(levels["poisson"].tolist()) <= set(range(26))
    again = sampler.sample_levels(4000, make_generator("four", 0))
    assert all(torch.equal(levels[n], again[n]) for n in FOUR)
    with pytest.raises(ValueError, match=r"p_groups gives the probabilities of 1..4"):
        LevelSampler(factors=FOUR)


def test_pipeline_runs_stages_in_order_whatever_the_names_order() -> None:
    gt = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    levels = {"poisson": torch.tensor([5.0, 0.0]), "blur": torch.tensor([1.0, 0.0]), "noise": torch.zeros(2)}
    out = degrade_levels(gt, levels, make_generator("pipe", 0))
    same = degrade_levels(gt, dict(reversed(levels.items())), make_generator("pipe", 0))
    assert torch.equal(out, same)
    assert torch.equal(out[1], torch.round(gt[1] * 255) / 255)  # all zero: only 8-bit storage


def test_grid_names_have_a_key_per_factor() -> None:
    assert GRID_FACTORS[:5] == ("blur", "noise", "jpeg", "poisson", "motion")
    assert setting_name(2, 30) == "b2_n30"
    assert setting_name(0, 0, 0, 10) == "b0_n0_p10"
    assert setting_name(1, 15, 30, 0, 7) == "b1_n15_q30_m7"
    assert parse_setting("b0_n0_p10") == (0.0, 0.0, 0.0, 10.0)
    assert parse_setting("b1_n15_q30_m7") == (1.0, 15.0, 30.0, 0.0, 7.0)
    assert parse_setting("b2_n30_q30") == (2.0, 30.0, 30.0)
    with pytest.raises(ValueError, match=r"\[_p<poisson level>\]\[_m<motion level>\]"):
        parse_setting("b2_x3")


def test_factor_configs_compose_into_codec_and_sampler() -> None:
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    with initialize_config_module("cugan_lightning.conf", version_base="1.3"):
        cfg = compose("train", overrides=["degradation.factors=[blur,motion,noise,poisson]",
                                          "degradation.sampler.p_groups=[0.4,0.3,0.2,0.1]"])  # fmt: skip
        assert OmegaConf.to_container(cfg.degradation.codec, resolve=True) == {
            "names": ["blur", "motion", "noise", "poisson"],
            "max_levels": [4.0, 15.0, 50.0, 25.0],
        }
        sampler = instantiate(cfg.degradation.sampler)
        assert sampler.maxima() == {"blur": 4.0, "motion": 15.0, "noise": 50.0, "poisson": 25.0}
        jpeg = compose("train", overrides=["degradation=jpeg"])
        assert list(jpeg.degradation.codec.max_levels) == [4.0, 50.0, 92.0]
        assert math.isclose(jpeg.model.net_g.cond_dim, 3)
