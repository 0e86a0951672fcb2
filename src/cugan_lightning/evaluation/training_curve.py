"""A training run's validation curve: validation PSNR per setting against training time, read from the run's
``metrics.csv`` (``logger=csv``), as a Markdown table and a PNG.

    cugan-curve logs/cpu_hour/runs/<date> [--every 5] [--png curve.png]      (the tool: apps/curve.py)

The time axis is ``time/train_minutes`` (logged by the ``TrainingClock`` callback, as ``experiment=cpu_hour``
does); a run without it is drawn against iterations. The degraded inputs' PSNR is the table's first row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .plots import save_figure

__all__ = ["TrainingCurve", "plot_training_curve", "read_training_curve"]

PREFIX = "val/psnr/"
INPUT_PREFIX = "val/psnr_input/"
MINUTES = "time/train_minutes"


@dataclass(frozen=True)
class TrainingCurve:
    """Validations in order: ``x`` (minutes, or iterations when the run has no clock), the mean PSNR and the
    PSNR of each setting; ``inputs`` is the degraded input's PSNR per setting."""

    x_label: str
    iterations: list[int]
    x: list[float]
    mean: list[float]
    settings: dict[str, list[float]]
    inputs: dict[str, float]

    def markdown(self, every: int = 1) -> str:
        """The table: one row per ``every``-th validation (and always the last), one column per setting; a run
        timed by the clock gets a minutes column before the iterations."""
        names = list(self.settings)
        timed = self.x_label == "minutes"
        lead = ["minutes", "iterations"] if timed else ["iterations"]
        rows = [
            f"| {' | '.join(lead)} | mean | {' | '.join(names)} |",
            "|---" * (len(lead) + 1) + "|" + "---|" * len(names),
        ]
        if self.inputs:
            mean_in = sum(self.inputs.values()) / len(self.inputs)
            cells = " | ".join(f"{self.inputs.get(n, float('nan')):.2f}" for n in names)
            rows.append(f"| input |{' |' * (len(lead) - 1)} {mean_in:.2f} | {cells} |")
        picked = [i for i in range(len(self.x)) if i % every == every - 1 or i == len(self.x) - 1]
        for i in picked:
            cells = " | ".join(f"{self.settings[n][i]:.2f}" for n in names)
            when = f"{self.x[i]:.1f} | {self.iterations[i] + 1}" if timed else f"{self.iterations[i] + 1}"
            rows.append(f"| {when} | {self.mean[i]:.2f} | {cells} |")
        return "\n".join(rows)


def read_training_curve(run: str | Path) -> TrainingCurve:
    """Read a run folder (or its ``metrics.csv``)."""
    path = Path(run)
    if path.is_dir():
        found = sorted(path.glob("**/metrics.csv"))
        if not found:
            raise FileNotFoundError(
                f"no metrics.csv under {path}: the curve needs a run trained with logger=csv (or logger=many)"
            )
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give a run folder or its csv/metrics.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = list(rows[0]) if rows else []
    names = [c[len(PREFIX) :] for c in columns if c.startswith(PREFIX)]
    validations = [r for r in rows if r.get("val/psnr")]
    if not names or not validations:
        raise ValueError(f"{path} has no validation PSNR per setting (val/psnr/<setting>): nothing to draw")
    timed = all(r.get(MINUTES) for r in validations)
    inputs = {
        n: float(next(r[INPUT_PREFIX + n] for r in rows if r.get(INPUT_PREFIX + n)))
        for n in names
        if any(r.get(INPUT_PREFIX + n) for r in rows)
    }
    return TrainingCurve(
        x_label="minutes" if timed else "iterations",
        iterations=[int(r["step"]) for r in validations],
        x=[float(r[MINUTES]) if timed else float(int(r["step"]) + 1) for r in validations],
        mean=[float(r["val/psnr"]) for r in validations],
        settings={n: [float(r[PREFIX + n]) for r in validations] for n in names},
        inputs=inputs,
    )


def plot_training_curve(curve: TrainingCurve, path: str | Path, title: str = "") -> Path:
    """Validation PSNR per setting and their mean over training; the legend gives each input's PSNR."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.0, 5.0))
    axes = figure.add_subplot()
    colours = [f"C{i}" for i in range(10)]
    for i, (name, values) in enumerate(curve.settings.items()):
        colour = colours[i % len(colours)]
        gain = f" (input {curve.inputs[name]:.1f})" if name in curve.inputs else ""
        axes.plot(curve.x, values, color=colour, label=f"{name}{gain}")
    axes.plot(curve.x, curve.mean, color="black", linewidth=2.0, label="mean")
    axes.set_xlabel("training time (minutes)" if curve.x_label == "minutes" else "iterations")
    axes.set_ylabel("validation PSNR (dB)")
    axes.set_title(
        title or "validation PSNR per setting (the degraded input's PSNR in the legend)", fontsize=10
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return save_figure(figure, path)
