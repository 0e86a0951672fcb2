"""The import direction: the pure layers know nothing of Lightning or Hydra."""

import json
import subprocess
import sys

PURE = [
    "cugan_lightning.networks",
    "cugan_lightning.degradations",
    "cugan_lightning.losses",
    "cugan_lightning.checkpoint",
]
FRAMEWORKS = ("lightning", "pytorch_lightning", "hydra", "omegaconf")


def test_pure_layers_import_neither_lightning_nor_hydra():
    code = (
        "import importlib, json, sys\n"
        f"for name in {PURE!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_top_level_package_is_light():
    code = "import sys, cugan_lightning; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning')))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "[]"
