"""Every speed comparison of the project in one run, printed as one table of ratios (``make bench``).

Rows (medians of interleaved rounds; each ratio compares two things measured in this run on this machine):

1. a training iteration through Lightning (the app's own module, data module and callbacks) against a bare
   PyTorch loop doing the same work (the same batches, degradation, networks, losses and optimizer steps), for
   stage 1 and stage 2;
2. the training-batch degradation on the device against a per-image CPU pipeline (scipy's Gaussian filter,
   NumPy noise and rounding, Pillow's libjpeg), and its share of a training step;
3. the training step and a 512x512 restoration in float32 eager against channels_last, torch.compile and
   bfloat16 autocast (bf16 only where the CPU or GPU has native bfloat16; elsewhere the row says why not);
4. a slider move (new z, new alpha) against a forward pass with the condition weights already computed, and a
   restoration under a painted condition map (docs/restore.md, "Level maps") against one under a vector;
5. ONNX Runtime against PyTorch for a 512x512 restoration on the CPU;
6. the achieved GFLOP/s of a 512x512 restoration through the Restorer, float32 and the bf16 fast path, against
   the machine's own matrix-multiplication rate in the same precision (a 2048x2048 matmul).

Usage: python benchmarks/bench_all.py [--device cpu|cuda] [--width small|full] [--rounds 5] [--quick]
(``--width small`` is the CPU demo's CUnet (16/32/64 channels), ``full`` the paper's (64/128/256); the default is
small on the CPU and full on a GPU). About 2 minutes on 2 idle CPU cores (97 s on ours), longer on a busy machine.
"""

from __future__ import annotations

import argparse
import io
import logging
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from timing import degradation_modules, interleaved, synchronize

from cugan_lightning.checkpoint import describe_generator
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.dni import DNIBlender
from cugan_lightning.inference import Restorer
from cugan_lightning.inference.precision import native_bf16
from cugan_lightning.networks import CUnet

WIDTHS = {"small": (16, 32, 64), "full": (64, 128, 256)}
ROWS: list[tuple[str, str, str, str]] = []  # (section, what, value, note)


def row(section: str, what: str, value: str, note: str = "") -> None:
    ROWS.append((section, what, value, note))
    print(f"  {what}: {value}{f'  ({note})' if note else ''}", flush=True)


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in flags.splitlines() if ln.startswith("model name")), ""
    )
    isa = "avx512_bf16" if "avx512_bf16" in flags else "amx_bf16" if "amx_bf16" in flags else "avx2"
    return f"{torch.get_num_threads()} CPU threads, {model or platform.processor()} ({isa}), torch {torch.__version__}"


# ----------------------------------------------------------------------------------- 1. Lightning against bare
def compose(overrides: list[str], out: Path) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="cugan_lightning.conf", version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.paths.log_dir = str(out / "logs")
    return cfg


def lightning_iteration_times(cfg: Any, iterations: int) -> tuple[list[float], Any, Any]:
    """Seconds between consecutive training-batch ends of a real ``trainer.fit`` (validation never runs)."""
    from lightning.pytorch.callbacks import Callback

    from cugan_lightning.apps.train import build

    class Clock(Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_train_batch_end(self, trainer, *args) -> None:  # noqa: ANN001
            synchronize(trainer.lightning_module.device)
            self.ends.append(time.perf_counter())

    datamodule, module, trainer = build(cfg)
    clock = Clock()
    trainer.callbacks.append(clock)
    trainer.fit(module, datamodule=datamodule)
    return list(np.diff(clock.ends)), datamodule, module


def bare_iteration_times(datamodule: Any, module: Any, iterations: int, device: torch.device) -> list[float]:
    """The same work without Lightning: the data module's loader and degradation, the module's networks and
    losses, fresh Adam optimizers (and for stage 2 the same D-then-G update with the other network frozen)."""
    datamodule.train_batches_seen = 0
    module = module.to(device).train()
    two = hasattr(module, "net_d")
    opt_g = torch.optim.Adam(module.net_g.parameters(), lr=5e-4)
    opt_d = torch.optim.Adam(module.net_d.parameters(), lr=5e-4) if two else None
    loader = iter(datamodule.train_dataloader())
    ends = []
    for index in range(iterations):
        gt = next(loader)["gt"].to(device, non_blocking=True)
        batch = datamodule.degrade_train_batch(gt, index)
        lq, z, gt = batch["lq"], batch["z"], batch["gt"]
        out = module.net_g(lq, z)
        if not two:
            loss = module.pixel_loss(out, gt)
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
        else:
            module.net_g.requires_grad_(False)
            l_d = module.gan_loss(module.net_d(gt, z), real=True) + module.gan_loss(
                module.net_d(out.detach(), z), real=False
            )
            opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            opt_d.step()
            module.net_g.requires_grad_(True)
            module.net_d.requires_grad_(False)
            w = module.loss_weights
            l_g = w["pix"] * module.pixel_loss(out, gt) + w["gan"] * module.gan_loss(
                module.net_d(out, z), real=True, for_discriminator=False
            )
            if module.perceptual is not None:
                l_g = l_g + w["percep"] * module.perceptual(out, gt)
            opt_g.zero_grad(set_to_none=True)
            l_g.backward()
            opt_g.step()
            module.net_d.requires_grad_(True)
        synchronize(device)
        ends.append(time.perf_counter())
    return list(np.diff(ends))


def lightning_overhead(args: argparse.Namespace, device: torch.device, work: Path) -> float:
    """Section 1; returns the bare stage-1 iteration time (seconds) for the degradation share."""
    print("\n1. a training iteration: Lightning against a bare PyTorch loop", flush=True)
    channels = list(WIDTHS[args.width])
    common = [
        f"model.net_g.channels=[{','.join(map(str, channels))}]",
        f"data.batch_size={args.batch}",
        f"data.patch_size={args.patch}",
        "data.num_workers=0",
        "data.batches_per_epoch=100000",  # no validation inside the timed window
        "logger=csv",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_model_summary=false",
        f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}",
        "trainer.devices=1",
        "model.log_figures=false",
    ]
    stage1_bare = 0.0
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        from cugan_lightning.checkpoint import save_generator_checkpoint

        net = CUnet(channels=tuple(channels))
        start = save_generator_checkpoint(Path(tmp) / "stage1.ckpt", net, LevelCodec())
        stages = {
            "stage 1": [*common, "iterations={n}"],
            "stage 2": [
                *common, "model=cugan", f"model.net_g.channels=[{','.join(map(str, channels))}]",
                f"init.ckpt={start}", "model.perceptual.weights=null", "model.val_metrics=[]",
                "callbacks=gan", "callbacks.model_checkpoint=null", "iterations={n}",
            ],
        }  # fmt: skip
        for stage, overrides in stages.items():
            n = args.iterations if stage == "stage 1" else max(4, args.iterations // 3)
            lit, bare = [], []
            for round_ in range(args.rounds // 2 + 1):
                cfg = compose([o.format(n=n + 2) for o in overrides], Path(tmp) / f"{stage}-{round_}")
                times, datamodule, module = lightning_iteration_times(cfg, n + 2)
                lit += times[2:]  # the first iterations warm up
                bare += bare_iteration_times(datamodule, module, n + 3, device)[2:]
            t_lit, t_bare = statistics.median(lit), statistics.median(bare)
            if stage == "stage 1":
                stage1_bare = t_bare
            row(
                "Lightning",
                f"{stage} iteration, Lightning / bare loop",
                f"{t_lit / t_bare:.3f}",
                f"{t_lit * 1e3:.1f} ms vs {t_bare * 1e3:.1f} ms; overhead {100 * (t_lit / t_bare - 1):+.1f}%",
            )
    return stage1_bare


# --------------------------------------------------------------------------------------------- 2. degradation
def per_image_cpu_pipeline(
    gt: np.ndarray, blur: np.ndarray, noise: np.ndarray, quality: np.ndarray | None
) -> list:
    """What a per-image CPU pipeline in dataloader workers does: scipy blur, NumPy noise, rounding, libjpeg."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    out = []
    for i, image in enumerate(gt):
        x = gaussian_filter(
            image, sigma=(0, blur[i], blur[i]), mode="nearest", truncate=10 / max(blur[i], 1e-6)
        )
        x = x + rng.standard_normal(x.shape, dtype=np.float32) * (noise[i] / 255)
        x = np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
        if quality is not None and quality[i] > 0:
            buffer = io.BytesIO()
            Image.fromarray(x.transpose(1, 2, 0)).save(buffer, format="JPEG", quality=int(quality[i]))
            x = np.asarray(Image.open(buffer)).transpose(2, 0, 1)
        out.append(x)
    return out


def degradation(args: argparse.Namespace, device: torch.device, step_seconds: float) -> None:

    print("\n2. the training-batch degradation", flush=True)
    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(args.batch, 3, args.patch, args.patch, generator=gen)
    two, three = degradation_modules(args.batch, args.patch)
    blur = (torch.rand(args.batch, generator=gen) * 4).numpy()
    noise = (torch.rand(args.batch, generator=gen) * 50).numpy()
    quality = (10 + torch.rand(args.batch, generator=gen) * 90).round().numpy()
    gt_np, gt_dev = gt.numpy(), gt.to(device)
    times = interleaved(
        {
            "device, blur + noise": lambda: two.degrade_train_batch(gt_dev, 0),
            "device, blur + noise + JPEG": lambda: three.degrade_train_batch(gt_dev, 0),
            "CPU per image, blur + noise": lambda: per_image_cpu_pipeline(gt_np, blur, noise, None),
            "CPU per image, blur + noise + JPEG": lambda: per_image_cpu_pipeline(gt_np, blur, noise, quality),
        },
        calls=5,
        rounds=args.rounds,
        device=device,
    )
    for kind in ("blur + noise", "blur + noise + JPEG"):
        dev, cpu = times[f"device, {kind}"], times[f"CPU per image, {kind}"]
        row(
            "degradation",
            f"{kind}: device batch / CPU per image",
            f"{dev / cpu:.3f}",
            f"{dev * 1e3:.2f} ms vs {cpu * 1e3:.2f} ms",
        )
        row(
            "degradation",
            f"{kind}: share of a stage-1 training step",
            f"{100 * dev / step_seconds:.2f}%",
            f"step {step_seconds * 1e3:.1f} ms",
        )


# -------------------------------------------------------------------------------- 3. memory format, compile, bf16
def variants(args: argparse.Namespace, device: torch.device) -> None:
    print("\n3. float32 eager against channels_last, torch.compile and bfloat16", flush=True)
    bf16_ok, why = native_bf16(device)
    channels = WIDTHS[args.width]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, args.patch, args.patch, generator=gen).to(device)
    z = torch.rand(args.batch, 2, generator=gen).to(device)
    big = torch.rand(1, 3, args.size, args.size, generator=gen).to(device)
    zb = torch.rand(1, 2, generator=gen).to(device)

    def trainer_step(cl: bool, compiled: bool, bf16: bool) -> Callable[[], None]:
        torch.manual_seed(0)
        net = CUnet(channels=channels).to(device)
        if cl:
            net = net.to(memory_format=torch.channels_last)
        fwd = torch.compile(net) if compiled else net
        opt = torch.optim.Adam(net.parameters(), lr=5e-4)
        xi = x.contiguous(memory_format=torch.channels_last) if cl else x

        def step() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = F.mse_loss(fwd(xi, z).float(), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    def inference(cl: bool, compiled: bool, bf16: bool) -> Callable[[], None]:
        torch.manual_seed(0)
        net = CUnet(channels=channels).to(device).eval()
        if cl:
            net = net.to(memory_format=torch.channels_last)
        fwd = torch.compile(net) if compiled else net
        xi = big.contiguous(memory_format=torch.channels_last) if cl else big

        def run() -> None:
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                fwd(xi, zb)

        return run

    options = {
        "float32 eager": (False, False, False),
        "channels_last": (True, False, False),
        "torch.compile": (False, True, False),
        "channels_last + torch.compile": (True, True, False),
    }
    if bf16_ok:
        options["bf16 autocast"] = (False, False, True)
        options["bf16 autocast + channels_last"] = (True, False, True)
    for label, make, calls in (
        ("training step", trainer_step, 2),
        (f"{args.size}x{args.size} restoration", inference, 1),
    ):
        candidates = {}
        for name, flags in options.items():
            try:
                fn = make(*flags)
                tic = time.perf_counter()
                fn()  # compiles here
                synchronize(device)
                if flags[1]:
                    print(
                        f"  ({label}, {name}: first call {time.perf_counter() - tic:.0f} s, compiling)",
                        flush=True,
                    )
                candidates[name] = fn
            except Exception as err:  # noqa: BLE001 - a variant that cannot run is reported, not fatal
                row(
                    "variants",
                    f"{label}, {name} / float32 eager",
                    "n/a",
                    f"{type(err).__name__}: {str(err)[:80]}",
                )
        times = interleaved(candidates, calls=calls, rounds=args.rounds, device=device)
        base = times["float32 eager"]
        for name, seconds in times.items():
            if name != "float32 eager":
                row(
                    "variants",
                    f"{label}, {name} / float32 eager",
                    f"{seconds / base:.3f}",
                    f"{seconds * 1e3:.1f} ms vs {base * 1e3:.1f} ms",
                )
    if not bf16_ok:
        row("variants", "bf16 autocast", "skipped", why)


# ----------------------------------------------------------------------------------------------- 4. sliders
def sliders(args: argparse.Namespace, device: torch.device) -> None:
    print("\n4. a slider move against a forward pass with the condition weights ready", flush=True)
    codec = LevelCodec()
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = CUnet(channels=WIDTHS[args.width])
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.01)
        nets.append(net.eval())
    blender = DNIBlender(
        nets[0].state_dict(), nets[1].state_dict(), describe_generator("cunet", nets[0], codec), device=device
    )
    restorer = Restorer(blender.build(1.0, device), codec, blender=blender, device=device)
    x = torch.rand(1, 3, args.size, args.size, device=device)
    z_fixed = codec.levels_to_z(1.0, 25.0)
    painted = z_fixed[:, :, None, None].expand(1, 2, args.size, args.size).clone()
    painted[:, 1, :, : args.size // 2] = 0.8  # more noise on the left half
    counter = iter(range(1, 10**9))
    restorer.restore_tensor(x, z_fixed, 0.5)
    times = interleaved(
        {
            "same setting": lambda: restorer.restore_tensor(x, z_fixed, 0.5),
            "painted map": lambda: restorer.restore_tensor(x, painted.to(device), 0.5),
            "noise slider (new z)": lambda: restorer.restore_tensor(
                x, codec.levels_to_z(1.0, 10 + next(counter) * 1e-4), 0.5
            ),
            "alpha slider (new blend)": lambda: restorer.restore_tensor(
                x, z_fixed, 0.5 - next(counter) * 1e-6
            ),
        },
        calls=1,
        rounds=args.rounds,
        device=device,
    )
    base = times["same setting"]
    for name in ("noise slider (new z)", "alpha slider (new blend)"):
        row(
            "sliders",
            f"{args.size}x{args.size} {name} / forward with weights ready",
            f"{times[name] / base:.3f}",
            f"{times[name] * 1e3:.0f} ms vs {base * 1e3:.0f} ms",
        )
    row(
        "sliders",
        f"{args.size}x{args.size} restoration, condition map / vector",
        f"{times['painted map'] / base:.3f}",
        f"{times['painted map'] * 1e3:.0f} ms vs {base * 1e3:.0f} ms (the map's weights computed every call)",
    )


# ------------------------------------------------------------------------------------------------ 5. ONNX
def onnx_runtime(args: argparse.Namespace) -> None:
    print("\n5. ONNX Runtime against PyTorch on the CPU", flush=True)
    try:
        import onnxruntime as ort

        from cugan_lightning.checkpoint import export_onnx
    except ImportError as err:
        row("ONNX", "ONNX Runtime / PyTorch", "skipped", f"{err} (pip install -e '.[export]')")
        return
    codec = LevelCodec()
    torch.manual_seed(0)
    net = CUnet(channels=WIDTHS[args.width]).eval()
    from cugan_lightning.checkpoint.onnx import OnnxRestorer

    wrapper = OnnxRestorer(net).eval()
    x = torch.rand(1, 3, args.size, args.size)
    z = torch.full((1, 2), 0.5)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_onnx(net, codec, Path(tmp) / "m.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feeds = {"image": x.numpy(), "z": z.numpy()}
        with torch.no_grad():
            reference = wrapper(x, z).numpy()
        difference = float(np.abs(session.run(None, feeds)[0] - reference).max())

        def torch_run() -> None:
            with torch.no_grad():
                wrapper(x, z)

        times = interleaved(
            {"PyTorch": torch_run, "ONNX Runtime": lambda: session.run(None, feeds)},
            calls=1,
            rounds=args.rounds,
            device=torch.device("cpu"),
        )
    row(
        "ONNX",
        f"{args.size}x{args.size} restoration, ONNX Runtime / PyTorch (CPU)",
        f"{times['ONNX Runtime'] / times['PyTorch']:.3f}",
        f"{times['ONNX Runtime'] * 1e3:.0f} ms vs {times['PyTorch'] * 1e3:.0f} ms; max difference {difference:.1e}",
    )


# ---------------------------------------------------------------------------------------------- 6. throughput
def matmul_gflops(dtype: torch.dtype, device: torch.device, rounds: int, n: int = 2048) -> float:
    """The machine's own rate: GFLOP/s of an n x n matrix product in ``dtype`` (2 n^3 operations)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    seconds = interleaved({"mm": lambda: a @ b}, calls=3, rounds=rounds, device=device)["mm"]
    return 2 * n**3 / seconds / 1e9


def throughput(args: argparse.Namespace, device: torch.device) -> None:
    print("\n6. achieved GFLOP/s of a restoration against the machine's matmul rate", flush=True)
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    net = CUnet(channels=WIDTHS[args.width]).eval()
    x = torch.rand(1, 3, args.size, args.size, device=device)
    z = torch.full((1, 2), 0.5, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net.to(device)(x, z)
    flops = counter.get_total_flops()  # multiply-adds counted as 2 operations
    bf16_ok, why = native_bf16(device)
    for precision, dtype in (("float32", torch.float32), ("bf16", torch.bfloat16)):
        if precision == "bf16" and not bf16_ok:
            row("throughput", f"{args.size}x{args.size} restoration, bf16 fast path", "skipped", why)
            continue
        restorer = Restorer(
            CUnet(channels=WIDTHS[args.width]), LevelCodec(), device=device, precision=precision
        )
        seconds = interleaved(
            {"restore": lambda r=restorer: r.restore_tensor(x, z)}, calls=1, rounds=args.rounds, device=device
        )["restore"]
        achieved = flops / seconds / 1e9
        peak = matmul_gflops(dtype, device, args.rounds)
        row(
            "throughput",
            f"{args.size}x{args.size} restoration, {precision} / {precision} matmul rate",
            f"{100 * achieved / peak:.0f}%",
            f"{achieved:.0f} GFLOP/s of {peak:.0f} ({flops / 1e9:.1f} GFLOP in {seconds * 1e3:.0f} ms)",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--width", choices=sorted(WIDTHS), help="CUnet width (default: small on CPU, full on GPU)"
    )
    parser.add_argument("--batch", type=int, help="training batch (default: 8 on CPU, 16 on GPU)")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--size", type=int, default=512, help="restoration size for sections 3 to 5")
    parser.add_argument("--iterations", type=int, default=12, help="timed stage-1 iterations per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and iterations (a smoke run)")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["lightning", "degradation", "variants", "sliders", "onnx", "throughput"],
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    args.width = args.width or ("full" if gpu else "small")
    args.batch = args.batch or (16 if gpu else 8)
    if args.quick:
        args.rounds, args.iterations, args.size = 2, 4, min(args.size, 128)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("cugan_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    header = (
        f"{machine(device)}; CUnet {args.width} {WIDTHS[args.width]}, batch {args.batch} x 3 x {args.patch} x "
        f"{args.patch}, restorations {args.size}x{args.size}; medians of {args.rounds} interleaved rounds"
    )
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as work:
        step = lightning_overhead(args, device, Path(work)) if "lightning" not in args.skip else 0.0
        if "degradation" not in args.skip:
            if not step:
                net = CUnet(channels=WIDTHS[args.width]).to(device)
                opt = torch.optim.Adam(net.parameters())
                x = torch.rand(args.batch, 3, args.patch, args.patch, device=device)
                z = torch.rand(args.batch, 2, device=device)

                def train_step() -> None:
                    loss = F.mse_loss(net(x, z), x)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()

                step = interleaved({"step": train_step}, calls=2, rounds=args.rounds, device=device)["step"]
            degradation(args, device, step)
    if "variants" not in args.skip:
        variants(args, device)
    if "sliders" not in args.skip:
        sliders(args, device)
    if "onnx" not in args.skip and not gpu:
        onnx_runtime(args)
    if "throughput" not in args.skip:
        throughput(args, device)
    print(f"\n{header}; {time.perf_counter() - start:.0f} s in all\n")
    print("| section | what | ratio or share | measured |")
    print("|---|---|---|---|")
    for section, what, value, note in ROWS:
        print(f"| {section} | {what} | {value} | {note} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
