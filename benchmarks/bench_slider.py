"""Cost of a slider move in interactive modulation, relative to one base-network pass.

Compares what a :class:`~cugan_lightning.inference.Restorer` does for each slider (a blur / noise move evaluates C_G
and runs the network; an alpha move re-blends in place, evaluates C_G and runs the network) with the naive way of
moving alpha (interpolate two checkpoint files into a new network, then run it). Prints ratios measured in one run
on one machine. Usage:
    python benchmarks/bench_slider.py [--device cpu|cuda] [--size 128] [--repeat 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from cugan_lightning.checkpoint import describe_generator, save_generator_checkpoint
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.dni import DNIBlender, blend_state_dicts, interpolate
from cugan_lightning.inference import Restorer
from cugan_lightning.networks import CUnet


def timed(fn: Callable[[int], object], repeat: int, device: torch.device) -> float:
    """Mean seconds per call of ``fn(i)``; ``i`` lets each call ask for a new slider value."""
    fn(-1)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(repeat):
        fn(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat


def random_net(seed: int) -> CUnet:
    torch.manual_seed(seed)
    net = CUnet()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=128, help="image height and width")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, help="CPU threads (1 is steadier on a shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    codec = LevelCodec()
    mse, gan = random_net(0), random_net(1)
    blender = DNIBlender(
        mse.state_dict(), gan.state_dict(), describe_generator("cunet", mse, codec), device=device
    )
    restorer = Restorer(blender.build(1.0, device), codec, blender=blender, device=device)
    x = torch.rand(1, 3, args.size, args.size, device=device)

    def z_of(noise: float) -> torch.Tensor:
        return codec.levels_to_z(1.0, noise)

    z_fixed = z_of(25.0)
    rows = {
        "same setting (network only)": lambda i: restorer.restore_tensor(x, z_fixed, 0.5),
        "noise slider (C_G + network)": lambda i: restorer.restore_tensor(x, z_of(10 + (i + 2) * 0.01), 0.5),
        "alpha slider (blend + C_G + network)": lambda i: restorer.restore_tensor(
            x, z_fixed, 0.3 + (i + 2) * 1e-3
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            save_generator_checkpoint(Path(tmp) / f"{n}.ckpt", m, codec) for n, m in (("m", mse), ("g", gan))
        ]

        def reload(i: int) -> None:
            net, _ = interpolate(paths[0], paths[1], 0.3 + (i + 2) * 1e-3, map_location=device)
            with torch.no_grad():
                net(x, z_fixed.to(device))

        def rebuild(i: int) -> None:
            net = CUnet(**mse.config).to(device).eval()
            net.load_state_dict(blend_state_dicts(gan.state_dict(), mse.state_dict(), 0.3 + (i + 2) * 1e-3))
            with torch.no_grad():
                net(x, z_fixed.to(device))

        rows["alpha, naive: new state dict + new network"] = rebuild
        rows["alpha, naive: read both files + interpolate"] = reload
        times = {name: timed(fn, args.repeat, device) for name, fn in rows.items()}

    base = times["same setting (network only)"]
    print(f"CUnet {args.size}x{args.size} on {device}, mean of {args.repeat}")
    print(f"{'slider move':<46} {'ms':>9} {'x network':>10}")
    for name, seconds in times.items():
        print(f"{name:<46} {seconds * 1e3:9.1f} {seconds / base:10.2f}")


if __name__ == "__main__":
    main()
