"""Packaging: every imported package is declared, and a wheel carries everything, the Hydra configs included."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

import cugan_lightning
from conftest import ROOT

PACKAGE = Path(cugan_lightning.__file__).parent
# Declared for a package that the code reaches through another library rather than by an import of its own.
USED_INDIRECTLY = {"rich": "Lightning's RichProgressBar, named in conf/callbacks"}


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> tuple[set[str], set[str]]:
    """(runtime dependencies, optional ones) as distribution names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {requirement_name(r) for r in project["dependencies"]}
    extras = {requirement_name(r) for group in project["optional-dependencies"].values() for r in group}
    return runtime, extras


def imported_distributions() -> dict[str, set[str]]:
    """Distribution name -> source files of this package that import it (anywhere in the file)."""
    stdlib = set(sys.stdlib_module_names)
    by_module = importlib.metadata.packages_distributions()
    out: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in stdlib or top == "cugan_lightning":
                    continue
                for dist in by_module.get(top, [top]):
                    if (
                        dist.lower().replace("_", "-") == "cugan-lightning"
                    ):  # this project (its Hydra launcher)
                        continue
                    out.setdefault(dist.lower().replace("_", "-"), set()).add(str(path.relative_to(ROOT)))
    return out


def test_every_imported_package_is_declared_and_every_dependency_is_used():
    runtime, extras = declared()
    imported = imported_distributions()
    undeclared = {dist: sorted(files) for dist, files in imported.items() if dist not in runtime | extras}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    unused = runtime - set(imported) - set(USED_INDIRECTLY)
    assert not unused, f"declared in pyproject.toml but imported nowhere: {sorted(unused)}"


@pytest.mark.slow
def test_the_wheel_alone_trains_with_its_own_configs(tmp_path):
    """Build the wheel, unpack it ahead of the editable install, and run the training app from an empty folder."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("cugan_lightning-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    shipped = {n for n in names if n.startswith("cugan_lightning/conf/") and n.endswith(".yaml")}
    in_repo = {
        f"cugan_lightning/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")
    }
    assert shipped == in_repo

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "offline"}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import cugan_lightning.conf as c, cugan_lightning.apps.train as t; print(c.__file__, t.__file__)",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cugan_lightning",
            "experiment=quickstart_cpu",
            "debug=fast_dev_run",
            "data.num_workers=0",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (metrics,) = empty.glob("logs/*/runs/*/metrics.json")  # the debug preset names the task "debug"
    assert "val/psnr" in json.loads(metrics.read_text())["metrics"]


SHARED_APP_MODULES = {"__init__", "common", "hydra_app"}  # what the tools share, not tools themselves


def test_every_tool_has_one_console_script_and_lives_in_apps():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    tools = {p.stem for p in (PACKAGE / "apps").glob("*.py")} - SHARED_APP_MODULES
    targets = {}
    for script, target in scripts.items():
        module, _, function = target.partition(":")
        assert script.startswith("cugan-") and function == "main", (script, target)
        assert module.startswith("cugan_lightning.apps."), f"{script} -> {module}: every tool lives in apps/"
        targets[module.removeprefix("cugan_lightning.apps.")] = script
    assert set(targets) == tools, f"tools without a console script: {sorted(tools - set(targets))}"
    # no second way in: no other module of the package is runnable
    runnable = sorted(
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.parent.name != "apps"
        and (p.name == "__main__.py" or 'if __name__ == "__main__"' in p.read_text())
    )
    assert runnable == ["__main__.py"], f"entry points outside apps/: {runnable}"


@pytest.mark.parametrize(
    "script", sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
)
def test_each_console_script_is_installed_and_answers_help(script):
    path = Path(sys.executable).with_name(script)
    assert path.is_file(), f"{script} is not installed beside {sys.executable}: run make install"
    proc = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()
