"""Where the evaluation app's time goes: network passes against building the inputs and scoring them.

A CBSD68-sized run (68 synthetic 321x481 photographs by default, the paper's ten settings, two models) through
the app's own loop (:func:`cugan_lightning.evaluation.runner.evaluate`): each degraded input is made once per
image and setting and reused by both models, batches run on the device. Prints the seconds in each part and the
share of network passes. Usage:
    python benchmarks/bench_evaluate.py [--images 68] [--size 321x481] [--channels 16 32 64] [--device cpu|cuda]
        [--batch-size 4] [--metrics psnr psnr_y ssim]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.degradations import PAPER_SETTINGS, LevelCodec
from cugan_lightning.evaluation.metrics import ImageScorer
from cugan_lightning.evaluation.models import load_models, parse_models
from cugan_lightning.evaluation.runner import evaluate
from cugan_lightning.inference import resolve_device
from cugan_lightning.networks import CUnet


def synthetic_photographs(count: int, height: int, width: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Smooth gradients with edges and texture: cheap stand-ins for natural photographs of one size."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    images = []
    for i in range(count):
        base = np.stack(
            [np.sin(6 * xx * (c + 1) + rng.uniform(0, 6)) * np.cos(5 * yy + c) for c in range(3)], axis=2
        )
        base += (xx > rng.uniform(0.2, 0.8))[..., None] * 0.8 + rng.normal(0, 0.05, (height, width, 3))
        array = np.clip((base - base.min()) / (base.max() - base.min()) * 255, 0, 255).astype(np.uint8)
        images.append((f"synthetic_{i:03d}", array))
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=68)
    parser.add_argument("--size", default="321x481")
    parser.add_argument(
        "--channels", type=int, nargs="+", default=[16, 32, 64], help="CUnet widths per scale"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--metrics", nargs="+", default=["psnr", "psnr_y", "ssim"])
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, seed in (("mse", 0), ("gan", 1)):
            torch.manual_seed(seed)
            net = CUnet(channels=args.channels)
            paths[name] = str(
                save_generator_checkpoint(Path(folder) / f"{name}.ckpt", net, LevelCodec(), kind="cunet")
            )
        models = load_models(parse_models(paths), device)
    images = synthetic_photographs(args.images, height, width)
    scorer = ImageScorer(args.metrics)
    result = evaluate(models, images, list(PAPER_SETTINGS), scorer, device=device, batch_size=args.batch_size)
    other = result.total_seconds - result.network_seconds - result.degrade_seconds - result.score_seconds
    print(
        f"{args.images} images of {width}x{height}, {len(PAPER_SETTINGS)} settings, 2 models "
        f"(CUnet {args.channels}), {device}, batch {args.batch_size}, metrics {args.metrics}"
    )
    print(f"{'part':<28}{'seconds':>10}{'share':>8}")
    for part, seconds in (
        ("network passes", result.network_seconds),
        ("degraded inputs (once each)", result.degrade_seconds),
        ("scoring", result.score_seconds),
        ("other", other),
        ("total", result.total_seconds),
    ):
        print(f"{part:<28}{seconds:>10.1f}{seconds / result.total_seconds:>8.1%}")
    print(f"network passes: {result.network_passes}")


if __name__ == "__main__":
    main()
