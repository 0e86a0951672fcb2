"""The training-curve tool: a run's metrics.csv read into validation PSNR per setting over time, as a table and a
PNG; runs without the clock fall back to iterations; bad input is named."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from cugan_lightning.apps.curve import main
from cugan_lightning.evaluation.training_curve import plot_training_curve, read_training_curve

SETTINGS = ["b0_n30", "b4_n0"]


def write_metrics(folder, timed=True):
    """A metrics.csv shaped as the CSV logger writes it: training rows, then validation rows with gaps."""
    columns = ["epoch", "step", "train/l_g_pix", "val/psnr", "time/train_minutes"]
    columns += [f"val/psnr/{s}" for s in SETTINGS] + [f"val/psnr_input/{s}" for s in SETTINGS]
    rows = []
    for k, step in enumerate([9, 19, 29]):
        rows.append({"epoch": k, "step": step - 1, "train/l_g_pix": 0.01})
        scores = {"val/psnr/b0_n30": 25.0 + k, "val/psnr/b4_n0": 24.0 + 0.5 * k}
        row = {"epoch": k, "step": step, "val/psnr": sum(scores.values()) / 2, **scores}
        row |= {"val/psnr_input/b0_n30": 19.3, "val/psnr_input/b4_n0": 23.9}
        if timed:
            row["time/train_minutes"] = 1.5 * (k + 1)
        rows.append(row)
    (folder / "csv").mkdir(parents=True)
    with open(folder / "csv" / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def test_a_timed_run_gives_psnr_per_setting_over_minutes(tmp_path):
    write_metrics(tmp_path)
    curve = read_training_curve(tmp_path)
    assert curve.x_label == "minutes" and curve.x == [1.5, 3.0, 4.5]
    assert curve.iterations == [9, 19, 29]
    assert curve.settings == {"b0_n30": [25.0, 26.0, 27.0], "b4_n0": [24.0, 24.5, 25.0]}
    assert curve.mean == pytest.approx([24.5, 25.25, 26.0])
    assert curve.inputs == {"b0_n30": 19.3, "b4_n0": 23.9}
    lines = curve.markdown(every=2).splitlines()
    assert lines[0] == "| minutes | iterations | mean | b0_n30 | b4_n0 |"
    assert lines[2] == "| input | | 21.60 | 19.30 | 23.90 |"
    assert lines[3:] == ["| 3.0 | 20 | 25.25 | 26.00 | 24.50 |", "| 4.5 | 30 | 26.00 | 27.00 | 25.00 |"]


def test_a_run_without_the_clock_is_drawn_against_iterations(tmp_path):
    write_metrics(tmp_path, timed=False)
    curve = read_training_curve(tmp_path / "csv" / "metrics.csv")
    assert curve.x_label == "iterations" and curve.x == [10.0, 20.0, 30.0]
    assert curve.markdown().splitlines()[0].startswith("| iterations | mean |")  # no minutes column
    png = plot_training_curve(curve, tmp_path / "curve.png")
    image = np.asarray(Image.open(png))
    assert image.ndim == 3 and image.shape[0] > 200 and image.std() > 0


def test_the_command_prints_the_table_and_names_bad_input(tmp_path, capsys):
    write_metrics(tmp_path / "run")
    assert main([str(tmp_path / "run"), "--png", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "| 4.5 | 30 | 26.00 | 27.00 | 25.00 |" in out and (tmp_path / "c.png").is_file()
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no metrics.csv under") and "logger=csv" in err
