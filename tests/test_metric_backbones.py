"""LPIPS and DISTS load torchvision's ImageNet AlexNet / VGG16 files from the torch hub cache: a missing file
stops the app before any work, and a file that is not the published one is never reported as LPIPS or DISTS.

The real loading path is exercised with explicitly random-weight files placed in a temporary hub folder; their
checksums cannot match the published digits in their names, which is how every output tells them apart.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from conftest import TINY, TINY_GAN, assert_one_line_error, compose_config, make_generator
from cugan_lightning.apps.evaluate import run
from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.evaluation.metrics import ImageScorer, UnverifiedBackboneError, build_validation_scorer
from cugan_lightning.networks import PretrainedWeightsMissingError, imagenet_file

FAST = ["data.crop=40", "figures=false", "settings=[[0,30],[2,0]]"]


def point_hub_at(folder: Path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(folder))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("CUGAN_OFFLINE", "1")
    return Path(torch.hub.get_dir()) / "checkpoints"


@pytest.fixture
def empty_hub(tmp_path, monkeypatch) -> Path:
    return point_hub_at(tmp_path / "torch", monkeypatch)


@pytest.fixture(scope="session")
def random_backbones(tmp_path_factory) -> Path:
    """A torch home whose hub cache holds random-weight AlexNet and VGG16 files under the published names."""
    home = tmp_path_factory.mktemp("torch_home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    for model in ("alexnet", "vgg16"):
        name = Path(imagenet_file(model)[0]).name
        torch.save(getattr(torchvision.models, model)(weights=None).state_dict(), folder / name)
    return home


@pytest.fixture
def ckpt(tmp_path) -> Path:
    return save_generator_checkpoint(tmp_path / "mse.ckpt", make_generator(0), LevelCodec(), kind="cunet")


def test_a_missing_backbone_stops_the_app_before_any_model_or_image_is_read(
    empty_hub, ckpt, tmp_path, monkeypatch
):
    loaded = []
    monkeypatch.setattr("cugan_lightning.apps.evaluate.load_models", lambda *a, **k: loaded.append("models"))
    monkeypatch.setattr(
        "cugan_lightning.apps.evaluate.load_test_images", lambda *a, **k: loaded.append("images")
    )
    cfg = compose_config(
        [*FAST, f"models.cunet={ckpt}"], tmp_path / "run", "evaluate"
    )  # default: every metric
    with pytest.raises(PretrainedWeightsMissingError) as info:
        run(cfg)
    message = str(info.value)
    assert "alexnet-owt-7be5be79.pth" in message and str(empty_hub) in message and "LPIPS" in message
    assert loaded == []
    cfg = compose_config([*FAST, f"models.cunet={ckpt}", "metrics=[dists]"], tmp_path / "run2", "evaluate")
    with pytest.raises(PretrainedWeightsMissingError, match="vgg16-397923af.pth"):
        run(cfg)


def test_the_validation_scorer_follows_the_perceptual_loss_rule(empty_hub, caplog):
    assert build_validation_scorer([]) is None
    with pytest.raises(PretrainedWeightsMissingError, match="alexnet-owt-7be5be79.pth"):
        build_validation_scorer(["lpips"], if_missing="error")
    with caplog.at_level(logging.WARNING):
        assert build_validation_scorer(["lpips", "dists"], if_missing="disable") is None
    assert "LPIPS / DISTS VALIDATION SWITCHED OFF" in caplog.text
    with pytest.raises(ValueError, match="val_metrics takes"):
        build_validation_scorer(["psnr"])


@pytest.mark.slow
def test_random_backbones_are_refused_or_labelled_unverified(random_backbones, ckpt, tmp_path, monkeypatch):
    point_hub_at(random_backbones, monkeypatch)
    with pytest.raises(UnverifiedBackboneError, match="does not match the published checksum"):
        ImageScorer(["lpips"])
    proc = subprocess.run(
        [sys.executable, "-m", "cugan_lightning.apps.evaluate", f"models.cunet={ckpt}", *FAST, f"hydra.run.dir={tmp_path}/cli"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "alexnet-owt-7be5be79.pth does not match the published checksum")

    cfg = compose_config(
        [*FAST, f"models.cunet={ckpt}", "allow_unverified_backbones=true"], tmp_path / "run", "evaluate"
    )
    summary = run(cfg)
    assert summary["metrics"] == ["psnr", "psnr_y", "ssim", "lpips_unverified", "dists_unverified"]
    for value in summary["summary"]["lpips_unverified"]["cunet"].values():
        assert 0 <= value <= 1
    document = (tmp_path / "run" / "summary.md").read_text()
    headings = [line for line in document.splitlines() if line.startswith("### ")]
    assert headings[-2:] == [
        "### lpips_unverified (lower is better, paper protocol)",
        "### dists_unverified (lower is better, paper protocol)",
    ]
    assert "lpips" not in json.loads((tmp_path / "run" / "summary.json").read_text())["summary"]


@pytest.mark.slow
def test_gan_validation_logs_lpips_per_setting(random_backbones, tmp_path, monkeypatch, stage1_ckpt):
    from cugan_lightning.apps.train import train

    point_hub_at(random_backbones, monkeypatch)
    stage1 = stage1_ckpt
    cfg = compose_config(
        [
            *TINY, *(o for o in TINY_GAN if not o.startswith("model.val_metrics")),
            f"init.ckpt={stage1}", "model.val_metrics=[lpips]", "data.patch_size=32", "callbacks=gan",
            "callbacks.rich_progress_bar=null", "model.log_figures=false", "debug=fast_dev_run",
        ],
        tmp_path,
    )  # fmt: skip
    metrics = train(cfg)["metrics"]
    assert {"val/lpips_unverified/b0_n30", "val/lpips_unverified/b2_n0", "val/lpips_unverified"} <= set(
        metrics
    )
    assert not any(key.startswith("val/lpips/") for key in metrics)
