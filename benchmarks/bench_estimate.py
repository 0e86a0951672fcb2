"""The learned level estimator's cost on one photo: read as the shipped file says (noise on tiles of its training
patch, blur whole: two passes) against one pass over the whole image, and the per-region map by windows of the
tile against the whole image's map, and the blur read off the edges of a noise-free photo (no network). Medians
of interleaved rounds, in one run. Usage:
    python benchmarks/bench_estimate.py [--estimator zoo:estimator-blur-noise] [--side 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from timing import interleaved

from cugan_lightning import zoo
from cugan_lightning.data import load_embedded_image
from cugan_lightning.degradations import degrade
from cugan_lightning.estimation import blur_from_edges, load_estimator


def photo(side: int, blur: float = 1.0, noise: float = 15.0) -> np.ndarray:
    """A degraded square of ``side`` pixels: the embedded astronaut (512x512) repeated, blurred and noisy."""
    reps = -(-side // 512)
    tiled = np.tile(load_embedded_image("astronaut"), (reps, reps, 1))[:side, :side]
    x = torch.from_numpy(np.ascontiguousarray(tiled)).permute(2, 0, 1)[None].float() / 255
    lq = degrade(x, blur, noise, generator=torch.Generator().manual_seed(0))
    return (lq[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", default="zoo:estimator-blur-noise")
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shipped = load_estimator(zoo.model_path(args.estimator))
    whole = copy.copy(shipped)
    whole.tile, whole.tiled = None, None
    image = photo(args.side)
    clean = photo(args.side, 2.0, 0.0).astype(np.float32) / 255
    factors = tuple(shipped.codec.names)
    times = interleaved(
        {
            "estimate, as the file reads": lambda: shipped.estimate(image),
            "estimate, whole image": lambda: whole.estimate(image),
            "map, by windows": lambda: shipped.level_maps(image, factors),
            "map, whole image": lambda: whole.level_maps(image, factors),
            "blur from the edges (blur 2)": lambda: blur_from_edges(clean),
        },
        calls=1,
        rounds=args.rounds,
        device=torch.device("cpu"),
    )
    print(
        f"{args.estimator} (tile {shipped.tile}, by tile: {shipped.tiled}), {args.side}x{args.side} photo, "
        f"{torch.get_num_threads()} threads"
    )
    for name, seconds in times.items():
        print(f"  {name:<30}{seconds:>8.2f} s")
    print(
        f"  estimate: {times['estimate, as the file reads'] / times['estimate, whole image']:.2f}x the whole "
        f"image's; map: {times['map, by windows'] / times['map, whole image']:.2f}x; the edges: "
        f"{times['blur from the edges (blur 2)'] / times['estimate, whole image']:.2f}x the whole image's estimate"
    )


if __name__ == "__main__":
    main()
