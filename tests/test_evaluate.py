"""The evaluation app: tables recomputed independently, baselines paired, the best-z search, the multirun merge,
W&B files, and every bad input stopped before scoring."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from conftest import assert_one_line_error, compose_config, make_generator
from cugan_lightning.apps.evaluate import MergeSweep, prepare, run
from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.data import load_embedded_image
from cugan_lightning.degradations import LevelCodec, degrade_fixed
from cugan_lightning.evaluation.modulation import ModulationMap, best_condition
from cugan_lightning.networks import CUnet

CROP = 40
FAST = [f"data.crop={CROP}", "metrics=[psnr,psnr_y,ssim]", "figures=false", "precision=float32"]


def evaluate_in_process(tmp_path: Path, *overrides: str) -> dict:
    cfg = compose_config([*FAST, *overrides], tmp_path, config_name="evaluate")
    return run(cfg)


def center(array: np.ndarray, size: int) -> np.ndarray:
    top, left = (array.shape[0] - size) // 2, (array.shape[1] - size) // 2
    return array[top : top + size, left : left + size]


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004) with an 11-tap Gaussian window, sigma 1.5, mirrored borders, every pixel of every
    channel averaged (docs/evaluation.md's convention), computed with scipy."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: gaussian_filter(x, sigma=1.5, truncate=5 / 1.5, mode="mirror", axes=(0, 1))  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def test_a_table_cell_equals_an_independent_computation(tmp_path, ckpts):
    summary = evaluate_in_process(tmp_path, f"models.cunet={ckpts['mse']}", "settings=[[1,15],[0,30]]")
    net = make_generator(0)
    psnr, psnr_y, ssim = [], [], []
    for name in ("chelsea", "coffee"):  # the embedded validation photographs
        gt8 = center(load_embedded_image(name), CROP)
        gt = torch.from_numpy(gt8).permute(2, 0, 1).float() / 255
        lq = degrade_fixed(gt, 1.0, 15.0, image_key=name, seed=0)  # the documented fixed grid
        with torch.no_grad():
            out = net(lq[None], torch.tensor([[1.0 / 4, 15.0 / 50]]))[0]
        out8 = np.round(out.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.float64)
        ref = gt8.astype(np.float64)
        psnr.append(10 * math.log10(255**2 / np.mean((out8 - ref) ** 2)))
        y = lambda a: 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255  # noqa: E731
        psnr_y.append(10 * math.log10(255**2 / np.mean((y(out8) - y(ref)) ** 2)))
        ssim.append(reference_ssim(out8, ref))
    cell = summary["summary"]
    assert cell["psnr"]["cunet"]["b1_n15"] == pytest.approx(np.mean(psnr), abs=1e-3)
    assert cell["psnr_y"]["cunet"]["b1_n15"] == pytest.approx(np.mean(psnr_y), abs=1e-3)
    assert cell["ssim"]["cunet"]["b1_n15"] == pytest.approx(np.mean(ssim), abs=2e-3)
    assert list(cell["psnr"]) == ["input", "cunet"]  # the degraded input is always a row
    out = tmp_path
    for name in ("scores.csv", "summary.md", "summary.csv", "summary.json"):
        assert (out / name).is_file()
    lines = (out / "scores.csv").read_text().splitlines()
    assert lines[0] == "image,setting,blur,noise,jpeg,model,alpha,metric,value"
    assert len(lines) - 1 == 2 * 2 * 2 * 3  # images x settings x rows x metrics


def test_the_standard_protocol_keeps_the_same_noise_unclipped_and_every_table_names_its_protocol(
    tmp_path, ckpts
):
    from cugan_lightning.evaluation.runner import degraded_inputs

    gt = torch.from_numpy(center(load_embedded_image("coffee"), CROP)).permute(2, 0, 1).float() / 255
    settings = [(0.0, 50.0, 0.0), (2.0, 25.0, 0.0)]
    paper = degraded_inputs(gt, "coffee", settings, seed=0, protocol="paper")
    standard = degraded_inputs(gt, "coffee", settings, seed=0, protocol="standard")
    assert standard.min() < 0 and standard.max() > 1  # noise added in floating point, not clipped
    # the same draws: the paper's input is the standard one clipped and rounded to 8 bits
    torch.testing.assert_close(paper, (standard.clamp(0, 1) * 255).round() / 255, atol=1e-6, rtol=0)
    summary = evaluate_in_process(
        tmp_path, f"models.cunet={ckpts['mse']}", "settings=[b0_n25]", "protocol=standard"
    )
    assert summary["protocol"] == "standard"
    text = (tmp_path / "summary.md").read_text()
    assert (
        "Inputs: the standard denoising protocol" in text
        and "### psnr (higher is better, standard protocol)" in text
    )
    with pytest.raises(ValueError, match="protocol must be one of paper, standard"):
        evaluate_in_process(tmp_path / "bad", f"models.cunet={ckpts['mse']}", "protocol=gaussian")


def write_baseline(path: Path, level: tuple[float, float], seed: int, kind: str = "cunet") -> Path:
    torch.manual_seed(seed)
    net = CUnet(channels=(8, 16, 32), conditional=False)
    return save_generator_checkpoint(
        path, net, LevelCodec(), kind=kind, level={"blur": level[0], "noise": level[1]}
    )


def test_baselines_from_a_multirun_folder_are_paired_by_level(tmp_path, ckpts):
    runs = tmp_path / "multirun"
    (runs / "0" / "checkpoints").mkdir(parents=True)
    (runs / "1" / "checkpoints").mkdir(parents=True)
    write_baseline(runs / "0" / "checkpoints" / "last.ckpt", (0, 30), seed=3)
    write_baseline(runs / "1" / "checkpoints" / "best.ckpt", (2, 0), seed=4)
    write_baseline(runs / "1" / "checkpoints" / "last.ckpt", (2, 0), seed=5)  # best.ckpt of that run wins
    out = tmp_path / "out"
    summary = evaluate_in_process(
        out, f"models.cunet={ckpts['mse']}", f"baselines={runs}", "settings=[[0,30],[2,0],[4,50]]"
    )
    psnr = summary["summary"]["psnr"]
    assert set(psnr["unet_b0_n30"]) == {"b0_n30", "mean"}  # a baseline is scored on its own level only
    rows = json.loads((out / "distances.json").read_text())
    assert rows["settings_without_baseline"] == ["b4_n50"]
    by_setting = {r["setting"]: r for r in rows["rows"]}
    assert by_setting["b2_n0"]["baseline"] == "unet_b2_n0"
    assert by_setting["b2_n0"]["distance"] == pytest.approx(
        psnr["unet_b2_n0"]["b2_n0"] - psnr["cunet"]["b2_n0"]
    )
    assert "No baseline for: b4_n50" in (out / "distances.md").read_text()
    # the baseline's own file is what was scored (best.ckpt, not last.ckpt)
    scored = {m["name"]: m for m in summary["models"]}
    assert scored["unet_b2_n0"]["path"].endswith("best.ckpt")

    write_baseline(tmp_path / "extra.ckpt", (0, 30), seed=6)
    with pytest.raises(ValueError, match="several baselines for one kind and level"):
        prepare(compose_config([*FAST, f"baselines=[{runs},{tmp_path / 'extra.ckpt'}]"], out, "evaluate"))


def test_best_condition_finds_the_answer_of_a_model_that_knows_it():
    """A synthetic model: the output is the ground truth plus an error that grows with |z - z*|."""
    gt = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([1.5, 35.0])

    def restore(lq, blur, noise):
        error = ((blur - target[0]).abs() / 4 + (noise - target[1]).abs() / 50)[:, None, None, None]
        return (gt + 0.02 + 0.2 * error).clamp(0, 1).expand(len(blur), -1, -1, -1)

    grid = torch.tensor(
        [(b, n) for b in np.arange(0, 4.01, 0.5) for n in np.arange(0, 51, 5)], dtype=torch.float32
    )
    psnr = lambda out, ref: 10 * torch.log10(1 / ((out - ref) ** 2).mean(dim=(1, 2, 3)))  # noqa: E731
    scores = best_condition(restore, gt, gt, grid, psnr, batch_size=7)
    assert tuple(grid[scores.argmax()].tolist()) == (1.5, 35.0)
    result = ModulationMap(
        "m", "psnr", 2.0, 30.0, 0.0, [0.0, 1.0], [0.0, 10.0], np.array([[1.0, 4.0], [3.0, 2.0]]), 2.5
    )
    assert result.best == (0.0, 10.0, 4.0) and result.gap == pytest.approx(1.5)
    lower = ModulationMap(
        "m", "lpips", 2.0, 30.0, 0.0, [0.0, 1.0], [0.0, 10.0], np.array([[0.4, 0.1], [0.3, 0.2]]), 0.25
    )
    assert lower.best == (0.0, 10.0, 0.1) and lower.gap == pytest.approx(0.15)


def test_modulation_maps_of_the_app(tmp_path, ckpts):
    evaluate_in_process(
        tmp_path,
        f"models.cunet={ckpts['mse']}",
        "settings=[[2,30]]",
        "modulation_map.enabled=true",
        "modulation_map.blur=[0,4,2]",
        "modulation_map.noise=[0,50,25]",
    )
    (row,) = json.loads((tmp_path / "modulation.json").read_text())
    assert row["setting"] == "b2_n30" and row["best_blur"] in (0, 2, 4) and row["best_noise"] in (0, 25, 50)
    assert row["gap"] >= 0  # the true condition is on the grid
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert row["true_score"] == pytest.approx(summary["summary"]["psnr"]["cunet"]["b2_n30"], abs=1e-4)
    assert (tmp_path / "modulation_maps" / "cunet_b2_n30.png").is_file()


def test_alpha_sweep_in_one_process(tmp_path, ckpts):
    blend = f"models.blend={{model: {ckpts['mse']}, gan: {ckpts['gan']}, alpha: 0.5}}"
    summary = evaluate_in_process(
        tmp_path, blend, "settings=[[0,30]]", "curve.enabled=true", "curve.alphas=[0,1]"
    )
    psnr = summary["summary"]["psnr"]
    alone = evaluate_in_process(tmp_path / "mse", f"models.cunet={ckpts['mse']}", "settings=[[0,30]]")
    assert (
        psnr["blend@1"]["b0_n30"] == alone["summary"]["psnr"]["cunet"]["b0_n30"]
    )  # alpha 1 is the MSE model
    curve = (tmp_path / "curve.csv").read_text().splitlines()
    assert curve[0] == "blend,alpha,setting,metric,value" and len(curve) == 1 + 2 * 3


@pytest.mark.slow
def test_a_multirun_over_alpha_is_merged_into_one_curve(tmp_path, ckpts):
    blend = f"models.blend={{model: {ckpts['mse']}, gan: {ckpts['gan']}, alpha: 0.5}}"
    proc = subprocess.run(
        [
            sys.executable, "-m", "cugan_lightning.apps.evaluate", "-m", *FAST, blend, "models.blend.alpha=0,1",
            "settings=[[0,30],[2,0]]", f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "merged 2 job(s)" in proc.stdout
    curve = json.loads((tmp_path / "sweep" / "curve.json").read_text())
    assert sorted({row["alpha"] for row in curve}) == [0.0, 1.0]
    one_process = evaluate_in_process(
        tmp_path / "one", blend, "settings=[[0,30],[2,0]]", "curve.enabled=true", "curve.alphas=[0,1]"
    )
    for row in curve:
        assert (
            row["value"] == one_process["summary"][row["metric"]][f"blend@{row['alpha']:g}"][row["setting"]]
        )


def test_merge_callback_without_job_summaries_writes_nothing(tmp_path):
    from omegaconf import OmegaConf

    MergeSweep().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert list(tmp_path.iterdir()) == []


def test_wandb_offline_run_holds_the_table_and_the_figures(tmp_path, ckpts, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    evaluate_in_process(
        tmp_path, f"models.cunet={ckpts['mse']}", "settings=[[0,30]]", "logger=wandb", "figures=true"
    )
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    (table,) = (run_dir / "files" / "media" / "table" / "eval").glob("summary_*.table.json")
    data = json.loads(table.read_text())
    assert data["columns"] == ["metric", "model", "setting", "value", "images"]
    assert ["psnr", "cunet", "b0_n30"] in [row[:3] for row in data["data"]]
    assert list((run_dir / "files" / "media" / "images" / "eval").glob("examples_*.png"))


# ----------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("overrides", "error", "phrase"),
    [
        (
            ["models.cunet=/nowhere/m.ckpt"],
            FileNotFoundError,
            "models.cunet: '/nowhere/m.ckpt' does not exist",
        ),
        (["metrics=[psnr,fid]"], ValueError, "unknown metric(s) ['fid']"),
        (["settings=[[9,30]]"], ValueError, "blur level 9 is outside 0..4"),
        (["settings=[b2_n]"], ValueError, "is not of the form"),
        (["settings=[]"], ValueError, "settings is empty"),
        (["data.test_dir=EMPTY"], FileNotFoundError, "holds no images"),
        (["data.test_dir=BROKEN"], ValueError, "broken.png"),
        (
            ["+models.wide=WIDE", "models.blend={model: MSE, gan: WIDE, alpha: 0.5}"],
            ValueError,
            "channels: models.blend.model [8, 16, 32], models.blend.gan [8, 16, 16]",
        ),
        (
            ["models.blend={model: MSE, gan: GAN, alpha: 2}"],
            ValueError,
            "models.blend.alpha: alpha 2 is outside",
        ),
        (["models.cugan=null", "models.cunet=null"], ValueError, "no model to evaluate"),
        (
            ["modulation_map.enabled=true", "modulation_map.noise=[0,60,20]"],
            ValueError,
            "noise level 60 is outside",
        ),
    ],
)
def test_bad_input_is_named_before_scoring(tmp_path, ckpts, overrides, error, phrase):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    wide = save_generator_checkpoint(
        tmp_path / "wide.ckpt", make_generator(2, channels=(8, 16, 16)), LevelCodec()
    )
    names = {
        "EMPTY": tmp_path / "empty",
        "BROKEN": tmp_path / "broken",
        "WIDE": wide,
        "MSE": ckpts["mse"],
        "GAN": ckpts["gan"],
    }
    resolved = []
    for item in overrides:
        for key, value in names.items():
            item = item.replace(key, str(value))
        resolved.append(item)
    base = [] if any(o.startswith("models.cunet") for o in overrides) else [f"models.cunet={ckpts['mse']}"]
    cfg = compose_config([*FAST, *base, *resolved], tmp_path / "run", "evaluate")
    with pytest.raises(error) as info:
        run(cfg)
    assert phrase in str(info.value)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_the_command_line_prints_one_line_and_writes_no_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "cugan_lightning.apps.evaluate", "models.cunet=/nowhere/m.ckpt", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "models.cunet: '/nowhere/m.ckpt' does not exist")
    assert not list(tmp_path.glob("summary.*"))
