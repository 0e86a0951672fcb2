"""The GPU measurements in one command (a few minutes): how fast both stages train on a CUDA device and how fast a
slider answers.

Prints, for the paper's training shape (batch 16, patch 64, the full-width CUnet, the GFM discriminator and a
VGG19 perceptual term):

* iterations per second of stage 1 and stage 2 through Lightning with each speed option (float32; bf16-mixed;
  bf16-mixed + channels_last; bf16-mixed + channels_last + torch.compile), the fastest named;
* the share of a stage-1 iteration spent degrading the batch on the device;
* the peak GPU memory of each;
* slider latency (a new noise level, a new alpha) at 512x512 and 2048x2048;
* with several visible GPUs, the DDP scaling of stage 1 (throughput on all GPUs against one).

Usage: python benchmarks/gpu.py [--iterations 30] [--rounds 3] [--out gpu.json]
(the VGG19 is random-weight here: its cost is what is measured, not its features).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_all import WIDTHS, compose, lightning_iteration_times
from timing import interleaved

from cugan_lightning.checkpoint import describe_generator, save_generator_checkpoint
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.dni import DNIBlender
from cugan_lightning.inference import Restorer
from cugan_lightning.networks import CUnet

OPTIONS = {
    "float32": ["trainer.precision=32-true"],
    "bf16-mixed": ["trainer.precision=bf16-mixed"],
    "bf16-mixed + channels_last": ["trainer.precision=bf16-mixed", "model.channels_last=true"],
    "bf16-mixed + channels_last + compile": [
        "trainer.precision=bf16-mixed",
        "model.channels_last=true",
        "model.compile=true",
    ],
}


SMOKE = False  # --smoke-cpu: the script's own logic on the CPU with tiny sizes (its test); no GPU numbers


def device() -> torch.device:
    return torch.device("cpu" if SMOKE else "cuda")


def width() -> tuple[int, ...]:
    return (4, 8, 16) if SMOKE else WIDTHS["full"]


def common(batch: int, patch: int) -> list[str]:
    return [
        "trainer=cpu" if SMOKE else "trainer=gpu",
        "trainer.devices=1",
        f"model.net_g.channels=[{','.join(map(str, width()))}]",
        f"data.batch_size={batch}",
        f"data.patch_size={patch}",
        f"data.num_workers={0 if SMOKE else 4}",
        "data.batches_per_epoch=100000",
        "logger=csv",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_model_summary=false",
        "trainer.enable_progress_bar=false",
        "callbacks.rich_progress_bar=null",
        "model.log_figures=false",
    ]


def stage_overrides(stage: str, start: Path, batch: int, patch: int) -> list[str]:
    if stage == "stage 1":
        return common(batch, patch)
    return [
        *common(batch, patch), "model=cugan", f"model.net_g.channels=[{','.join(map(str, width()))}]",
        f"init.ckpt={start}", "model.perceptual.weights=null",
        "model.val_metrics=[]", "callbacks=gan", "callbacks.model_checkpoint=null",
    ]  # fmt: skip


def training(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> float:
    start = save_generator_checkpoint(work / "stage1.ckpt", CUnet(channels=width()), LevelCodec())
    stage1_best = 0.0
    for stage in ("stage 1", "stage 2"):
        best = None
        for name, options in OPTIONS.items():
            if not SMOKE:
                torch.cuda.reset_peak_memory_stats()
            times: list[float] = []
            try:
                for round_ in range(args.rounds):
                    n = args.iterations + 3
                    cfg = compose(
                        [*stage_overrides(stage, start, args.batch, args.patch), *options, f"iterations={n}"],
                        work / f"{stage}-{name}-{round_}".replace(" ", "_"),
                    )
                    t, _, _ = lightning_iteration_times(cfg, n)
                    times += t[3:]
            except Exception as err:  # noqa: BLE001 - an option that fails is reported, not fatal
                print(f"  {stage}, {name}: failed ({type(err).__name__}: {str(err)[:120]})", flush=True)
                results.setdefault(stage, {})[name] = {"error": f"{type(err).__name__}: {err}"}
                continue
            seconds = statistics.median(times)
            peak = 0.0 if SMOKE else torch.cuda.max_memory_allocated() / 2**30
            results.setdefault(stage, {})[name] = {"it_per_s": 1 / seconds, "peak_gib": peak}
            print(f"  {stage}, {name}: {1 / seconds:.2f} it/s, peak memory {peak:.2f} GiB", flush=True)
            if best is None or seconds < best[1]:
                best = (name, seconds)
        if best is not None:
            results[stage]["fastest"] = best[0]
            if stage == "stage 1":
                stage1_best = best[1]
    return stage1_best


def degradation_share(args: argparse.Namespace, stage1_seconds: float, results: dict[str, Any]) -> None:
    from cugan_lightning.data import RestorationDataModule

    dm = RestorationDataModule(patch_size=args.patch, batch_size=args.batch, num_workers=0)
    gt = torch.rand(args.batch, 3, args.patch, args.patch, device=device())
    t = interleaved(
        {"degrade": lambda: dm.degrade_train_batch(gt, 0)}, calls=20, rounds=args.rounds, device=device()
    )
    results["degradation"] = {
        "ms": t["degrade"] * 1e3,
        "share_of_stage1_iteration": t["degrade"] / stage1_seconds,
    }
    print(
        f"  degradation {t['degrade'] * 1e3:.2f} ms = {100 * t['degrade'] / stage1_seconds:.2f}% of an iteration"
    )


def slider_times(restorer: Restorer, codec: LevelCodec, x: torch.Tensor, counter: Any, rounds: int) -> dict:
    z = codec.levels_to_z(1.0, 25.0)
    return interleaved(
        {
            "same setting": lambda: restorer.restore_tensor(x, z, 0.5),
            "noise slider": lambda: restorer.restore_tensor(
                x, codec.levels_to_z(1.0, 10 + next(counter) * 1e-4), 0.5
            ),
            "alpha slider": lambda: restorer.restore_tensor(x, z, 0.5 - next(counter) * 1e-6),
        },
        calls=1,
        rounds=max(3, rounds),
        device=x.device,
    )


def sliders(args: argparse.Namespace, results: dict[str, Any]) -> None:
    codec = LevelCodec()
    nets = [CUnet(channels=width()).eval() for _ in range(2)]
    blender = DNIBlender(
        nets[0].state_dict(),
        nets[1].state_dict(),
        describe_generator("cunet", nets[0], codec),
        device=device(),
    )
    restorer = Restorer(blender.build(1.0, device()), codec, blender=blender, device=device())
    counter = iter(range(1, 10**9))
    for size in (64, 128) if SMOKE else (512, 2048):
        times = slider_times(
            restorer, codec, torch.rand(1, 3, size, size, device=device()), counter, args.rounds
        )
        results[f"slider_{size}"] = {k: v * 1e3 for k, v in times.items()}
        print("  " + ", ".join(f"{size}x{size} {k}: {v * 1e3:.1f} ms" for k, v in times.items()), flush=True)


class IterationClock:
    """A Lightning callback (``+callbacks.clock._target_=gpu.IterationClock``) that writes rank 0's median
    seconds per iteration to ``path`` when training ends; used for the DDP scaling runs."""

    def __new__(cls, path: str):  # noqa: ANN204 - built lazily so that importing this file needs no Lightning
        from lightning.pytorch.callbacks import Callback

        class Clock(Callback):
            def __init__(self) -> None:
                self.ends: list[float] = []

            def on_train_batch_end(self, trainer, *a) -> None:  # noqa: ANN001
                torch.cuda.synchronize()
                self.ends.append(time.perf_counter())

            def on_train_end(self, trainer, *a) -> None:  # noqa: ANN001
                if trainer.global_rank == 0:
                    Path(path).write_text(json.dumps({"seconds": float(np.median(np.diff(self.ends)[3:]))}))

        return Clock()


def ddp_scaling(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    count = 0 if SMOKE else torch.cuda.device_count()
    if count < 2:
        results["ddp"] = "one GPU visible: no scaling to measure"
        print("  one GPU visible: no DDP scaling to measure")
        return
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    seconds = {}
    for devices in (1, count):
        out = work / f"ddp{devices}.json"
        command = [
            sys.executable, "-m", "cugan_lightning", *common(args.batch, args.patch), "trainer=ddp",
            f"trainer.devices={devices}", "trainer.precision=bf16-mixed", f"iterations={args.iterations + 5}",
            "+callbacks.clock._target_=gpu.IterationClock", f"+callbacks.clock.path={out}",
            f"hydra.run.dir={work / f'ddp{devices}'}",
        ]  # fmt: skip
        command = [c for c in command if c not in ("trainer=gpu", "trainer.devices=1")]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        if proc.returncode != 0:
            print(f"  DDP on {devices} GPU(s) failed: {proc.stderr.strip().splitlines()[-1:]}")
            results["ddp"] = {"error": proc.stderr[-2000:]}
            return
        seconds[devices] = json.loads(out.read_text())["seconds"]
    throughput = {d: d * args.batch / s for d, s in seconds.items()}
    results["ddp"] = {
        "patches_per_s": throughput,
        "scaling": throughput[count] / throughput[1],
        "gpus": count,
    }
    print(f"  DDP: {throughput[1]:.0f} patches/s on 1 GPU, {throughput[count]:.0f} on {count} "
          f"({throughput[count] / throughput[1]:.2f}x, ideal {count}x)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30, help="timed iterations per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--smoke-cpu", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global SMOKE
    SMOKE = args.smoke_cpu
    if SMOKE:
        args.iterations, args.rounds, args.batch, args.patch = 4, 1, 2, 32
        OPTIONS.pop("bf16-mixed + channels_last + compile")  # compiling takes minutes on a CPU
    elif not torch.cuda.is_available():
        print("error: benchmarks/gpu.py needs a CUDA device; torch sees none here", file=sys.stderr)
        return 2
    for name in ("lightning", "lightning.pytorch", "cugan_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # but a compile option that fell back to eager says so: its row then measures eager, not compiled, code
    logging.getLogger("cugan_lightning.modules.speed").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.backends.cudnn.benchmark = True
    results: dict[str, Any] = {
        "gpu": "CPU (smoke run)" if SMOKE else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "batch": args.batch,
        "patch": args.patch,
    }
    print(f"{results['gpu']}, torch {torch.__version__}, batch {args.batch}, patch {args.patch}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("training (iterations per second through Lightning):", flush=True)
        best = training(args, work, results)
        if best:
            degradation_share(args, best, results)
        print("sliders:", flush=True)
        sliders(args, results)
        print("DDP:", flush=True)
        ddp_scaling(args, work, results)
    results["seconds"] = time.perf_counter() - start
    print(f"done in {results['seconds']:.0f} s")
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
