"""The package's layers and the one-way import rule (ARCHITECTURE.md), checked statically and at run time.

Layer 0, pure torch / numpy / PIL: networks, degradations, losses, the atomic writer, image files and datasets.
Layer 1, generator files and what works on them: checkpoint, dni, figures.
Layer 2, libraries for inference (inference, estimation, interactive, the web page's webapp/) and for training (the data
module, modules, utils).
Layer 3, apps/: every tool (the Hydra apps and the command-line tools), ``python -m cugan_lightning``, and slurm.py
(the training app as a SLURM job).
A module imports only from its own layer or those below, and so does every folder: layers 0 to 2 never import
the tools.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import cugan_lightning

PACKAGE = Path(cugan_lightning.__file__).parent
NAME = "cugan_lightning"

LAYERS = {
    "atomic": 0,
    "zoo": 0,  # the model registry: names, files, downloads, checksums (no torch)
    "networks": 0,
    "degradations": 0,
    "losses": 0,
    "data.io": 0,
    "data.layouts": 0,
    "data.embedded": 0,
    "data.datasets": 0,
    "checkpoint": 1,
    "dni": 1,
    "figures": 1,
    "inference": 2,
    "estimation": 2,  # blind level estimates: classical estimators, JPEG tables, the learned estimator (no Lightning)
    "interactive": 2,
    "webapp": 2,  # the web page: the workbench (no Gradio) and the Gradio page, no argparse
    "evaluation": 2,  # scoring, tables and plots of the evaluation app (torchmetrics, no Lightning or Hydra)
    "data": 2,  # the package itself exposes the Lightning data module (lazily)
    "data.prepare": 2,  # downloads and lays out data sets (no Lightning)
    "modules": 2,
    "utils": 2,
    "apps": 3,  # every tool: the Hydra apps and the command-line tools
    "slurm": 3,  # the training app as a SLURM job: requeue at the time limit, one-line launcher reports
    "__main__": 3,
    "conf": 3,
    "": 3,  # the top-level package: the public API, imported lazily
}
FRAMEWORKS = {"lightning", "pytorch_lightning", "hydra", "omegaconf"}
FRAMEWORK_FREE_BELOW = 2  # layers 0 and 1 never import a training framework
FRAMEWORK_FREE = (
    "inference",
    "estimation",
    "interactive",
    "evaluation",
    "webapp",
)  # nor do these libraries of layer 2


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def layer_of(module: str) -> int:
    """The layer of the longest entry of LAYERS that is ``module`` or a package above it."""
    for end in range(module.count(".") + 1, -1, -1):
        prefix = ".".join(module.split(".")[:end]) if end else ""
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise AssertionError(f"module {module} has no layer")


def imports_of(module: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(modules of this package, top-level third-party names) that ``module`` imports anywhere in its file."""
    own, third_party = set(), set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if module else []
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                stem = ".".join([NAME, *base, *([node.module] if node.module else [])])
            else:
                stem = node.module or ""
            # `from pkg import name`: the module pkg.name where there is one, else pkg itself
            targets = [
                full if full.removeprefix(NAME).lstrip(".") in known else stem
                for full in (f"{stem}.{alias.name}" for alias in node.names)
            ]
        else:
            continue
        for target in targets:
            if target == NAME or target.startswith(NAME + "."):
                name = target.removeprefix(NAME).lstrip(".")
                while name and name not in known:
                    name = name.rpartition(".")[0]
                if name != module:
                    own.add(name)
            else:
                third_party.add(target.split(".")[0])
    return own, third_party


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    found = modules()
    edges, external = {}, {}
    for module, path in found.items():
        edges[module], external[module] = imports_of(module, path, set(found))
    return edges, external


def test_every_module_has_a_layer_and_imports_only_downwards():
    edges, _ = graph()
    wrong = [
        f"{m or NAME} (layer {layer_of(m)}) imports {t or NAME} (layer {layer_of(t)})"
        for m, targets in edges.items()
        for t in sorted(targets)
        if layer_of(t) > layer_of(m)
    ]
    assert not wrong, "imports against the layer order (see ARCHITECTURE.md):\n" + "\n".join(wrong)


def test_no_folder_imports_a_folder_above_its_layer():
    """Folder by folder (the top-level package of each module): no module of a folder imports a module of a
    higher layer than the folder's own, even where the module's own entry would allow it (a ``__main__`` inside
    a library folder that imports a tool, say)."""
    edges, _ = graph()

    def folder(module: str) -> str:
        return module.split(".")[0]

    wrong = sorted(
        f"{folder(m)}/ (layer {LAYERS[folder(m)]}) -> {t} (layer {layer_of(t)}) in {m}"
        for m, targets in edges.items()
        for t in targets
        if m and t and folder(m) != folder(t) and layer_of(t) > LAYERS[folder(m)]
    )
    assert not wrong, "folders importing upwards:\n" + "\n".join(wrong)


def test_there_is_no_import_cycle():
    edges, _ = graph()
    # a module importing a package above it (its own package's __init__) is the usual way in, not a cycle
    edges = {
        m: {t for t in targets if t != "" and not m.startswith(t + ".")} for m, targets in edges.items() if m
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_lower_layers_import_no_training_framework():
    _, external = graph()
    offenders = {
        m: sorted(names & FRAMEWORKS)
        for m, names in external.items()
        if (layer_of(m) < FRAMEWORK_FREE_BELOW or m.split(".")[0] in FRAMEWORK_FREE) and names & FRAMEWORKS
    }
    assert not offenders


def test_pure_layers_import_neither_lightning_nor_hydra_at_run_time():
    pure = [f"{NAME}.{m}" for m in ("networks", "degradations", "losses", "checkpoint", "dni", "inference")]
    code = (
        "import importlib, json, sys\n"
        f"for name in {pure!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FRAMEWORKS)!r})))\n"
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


# One interpreter loads the third-party libraries once, then forks a child per module of this package: each child
# starts with none of the package imported, so a module that works only after another of ours fails here, at a
# fraction of the cost of a new interpreter (and torch) per module.
FORK_IMPORTS = """
import importlib, os, sys
import numpy, PIL.Image, torch, lightning, hydra, omegaconf  # the third-party weight, loaded once
failures = []
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            code = 0
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            os.write(write, f"{name}: {type(err).__name__}: {err}".encode()[:2000])
            code = 1
        os._exit(code)
    os.close(write)
    message = os.read(read, 4096).decode()
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failures.append(message or f"{name}: exit status {status}")
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = [f"{NAME}.{m}".rstrip(".") for m in modules() if not m.endswith("__main__")]
    proc = subprocess.run(
        [sys.executable, "-c", FORK_IMPORTS, *names], capture_output=True, text=True, timeout=600
    )
    failures = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0 and not failures, "\n".join(failures) or proc.stderr[-3000:]
