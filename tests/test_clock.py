"""The training clock: time/train_minutes with each validation, a clock that survives resume, a time budget that
stops training, and the one-hour CPU recipe that uses it."""

from __future__ import annotations

import csv
import time

from lightning.pytorch.callbacks import Timer

from conftest import TINY, compose_config, fit_recording
from cugan_lightning.apps.train import build
from cugan_lightning.modules.clock import TrainingClock
from cugan_lightning.modules.speed import resolve_precision

CLOCK = "+callbacks.clock._target_=cugan_lightning.modules.clock.TrainingClock"
COMMON = [*TINY, "data.batches_per_epoch=3", "logger=csv", "model.log_figures=false", CLOCK]


def logged_minutes(output_dir):
    with open(output_dir / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return [(int(r["step"]), float(r["time/train_minutes"])) for r in rows if r.get("time/train_minutes")]


def test_each_validation_logs_the_minutes_since_training_started(tmp_path):
    trainer, _ = fit_recording(compose_config([*COMMON, "iterations=6"], tmp_path), ())
    minutes = logged_minutes(tmp_path)
    assert [step for step, _ in minutes] == [2, 5]  # after iterations 3 and 6 (steps count from 0)
    assert 0 < minutes[0][1] < minutes[1][1] < 5
    clocks = [c for c in trainer.callbacks if isinstance(c, Timer)]
    assert len(clocks) == 1 and isinstance(clocks[0], TrainingClock)


def test_a_resumed_run_continues_the_clock(tmp_path):
    first, _ = fit_recording(compose_config([*COMMON, "iterations=3"], tmp_path / "first"), ())
    ckpt = tmp_path / "first" / "stop.ckpt"
    first.save_checkpoint(ckpt)
    before = logged_minutes(tmp_path / "first")[-1][1]
    fit_recording(compose_config([*COMMON, "iterations=6"], tmp_path / "second"), (), ckpt)
    after = logged_minutes(tmp_path / "second")
    assert len(after) == 1 and after[0][1] > before


def test_the_duration_stops_training_by_time(tmp_path):
    duration = 3  # seconds
    cfg = compose_config(
        [*COMMON, "iterations=1000000", f"+callbacks.clock.duration=00:00:00:0{duration}"], tmp_path
    )
    datamodule, model, trainer = build(cfg)
    start = time.monotonic()
    trainer.fit(model, datamodule=datamodule)
    wall = time.monotonic() - start
    clock = next(c for c in trainer.callbacks if isinstance(c, TrainingClock))
    # stopped because the time was up: at least the duration trained, at most one iteration and a validation
    # more; and far fewer iterations than asked (a broken clock would run a million of them)
    assert clock.time_elapsed("train") >= duration
    assert wall < duration + 30, wall
    assert 0 < trainer.global_step < 20_000


def test_the_cpu_hour_recipe_composes_with_its_clock(tmp_path):
    cfg = compose_config(["experiment=cpu_hour", "data.num_workers=0"], tmp_path)
    assert cfg.iterations == 21000 and list(cfg.model.net_g.channels) == [32, 64, 128]
    _, model, trainer = build(cfg)
    clock = next(c for c in trainer.callbacks if isinstance(c, TrainingClock))
    assert clock._duration == 3600
    assert trainer.max_steps == 21000
    assert model.speed.channels_last and trainer.precision == resolve_precision("auto", "cpu")
    assert sum(p.numel() for p in model.net_g.parameters()) > 1_000_000  # the 32/64/128 width, not 16/32/64
