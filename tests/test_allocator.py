"""The allocator the web app serves with (cugan_lightning.webapp.allocator): rerun under jemalloc where it is
installed, the C library's when asked or where it is not, one line saying which."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from cugan_lightning.webapp.allocator import (
    ALLOCATOR_VARIABLE,
    allocator_line,
    find_jemalloc,
    jemalloc_loaded,
    reexec_command,
)
from test_webapp import free_port, start_app

LIB = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")


def test_the_app_reruns_itself_under_jemalloc_only_when_it_can_and_may():
    argv = ["--port", "7861", "--model", "a b.ckpt"]
    command, env = reexec_command(argv, {"LD_PRELOAD": "/x/other.so", "HOME": "/h"}, LIB, loaded=False)
    assert command == [
        sys.executable,
        "-m",
        "cugan_lightning.apps.app",
        *argv,
    ]  # the same arguments, as given
    assert (
        env["LD_PRELOAD"] == f"{LIB} /x/other.so"
        and env["HOME"] == "/h"
        and env[ALLOCATOR_VARIABLE] == "jemalloc"
    )
    assert reexec_command(argv, {}, LIB, loaded=True) is None  # already under it: no loop
    assert reexec_command(argv, {}, None, loaded=False) is None  # not installed
    assert reexec_command(argv, {ALLOCATOR_VARIABLE: "System"}, LIB, loaded=False) is None  # opted out
    assert reexec_command(argv, {}, LIB, loaded=False, platform="darwin") is None
    # preloaded already but not loaded (the loader refused it): going on beats rerunning for ever
    assert reexec_command(argv, {"LD_PRELOAD": f"/x/other.so:{LIB}"}, LIB, loaded=False) is None
    assert reexec_command(argv, {ALLOCATOR_VARIABLE: "tcmalloc"}, LIB, loaded=False) is None  # not a choice


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({ALLOCATOR_VARIABLE: "tcmalloc"}, "CUGAN_APP_ALLOCATOR='tcmalloc' is neither jemalloc nor system"),
        ({ALLOCATOR_VARIABLE: "system"}, "CUGAN_APP_ALLOCATOR=system is set"),
        ({"LD_PRELOAD": f"/x/other.so:{LIB}"}, f"{LIB} was preloaded but did not load"),
    ],
)
def test_the_allocator_line_says_why_the_c_library_serves(monkeypatch, env, said):
    monkeypatch.setattr("cugan_lightning.webapp.allocator.jemalloc_loaded", lambda maps=None: False)
    monkeypatch.setattr("cugan_lightning.webapp.allocator.find_jemalloc", lambda: LIB)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    line = allocator_line()
    assert line.startswith("memory: the C library's allocator") and said in line and "\n" not in line


def test_jemalloc_is_recognised_in_a_memory_map():
    assert jemalloc_loaded("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n")
    assert not jemalloc_loaded("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert allocator_line().startswith("memory: ") and "\n" not in allocator_line()


@pytest.mark.slow
@pytest.mark.parametrize("choice", ["default", "system"])
def test_the_served_app_runs_under_the_allocator_it_names(ckpts, tmp_path, choice):
    if find_jemalloc() is None:
        pytest.skip(
            "jemalloc is not installed here (libjemalloc2): the app serves with the C library's allocator"
        )
    env = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", ALLOCATOR_VARIABLE)}
    if choice == "system":
        env[ALLOCATOR_VARIABLE] = "system"
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "cugan_lightning.apps.app",
        "--model",
        str(ckpts["mse"]),
        "--port",
        str(port),
    ]
    proc, _ = start_app([*command, "--device", "cpu"], port, tmp_path / "server.log", env=env)
    try:
        maps = Path(f"/proc/{proc.pid}/maps").read_text()  # the same process id after the rerun
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = (tmp_path / "server.log").read_text()
    if choice == "default":
        assert "libjemalloc" in maps and "memory: jemalloc" in log, log[-2000:]
    else:
        assert "libjemalloc" not in maps and "memory: the C library's allocator" in log, log[-2000:]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_batch_tools_keep_freed_memory_under_glibc_only():
    """cugan-restore and cugan-evaluate have glibc keep freed blocks (docs/benchmarks.md); not under another
    allocator, nor over the user's own MALLOC_* settings."""
    import subprocess

    code = "from cugan_lightning.apps.common import keep_freed_memory as k; print(k())"
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_TRIM_THRESHOLD_")}

    def said(extra: dict[str, str]) -> str:
        run = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.strip()

    assert said({}) == "True"
    assert said({"MALLOC_TRIM_THRESHOLD_": "131072"}) == "False"  # the user's own setting stands
    if find_jemalloc() is not None:
        assert said({"LD_PRELOAD": str(find_jemalloc())}) == "False"
