"""Tests of the degradation model: blur, noise, quantisation, level sampling, codec and the evaluation grid."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy import signal, stats

from cugan_lightning.degradations import (
    PAPER_SETTINGS,
    LevelCodec,
    LevelSampler,
    add_gaussian_noise,
    clip,
    degrade,
    degrade_fixed,
    gaussian_blur,
    gaussian_kernel1d,
    gaussian_kernel2d,
    make_generator,
    parse_setting,
    quantize,
    sample_beta,
    sample_gamma,
    seed_for,
    setting_name,
)


def _generator(seed: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def _reference_blur(image: np.ndarray, sigma: float, size: int = 21) -> np.ndarray:
    """Blur a (C, H, W) float64 array with a numpy-built 2-D kernel, edge padding and scipy correlation."""
    half = size // 2
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    if sigma == 0:
        kernel = np.zeros((size, size))
        kernel[half, half] = 1.0
    else:
        xx, yy = np.meshgrid(offsets, offsets, indexing="ij")
        kernel = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
        kernel /= kernel.sum()
    padded = [np.pad(channel, half, mode="edge") for channel in image]
    return np.stack([signal.correlate2d(p, kernel, mode="valid") for p in padded])


def _gt_pattern(channels: int = 3, size: int = 24) -> torch.Tensor:
    """A structured, exactly reproducible image (C, H, W) in [0, 1] that needs no random state."""
    values = torch.arange(channels * size * size, dtype=torch.int64).reshape(channels, size, size)
    return ((values * 37) % 256).to(torch.float32) / 255.0


# One script, run in two fresh interpreters with different hash salts, feeds the cross-process checks.
_SUBPROCESS_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    import cugan_lightning.degradations as d
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"lightning", "pytorch_lightning", "hydra", "omegaconf"})
    import torch
    values = torch.arange(3 * 24 * 24, dtype=torch.int64).reshape(3, 24, 24)
    gt = ((values * 37) % 256).to(torch.float32) / 255.0
    lq = d.degrade_fixed(gt, 2, 30, "img-1")
    print(json.dumps({
        "seed": d.seed_for(1, 2, "x"),
        "checksum": hashlib.sha256(lq.numpy().tobytes()).hexdigest(),
        "heavy_modules": heavy,
    }))
    """
)


@pytest.fixture(scope="module")
def fresh_processes() -> list[dict]:
    # Both interpreters start at once: most of their time is importing torch.
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _SUBPROCESS_SCRIPT],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        for hash_seed in ("0", "12345")
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


# --- blur -------------------------------------------------------------------------------------------------------


def test_kernels_are_normalised_and_sigma_zero_is_a_delta() -> None:
    sigma = torch.tensor([0.0, 0.5, 1.3, 4.0], dtype=torch.float64)
    k1 = gaussian_kernel1d(sigma)
    k2 = gaussian_kernel2d(sigma)
    assert k1.shape == (4, 21) and k2.shape == (4, 21, 21)
    assert not torch.isnan(k2).any()
    torch.testing.assert_close(k1.sum(dim=1), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(k2.sum(dim=(1, 2)), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-12)
    delta = torch.zeros(21, 21, dtype=torch.float64)
    delta[10, 10] = 1.0
    assert torch.equal(k2[0], delta)
    offsets = np.arange(-10, 11)
    expected = np.exp(-(offsets**2) / (2 * 1.3**2))
    np.testing.assert_allclose(k1[2].numpy(), expected / expected.sum(), rtol=0, atol=1e-15)
    assert gaussian_kernel1d(2.0, size=7).shape == (1, 7)
    assert gaussian_kernel1d(2.0).dtype == torch.float32


@pytest.mark.parametrize("sigma", [0.5, 1.3, 4.0])
def test_blur_matches_numpy_scipy_reference(sigma: float) -> None:
    image = torch.rand(2, 3, 19, 26, generator=_generator(0))
    out = gaussian_blur(image, sigma)
    assert out.shape == image.shape and out.dtype == image.dtype
    for i in range(2):
        expected = _reference_blur(image[i].double().numpy(), sigma)
        np.testing.assert_allclose(out[i].numpy(), expected, rtol=0, atol=1e-5)
    # In float64 the same blur agrees to round-off.
    out64 = gaussian_blur(image.double(), torch.full((2,), sigma, dtype=torch.float64))
    np.testing.assert_allclose(
        out64[0].numpy(), _reference_blur(image[0].double().numpy(), sigma), atol=1e-12
    )


def test_blur_of_image_smaller_than_padding() -> None:
    image = torch.rand(1, 3, 8, 8, generator=_generator(1))
    out = gaussian_blur(image, 3.0)
    assert out.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(out[0].numpy(), _reference_blur(image[0].double().numpy(), 3.0), atol=1e-5)


def test_blur_sigma_zero_is_exact_identity() -> None:
    image = torch.rand(3, 3, 16, 16, generator=_generator(2))
    assert torch.equal(gaussian_blur(image, 0.0), image)
    out = gaussian_blur(image, torch.tensor([0.0, 2.0, 0.0]))
    assert torch.equal(out[0], image[0]) and torch.equal(out[2], image[2])
    assert not torch.equal(out[1], image[1])


def test_blur_per_sample_sigma_equals_blurring_each_image_alone() -> None:
    image = torch.rand(4, 3, 20, 20, generator=_generator(3))
    sigma = torch.tensor([0.3, 1.0, 2.7, 4.0])
    batched = gaussian_blur(image, sigma)
    for i in range(4):
        alone = gaussian_blur(image[i : i + 1], float(sigma[i]))
        torch.testing.assert_close(batched[i : i + 1], alone, rtol=0, atol=1e-6)
    assert not torch.allclose(batched[0], batched[3])


def test_blur_rejects_bad_arguments() -> None:
    image = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="blur sigma"):
        gaussian_blur(image, -1.0)
    with pytest.raises(ValueError, match="blur sigma"):
        gaussian_blur(image, torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(image, 1.0, kernel_size=20)
    with pytest.raises(ValueError, match="batch of 2"):
        gaussian_blur(image, torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        gaussian_blur(image[0], 1.0)


# --- noise, clip, quantise, degrade -------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [15.0, 50.0])
def test_noise_has_the_requested_std_and_zero_mean(sigma: float) -> None:
    clean = torch.full((4, 3, 128, 128), 0.5, dtype=torch.float64)
    residual = add_gaussian_noise(clean, sigma, generator=_generator(4)) - clean
    n = residual.numel()
    expected_std = sigma / 255.0
    assert abs(residual.std().item() / expected_std - 1.0) < 0.015  # standard error of the std is ~0.16%
    assert abs(residual.mean().item()) < 5 * expected_std / n**0.5


def test_noise_per_sample_sigma_and_sigma_zero() -> None:
    clean = torch.full((3, 3, 96, 96), 0.5)
    sigma = torch.tensor([0.0, 10.0, 40.0])
    noisy = add_gaussian_noise(clean, sigma, generator=_generator(5))
    assert torch.equal(noisy[0], clean[0])
    for i in (1, 2):
        std = (noisy[i] - clean[i]).std().item()
        assert abs(std / (sigma[i].item() / 255.0) - 1.0) < 0.03
    assert torch.equal(add_gaussian_noise(clean, 0.0, generator=_generator(5)), clean)


def test_noise_is_reproducible_from_the_generator() -> None:
    clean = torch.rand(2, 3, 16, 16, generator=_generator(6))
    first = add_gaussian_noise(clean, 25.0, generator=_generator(7))
    again = add_gaussian_noise(clean, 25.0, generator=_generator(7))
    other = add_gaussian_noise(clean, 25.0, generator=_generator(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_clip_and_quantize() -> None:
    x = torch.linspace(-0.2, 1.2, 1001)
    assert clip(x).min() == 0 and clip(x).max() == 1
    q = quantize(x)
    assert q.min() >= 0 and q.max() <= 1
    steps = q * 255
    torch.testing.assert_close(steps, steps.round(), rtol=0, atol=1e-4)
    assert torch.all((q - clip(x)).abs() <= 0.5 / 255 + 1e-7)
    assert quantize(torch.tensor([0.5])).item() == pytest.approx(128 / 255)


def test_degrade_is_blur_then_noise_then_clip_then_quantize() -> None:
    gt = torch.rand(3, 3, 24, 24, generator=_generator(9))
    blur = torch.tensor([0.0, 1.5, 3.0])
    noise = torch.tensor([20.0, 0.0, 35.0])
    lq = degrade(gt, blur, noise, generator=_generator(10))
    manual = quantize(clip(add_gaussian_noise(gaussian_blur(gt, blur), noise, generator=_generator(10))))
    assert torch.equal(lq, manual)
    swapped = quantize(clip(gaussian_blur(add_gaussian_noise(gt, noise, generator=_generator(10)), blur)))
    assert not torch.equal(lq, swapped)
    unquantized = degrade(gt, blur, noise, generator=_generator(10), quantize=False)
    assert torch.equal(unquantized, clip(add_gaussian_noise(gaussian_blur(gt, blur), noise, _generator(10))))
    assert not torch.equal(unquantized, lq)


def test_degrade_with_jpeg_per_sample_quality() -> None:
    gt = torch.rand(2, 3, 32, 32, generator=_generator(11))
    plain = degrade(gt, 1.0, 5.0, generator=_generator(12))
    compressed = degrade(gt, 1.0, 5.0, generator=_generator(12), jpeg_quality=torch.tensor([0, 40]))
    assert torch.equal(compressed[0], plain[0])
    assert not torch.equal(compressed[1], plain[1])
    assert (compressed[1] - plain[1]).abs().mean() < 0.1
    steps = compressed * 255
    torch.testing.assert_close(steps, steps.round(), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="jpeg quality 101"):
        degrade(gt, 1.0, 5.0, generator=_generator(12), jpeg_quality=101)


# --- level sampling and seeds --------------------------------------------------------------------------------------


def test_sampler_is_reproducible_from_the_seed() -> None:
    sampler = LevelSampler(beta_a=0.5)
    first = sampler.sample(64, _generator(13))
    again = sampler.sample(64, _generator(13))
    other = sampler.sample(64, _generator(14))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[1], other[1])
    assert first[0].shape == (64,) and first[0].dtype == torch.float32


@pytest.mark.parametrize(("p_single", "p_blur"), [(0.5, 0.5), (0.3, 0.7)])
def test_sampler_group_frequencies(p_single: float, p_blur: float) -> None:
    # Beta(5, 1) practically never gives label 0, so a zero level means the factor is inactive.
    sampler = LevelSampler(p_single=p_single, p_blur_given_single=p_blur, beta_a=5.0)
    blur, noise = sampler.sample(20_000, _generator(15))
    both = ((blur > 0) & (noise > 0)).float().mean().item()
    blur_only = (noise == 0).float().mean().item()
    noise_only = (blur == 0).float().mean().item()
    assert ((blur == 0) & (noise == 0)).sum() == 0
    assert both == pytest.approx(1 - p_single, abs=0.015)
    assert blur_only == pytest.approx(p_single * p_blur, abs=0.015)
    assert noise_only == pytest.approx(p_single * (1 - p_blur), abs=0.015)


def test_sampler_levels_are_multiples_of_the_step_within_range() -> None:
    blur, noise = LevelSampler().sample(5_000, _generator(16))
    for levels, step, maximum in ((blur, 0.1, 4.0), (noise, 1.0, 50.0)):
        labels = levels.double() / step
        torch.testing.assert_close(labels, labels.round(), rtol=0, atol=1e-4)
        assert levels.min() >= 0 and levels.max() <= maximum
        assert levels.max() == pytest.approx(maximum)  # the top label is reachable


@pytest.mark.parametrize(
    ("beta_a", "beta_b", "mean"), [(0.5, 1.0, 1 / 3), (1.0, 1.0, 1 / 2), (2.0, 3.0, 2 / 5)]
)
def test_sampler_label_means_follow_the_beta_distribution(beta_a: float, beta_b: float, mean: float) -> None:
    sampler = LevelSampler(p_single=0.0, beta_a=beta_a, beta_b=beta_b)
    blur, noise = sampler.sample(20_000, _generator(17))
    assert (blur.double() / 0.1).round().mean().item() == pytest.approx(40 * mean, abs=0.4)
    assert noise.double().mean().item() == pytest.approx(50 * mean, abs=0.5)


@pytest.mark.parametrize(("a", "b"), [(0.5, 1.0), (2.0, 3.0), (0.3, 0.7)])
def test_beta_and_gamma_samples_match_scipy(a: float, b: float) -> None:
    samples = sample_beta(a, b, 5_000, _generator(18)).numpy()
    assert stats.kstest(samples, stats.beta(a, b).cdf).pvalue > 1e-3
    gamma = sample_gamma(a, 5_000, _generator(19)).numpy()
    assert stats.kstest(gamma, stats.gamma(a).cdf).pvalue > 1e-3


def test_sampler_fixed_levels() -> None:
    sampler = LevelSampler(fixed=[2, 30])
    blur, noise = sampler.sample(5, _generator(20))
    assert torch.equal(blur, torch.full((5,), 2.0)) and torch.equal(noise, torch.full((5,), 30.0))
    with pytest.raises(ValueError, match="noise level 60"):
        LevelSampler(fixed=(2, 60))


def test_sampler_uses_no_global_random_state() -> None:
    sampler = LevelSampler(beta_a=0.5)
    torch.manual_seed(0)
    first = sampler.sample(256, _generator(21))
    torch.manual_seed(1)
    torch_state = torch.get_rng_state()
    python_state = random.getstate()
    numpy_state = np.random.get_state()[1].copy()
    second = sampler.sample(256, _generator(21))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == python_state
    assert np.array_equal(np.random.get_state()[1], numpy_state)


def test_sampler_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="p_single"):
        LevelSampler(p_single=1.5)
    with pytest.raises(ValueError, match="blur_step"):
        LevelSampler(blur_step=0.3)
    with pytest.raises(ValueError, match="beta_a"):
        LevelSampler(beta_a=0.0)
    with pytest.raises(TypeError, match="Generator"):
        LevelSampler().sample(4, None)  # type: ignore[arg-type]


def test_seed_for_is_stable_across_processes(fresh_processes: list[dict]) -> None:
    first, second = fresh_processes
    assert first["seed"] == second["seed"] == seed_for(1, 2, "x")
    assert 0 <= seed_for(1, 2, "x") < 2**63


def test_seed_for_separates_different_parts() -> None:
    seeds = {seed_for(1, 2, "x"), seed_for(1, 2, "y"), seed_for(1, 3, "x"), seed_for(2, 1, "x")}
    seeds |= {seed_for("1", 2, "x"), seed_for(12, "x"), seed_for(1, 2), seed_for()}
    assert len(seeds) == 8
    with pytest.raises(TypeError, match="ints or strings"):
        seed_for(1.5)
    a = torch.rand(4, generator=make_generator(7, 100, 0))
    b = torch.rand(4, generator=make_generator(7, 100, 0))
    c = torch.rand(4, generator=make_generator(7, 100, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- codec ---------------------------------------------------------------------------------------------------------


def test_codec_encodes_the_paper_mapping_and_round_trips() -> None:
    codec = LevelCodec.default()
    assert codec.cond_dim == 2
    assert torch.equal(codec.encode((4, 50)), torch.tensor([[1.0, 1.0]]))
    levels = torch.tensor([[0.0, 0.0], [2.0, 30.0], [4.0, 50.0], [1.3, 7.0]])
    z = codec.encode(levels)
    torch.testing.assert_close(z, levels / torch.tensor([4.0, 50.0]))
    torch.testing.assert_close(codec.decode(z), levels)
    mapped = codec.encode({"blur": torch.tensor([2.0, 1.3]), "noise": 30})
    torch.testing.assert_close(mapped, torch.tensor([[0.5, 0.6], [0.325, 0.6]]))
    torch.testing.assert_close(codec.encode({"noise": 25}), torch.tensor([[0.0, 0.5]]))
    torch.testing.assert_close(
        codec.levels_to_z(torch.tensor([4.0, 0.0]), torch.tensor([0.0, 50.0])), torch.eye(2)
    )


def test_codec_dict_round_trip_is_json_serialisable() -> None:
    codec = LevelCodec(names=("blur", "noise", "jpeg"), max_levels=(4.0, 50.0, 92.0))
    restored = LevelCodec.from_dict(json.loads(json.dumps(codec.to_dict())))
    assert restored == codec and restored.cond_dim == 3
    assert LevelCodec.from_dict(LevelCodec().to_dict()) == LevelCodec()
    with pytest.raises(ValueError, match="max_levels"):
        LevelCodec.from_dict({"names": ["blur"]})
    with pytest.raises(ValueError, match="max_levels has 1 values"):
        LevelCodec.from_dict({"names": ["blur", "noise"], "max_levels": [4.0]})
    with pytest.raises(ValueError, match="> 0"):
        LevelCodec.from_dict({"names": ["blur"], "max_levels": [-1]})


def test_codec_rejects_out_of_range_values_naming_the_factor() -> None:
    codec = LevelCodec()
    with pytest.raises(ValueError, match=r"noise level 60 is outside 0\.\.50 \(sigma on the 0-255 scale\)"):
        codec.encode({"blur": 2.0, "noise": 60})
    with pytest.raises(ValueError, match=r"blur level -1 is outside 0\.\.4"):
        codec.encode(torch.tensor([[-1.0, 10.0]]))
    with pytest.raises(ValueError, match=r"blur level nan"):
        codec.encode((float("nan"), 10.0))
    with pytest.raises(ValueError, match=r"noise z 1\.2 is outside 0\.\.1.*0\.\.50"):
        codec.decode(torch.tensor([0.5, 1.2]))
    with pytest.raises(ValueError, match="unknown degradation factor"):
        codec.encode({"blurr": 1.0})
    # Round-off at a range end is tolerated and clamped.
    assert codec.encode((4.0 + 1e-7, 0.0)).max().item() == 1.0


# --- evaluation grid -----------------------------------------------------------------------------------------------


def test_setting_names_round_trip() -> None:
    assert setting_name(2, 30) == "b2_n30"
    assert setting_name(0, 50.0) == "b0_n50"
    assert setting_name(1.5, 25) == "b1.5_n25"
    names = [setting_name(b, n) for b, n in PAPER_SETTINGS]
    assert len(set(names)) == len(PAPER_SETTINGS) == 10
    assert [parse_setting(name) for name in names] == [(float(b), float(n)) for b, n in PAPER_SETTINGS]
    with pytest.raises(ValueError, match="b<blur sigma>_n<noise sigma>"):
        parse_setting("blur2_noise30")


def test_degrade_fixed_is_reproducible_and_keyed_by_image() -> None:
    gt = _gt_pattern()
    first = degrade_fixed(gt, 2, 30, "img-1")
    assert first.shape == gt.shape and first.dtype == torch.float32
    assert torch.equal(first, degrade_fixed(gt, 2, 30, "img-1"))
    assert torch.equal(first[None], degrade_fixed(gt[None], 2, 30, "img-1"))
    assert not torch.equal(first, degrade_fixed(gt, 2, 30, "img-2"))
    assert not torch.equal(first, degrade_fixed(gt, 2, 30, "img-1", seed=1))


def test_degrade_fixed_equals_degrade_with_the_documented_generator() -> None:
    gt = _gt_pattern()
    generator = torch.Generator().manual_seed(seed_for("eval", 0, "img-1", "b2_n30"))
    expected = degrade(gt.double()[None], 2.0, 30.0, generator=generator).float()[0]
    assert torch.equal(degrade_fixed(gt, 2, 30, "img-1"), expected)


def test_degrade_fixed_is_identical_across_processes(fresh_processes: list[dict]) -> None:
    lq = degrade_fixed(_gt_pattern(), 2, 30, "img-1")
    checksum = hashlib.sha256(lq.numpy().tobytes()).hexdigest()
    assert fresh_processes[0]["checksum"] == fresh_processes[1]["checksum"] == checksum


def test_importing_degradations_pulls_in_no_training_framework(fresh_processes: list[dict]) -> None:
    assert all(result["heavy_modules"] == [] for result in fresh_processes)


def test_codec_coerce_accepts_a_codec_its_dict_or_nothing():
    codec = LevelCodec(max_levels=(2.0, 25.0))
    assert LevelCodec.coerce(codec) is codec
    assert LevelCodec.coerce(codec.to_dict()) == codec
    assert LevelCodec.coerce(None) == LevelCodec()
    with pytest.raises(ValueError, match="names and max_levels"):
        LevelCodec.coerce({"names": ["blur"]})


def test_blur_goes_through_kornia_in_one_call_per_batch(monkeypatch) -> None:
    import kornia.filters

    calls = []
    real = kornia.filters.filter2d_separable

    def counting(x, *args, **kwargs):
        calls.append(tuple(x.shape))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(kornia.filters, "filter2d_separable", counting)
    x = torch.rand(4, 3, 16, 16)
    out = gaussian_blur(x, torch.tensor([0.0, 0.5, 2.0, 4.0]))
    assert calls == [(4, 3, 16, 16)]  # every sample's own kernel, in one call
    assert torch.equal(out[0], x[0])
