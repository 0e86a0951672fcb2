"""Degradation speed: the blur through kornia against the hand-written separable blur it replaced and a 21x21
grouped 2-D convolution, the whole training-batch degradation (levels, blur, noise, quantisation, and JPEG with a
three-factor codec) against the generator's training step.

Rounds are interleaved (every candidate once per round) and the medians compared, all in one run on one
machine. Usage:
    python benchmarks/bench_degradations.py [--device cpu|cuda] [--batch 16] [--patch 64] [--rounds 9]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from timing import degradation_modules, interleaved

from cugan_lightning.degradations import (
    gaussian_blur,
    gaussian_kernel1d,
    gaussian_kernel2d,
)
from cugan_lightning.degradations.blur import per_sample
from cugan_lightning.networks import CUnet


def blur_2d_reference(x: torch.Tensor, sigma: torch.Tensor, size: int = 21) -> torch.Tensor:
    """Per-sample blur with one full 2-D kernel per sample in a grouped convolution (the common approach)."""
    b, c, h, w = x.shape
    kernel = gaussian_kernel2d(sigma, size).to(x)  # (B, k, k)
    weight = kernel.repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C, 1, k, k)
    padded = F.pad(x.reshape(1, b * c, h, w), [size // 2] * 4, mode="replicate")
    return F.conv2d(padded, weight, groups=b * c).reshape(b, c, h, w)


def blur_separable_previous(x: torch.Tensor, sigma: torch.Tensor, size: int = 21) -> torch.Tensor:
    """The project's blur before it went through kornia, step for step: the per-sample sigmas, a float64 kernel,
    two grouped 1-D convolutions padded per axis, and sigma-0 samples given back."""
    b, c, h, w = x.shape
    sigma64 = per_sample(sigma, b, "blur sigma", x.device)
    kernel = gaussian_kernel1d(sigma64, size).to(x.dtype).repeat_interleave(c, dim=0)  # (B*C, size)
    pad = size // 2
    flat = x.reshape(1, b * c, h, w)
    out = F.conv2d(F.pad(flat, (pad, pad, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=b * c)
    out = F.conv2d(F.pad(out, (0, 0, pad, pad), mode="replicate"), kernel[:, None, :, None], groups=b * c)
    return torch.where((sigma64 == 0).view(b, 1, 1, 1), x, out.reshape(b, c, h, w))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, args.patch, args.patch, generator=gen).to(device)
    sigma = (torch.rand(args.batch, generator=gen) * 4).to(device)

    torch.testing.assert_close(gaussian_blur(x, sigma), blur_2d_reference(x, sigma), atol=1e-5, rtol=0)
    torch.testing.assert_close(gaussian_blur(x, sigma), blur_separable_previous(x, sigma), atol=1e-5, rtol=0)
    blurs = interleaved(
        {
            "blur through kornia (ours)": lambda: gaussian_blur(x, sigma),
            "blur, previous separable convolutions": lambda: blur_separable_previous(x, sigma),
            "blur, 21x21 grouped 2-D convolution": lambda: blur_2d_reference(x, sigma),
        },
        calls=20,
        rounds=args.rounds,
        device=device,
    )
    two, three = degradation_modules(args.batch, args.patch)
    net = CUnet().to(device)
    z = torch.rand(args.batch, 2, device=device)
    opt = torch.optim.Adam(net.parameters())

    def step() -> None:
        loss = F.mse_loss(net(x, z), x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    degradations = interleaved(
        {
            "batch degradation, blur and noise": lambda: two.degrade_train_batch(x, 0),
            "batch degradation, blur, noise and JPEG": lambda: three.degrade_train_batch(x, 0),
        },
        calls=10,
        rounds=args.rounds,
        device=device,
    )
    t_step = interleaved({"step": step}, calls=2, rounds=3, device=device)["step"]

    base = blurs["blur, previous separable convolutions"]
    print(
        f"device {device}, batch {args.batch} x 3 x {args.patch} x {args.patch}, medians of {args.rounds} rounds"
    )
    print(f"{'what':<46}{'ms':>10}{'/ previous blur':>17}")
    for name, seconds in {**blurs, **degradations}.items():
        print(f"{name:<46}{seconds * 1e3:>10.2f}{seconds / base:>17.2f}")
    print(f"{'CUnet (full size) training step':<46}{t_step * 1e3:>10.2f}{t_step / base:>17.2f}")
    for name, seconds in degradations.items():
        print(f"{name} / training step: {seconds / t_step:.4f}")


if __name__ == "__main__":
    main()
