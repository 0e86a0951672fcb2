"""``make demo``: both training stages on the embedded photographs, on the CPU, with modulation figures.

1. stage 1, ``experiment=quickstart_cpu``: a narrow CUnet learns to remove blur and noise (about 2 minutes on a
   2-core CPU), then the PSNR gain over the degraded input on each validation setting is printed;
2. stage 2, ``experiment=quickstart_cpu_gan``: the GAN stage starts from it (under a minute);
3. the evaluation app scores both checkpoints on the whole validation photographs (PSNR, SSIM, and LPIPS / DISTS
   where their ImageNet files are present) and prints its tables.

Each stage runs through the real apps (``cugan-train``, ``cugan-evaluate``), each command printed as it starts,
ready to paste. The figures (input, outputs for sweeps of the noise and blur conditions, ground truth) are
written side by side into the demo folder. The embedded photographs are a demonstration set, not a benchmark.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import torch

from ..checkpoint import load_generator
from ..data import center_crop, load_embedded_image
from ..data.io import to_float
from ..degradations import degrade_fixed
from ..evaluation.metrics import BACKBONES
from ..figures import modulation_rows, render_rows, save_png
from ..networks import imagenet_file
from .common import CliArgumentParser, CliError, run_cli

FIGURE_IMAGE = "chelsea"
FIGURE_SETTING = (2.0, 30.0)


class StageFailed(CliError):
    """A training stage of the demo exited with an error (already printed by the stage itself)."""


def tool_command(tool: str, module: str) -> list[str]:
    """How to run a tool: its console script beside this interpreter (a pip install puts it there), else
    ``python -m`` on its module. Either way the printed line can be pasted into a shell."""
    script = Path(sys.executable).with_name(tool)
    return [str(script)] if script.is_file() else [sys.executable, "-m", module]


def run_stage(overrides: list[str], run_dir: Path, tool: str = "cugan-train") -> dict:
    """Run the training (or evaluation) app in a subprocess and return the metrics.json it wrote."""
    module = {"cugan-train": "cugan_lightning", "cugan-evaluate": "cugan_lightning.apps.evaluate"}[tool]
    command = [*tool_command(tool, module), *overrides, f"hydra.run.dir={run_dir}"]
    print("$", shlex.join(command), flush=True)
    start = time.time()
    completed = subprocess.run(command)
    if completed.returncode != 0:
        raise StageFailed(f"the stage stopped with exit status {completed.returncode}; its message is above")
    print(f"  finished in {time.time() - start:.0f} s", flush=True)
    result = run_dir / "metrics.json"
    return json.loads(result.read_text()) if result.is_file() else {}


def evaluate_checkpoints(models: dict[str, str], run_dir: Path) -> None:
    """The evaluation app on the validation photographs (whole images); it prints its tables."""
    metrics = ["psnr", "psnr_y", "ssim"]
    metrics += [name for name, model in BACKBONES.items() if imagenet_file(model)[0].is_file()]
    overrides = [f"models.{name}={path}" for name, path in models.items()] + [
        f"metrics=[{','.join(metrics)}]"
    ]
    if len(metrics) == 3:
        print("(LPIPS and DISTS need torchvision's ImageNet AlexNet / VGG16 files, absent here: left out)")
    run_stage(overrides, run_dir, tool="cugan-evaluate")


@torch.no_grad()
def write_figure(checkpoint: str | Path, path: Path, title: str) -> Path:
    """Modulation figure of ``checkpoint`` on the validation photograph degraded with FIGURE_SETTING."""
    net, codec = load_generator(checkpoint)
    gt = torch.from_numpy(to_float(center_crop(load_embedded_image(FIGURE_IMAGE), 160))).permute(2, 0, 1)
    blur, noise = FIGURE_SETTING
    lq = degrade_fixed(gt, blur, noise, image_key=FIGURE_IMAGE).unsqueeze(0)
    rows = modulation_rows(lambda x, z: net(x, z), lq, gt.unsqueeze(0), codec, {"blur": blur, "noise": noise})
    rows[0][1][1] = (f"{title} z=({blur:g}, {noise:g})", rows[0][1][1][1])
    return save_png(render_rows(rows), path)


def gain_table(metrics: dict[str, float], prefix: str = "val") -> list[str]:
    """Lines of a table: per validation setting, input PSNR, output PSNR and their difference."""
    if f"{prefix}/psnr" not in metrics:
        raise StageFailed(
            "the stage ran no validation: it validates at the end of each epoch (data.batches_per_epoch "
            "batches), so give it at least that many iterations"
        )
    settings = sorted(k.split("/")[-1] for k in metrics if k.startswith(f"{prefix}/psnr_input/"))
    lines = [f"  {'setting':<10}{'input dB':>10}{'output dB':>11}{'gain dB':>9}"]
    for name in settings:
        before, after = metrics[f"{prefix}/psnr_input/{name}"], metrics[f"{prefix}/psnr/{name}"]
        lines.append(f"  {name:<10}{before:>10.2f}{after:>11.2f}{after - before:>+9.2f}")
    before, after = metrics[f"{prefix}/psnr_input"], metrics[f"{prefix}/psnr"]
    lines.append(f"  {'mean':<10}{before:>10.2f}{after:>11.2f}{after - before:>+9.2f}")
    return lines


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(prog="cugan-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("logs/demo"), help="demo folder (default logs/demo)")
    parser.add_argument("--skip-gan", action="store_true", help="run stage 1 only")
    parser.add_argument(
        "overrides", nargs="*", help="extra Hydra overrides for both stages, e.g. iterations=100"
    )
    return parser


def _command(tool: str, *arguments: str) -> str:
    return shlex.join(
        [*tool_command(tool, f"cugan_lightning.apps.{tool.removeprefix('cugan-')}"), *arguments]
    )


def _run(args: argparse.Namespace) -> None:
    root = (args.out / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    print(
        f"demo folder: {root}\n\nstage 1: CUnet with the MSE loss on the embedded photographs (CPU)",
        flush=True,
    )
    stage1 = run_stage(["experiment=quickstart_cpu", *args.overrides], root / "stage1_cunet")
    metrics = stage1["metrics"]
    print("\nPSNR on the validation grid (embedded photographs chelsea and coffee, RGB, 8-bit):")
    print("\n".join(gain_table(metrics)))
    # the latest weights: what stage 2 starts from and what the evaluation scores (best.ckpt is beside it)
    mse = stage1["last_checkpoint"]
    figure1 = write_figure(mse, root / "modulation_cunet.png", "CUnet")
    print(f"\nstage-1 modulation figure: {figure1}")
    print(f"stage-1 checkpoint:        {mse}")
    if args.skip_gan:
        print(
            "\nevaluation of the stage-1 checkpoint on the validation photographs (whole images):", flush=True
        )
        evaluate_checkpoints({"cunet": mse}, root / "evaluation")
        print(f"\nOpen the web app on it:\n  {_command('cugan-app', '--model', mse)}")
        return

    print("\nstage 2: CUGAN (GFM discriminator) from the stage-1 weights (CPU)", flush=True)
    stage2 = run_stage(
        ["experiment=quickstart_cpu_gan", f"init.ckpt={mse}", *args.overrides], root / "stage2_cugan"
    )
    gan = stage2["last_checkpoint"]
    psnr = stage2["metrics"].get("val/psnr")
    if psnr is not None:
        print(f"\nstage-2 mean PSNR on the same grid: {psnr:.2f} dB (a GAN trades PSNR for texture)")
    figure2 = write_figure(gan, root / "modulation_cugan.png", "CUGAN")
    print(f"\nstage-2 modulation figure: {figure2}")
    print(f"stage-2 checkpoint:        {gan}")
    print("\nevaluation of both checkpoints on the validation photographs (whole images):", flush=True)
    evaluate_checkpoints({"cunet": mse, "cugan": gan}, root / "evaluation")
    restore = _command(
        "cugan-restore", "photo.png", "-o", "restored/", "--model", mse, "--gan", gan, "--alpha", "0.5",
        "--blur", "1", "--noise", "15",
    )  # fmt: skip
    print(f"\nRestore your own photo:\n  {restore}")
    print(f"\nOr open the web app on them:\n  {_command('cugan-app', '--model', mse, '--gan', gan)}")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; a failing stage ends it with one ``error: ...`` line and exit status 2."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
