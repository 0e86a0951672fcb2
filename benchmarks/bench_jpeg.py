"""The training device's JPEG against libjpeg (Pillow), and kornia's differentiable codec against both.

For each quality: the PSNR between each codec's output and libjpeg's (higher: closer to a real JPEG file), and
the PSNR of libjpeg's output against the original (how strong the compression is), on central 256x256 crops of
the embedded validation photographs. Then the time per training batch (16 x 3 x 64 x 64, a quality per
sample) of the device codec, of libjpeg one sample at a time on the CPU (torchvision's libjpeg-turbo, as the
evaluation inputs are made) and of kornia's codec, medians of interleaved rounds. Usage:
    python benchmarks/bench_jpeg.py [--device cpu|cuda] [--batch 16] [--patch 64] [--rounds 9]
"""

from __future__ import annotations

import argparse
import io
import math
import random
import statistics
import time

import numpy as np
import torch
from PIL import Image

from cugan_lightning.data import load_embedded_image
from cugan_lightning.degradations import jpeg_compress, jpeg_device

QUALITIES = (10, 20, 30, 50, 75, 90, 95)


def libjpeg(array: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def to_array(x: torch.Tensor) -> np.ndarray:
    return (x[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def kornia_jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    from kornia.enhance import jpeg_codec_differentiable

    return jpeg_codec_differentiable(x, quality.to(x.dtype))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    device = torch.device(args.device)

    crops = [load_embedded_image(name)[:256, :256] for name in ("chelsea", "coffee")]
    print(
        f"{'quality':>7}{'device vs libjpeg dB':>22}{'kornia vs libjpeg dB':>22}{'libjpeg vs original dB':>24}"
    )
    for quality in QUALITIES:
        ours, theirs, strength = [], [], []
        for crop in crops:
            reference = libjpeg(crop, quality)
            x = torch.from_numpy(crop).permute(2, 0, 1)[None].float().div(255).to(device)
            q = torch.tensor([quality], device=device)
            ours.append(psnr(to_array(jpeg_device(x, q)), reference))
            theirs.append(psnr(to_array(kornia_jpeg(x, q)), reference))
            strength.append(psnr(reference, crop))
        print(f"{quality:>7}{np.mean(ours):>22.2f}{np.mean(theirs):>22.2f}{np.mean(strength):>24.2f}")

    generator = torch.Generator().manual_seed(0)
    x = (
        torch.rand(args.batch, 3, args.patch, args.patch, generator=generator)
        .mul(255)
        .round()
        .div(255)
        .to(device)
    )
    quality = torch.randint(10, 101, (args.batch,), generator=generator).to(device)
    candidates = {
        "device codec (ours)": lambda: jpeg_device(x, quality),
        "libjpeg per sample (CPU)": lambda: jpeg_compress(x, quality.cpu()),
        "kornia's differentiable codec": lambda: kornia_jpeg(x, quality),
    }

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for fn in candidates.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    order = random.Random(0)
    for _ in range(args.rounds):
        names = list(candidates)
        order.shuffle(names)
        for name in names:
            sync()
            start = time.perf_counter()
            for _ in range(5):
                candidates[name]()
            sync()
            times[name].append((time.perf_counter() - start) / 5)
    print(f"\nbatch {args.batch} x 3 x {args.patch} x {args.patch} on {device}, a quality per sample")
    for name, values in times.items():
        print(f"{name:<32}{statistics.median(values) * 1e3:>10.2f} ms")


if __name__ == "__main__":
    main()
