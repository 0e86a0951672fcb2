"""Degradation speed: the separable per-sample blur against a 21x21 grouped 2-D convolution, and the whole
training-batch degradation (levels, blur, noise, quantisation) against the generator's training step.

Prints ratios measured in one run on one machine. Usage:
    python benchmarks/bench_degradations.py [--device cpu|cuda] [--batch 16] [--patch 64] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from cugan_lightning.data import RestorationDataModule
from cugan_lightning.degradations import gaussian_blur, gaussian_kernel2d
from cugan_lightning.networks import CUnet


def blur_2d_reference(x: torch.Tensor, sigma: torch.Tensor, size: int = 21) -> torch.Tensor:
    """Per-sample blur with one full 2-D kernel per sample in a grouped convolution (the common approach)."""
    b, c, h, w = x.shape
    kernel = gaussian_kernel2d(sigma, size).to(x)  # (B, k, k)
    weight = kernel.repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C, 1, k, k)
    padded = F.pad(x.reshape(1, b * c, h, w), [size // 2] * 4, mode="replicate")
    return F.conv2d(padded, weight, groups=b * c).reshape(b, c, h, w)


def timed(fn, repeat: int, device: torch.device, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time of ``repeat`` calls (after a warm-up), in seconds."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        fn()
    sync()
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        sync()
        results.append((time.perf_counter() - start) / repeat)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, args.patch, args.patch, generator=gen).to(device)
    sigma = (torch.rand(args.batch, generator=gen) * 4).to(device)

    torch.testing.assert_close(gaussian_blur(x, sigma), blur_2d_reference(x, sigma), atol=1e-5, rtol=0)
    t_sep = timed(lambda: gaussian_blur(x, sigma), args.repeat, device)
    t_2d = timed(lambda: blur_2d_reference(x, sigma), args.repeat, device)

    dm = RestorationDataModule(patch_size=args.patch, batch_size=args.batch, num_workers=0)
    t_degrade = timed(lambda: dm.degrade_train_batch(x, 0), args.repeat, device)
    net = CUnet().to(device)
    z = torch.rand(args.batch, 2, device=device)
    opt = torch.optim.Adam(net.parameters())

    def step() -> None:
        loss = F.mse_loss(net(x, z), x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_step = timed(step, max(2, args.repeat // 10), device, rounds=3)

    print(f"device {device}, batch {args.batch} x 3 x {args.patch} x {args.patch}, {args.repeat} repeats")
    print(f"{'what':<44}{'ms':>10}{'ratio':>10}")
    print(f"{'blur, separable (ours)':<44}{t_sep * 1e3:>10.2f}{1.0:>10.2f}")
    print(f"{'blur, 21x21 grouped 2-D convolution':<44}{t_2d * 1e3:>10.2f}{t_2d / t_sep:>10.2f}")
    print(f"{'whole training-batch degradation':<44}{t_degrade * 1e3:>10.2f}{t_degrade / t_sep:>10.2f}")
    print(f"{'CUnet (full size) training step':<44}{t_step * 1e3:>10.2f}{t_step / t_sep:>10.2f}")
    print(f"degradation / training step: {t_degrade / t_step:.3f}")


if __name__ == "__main__":
    main()
