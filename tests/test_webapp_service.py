"""The web app as a shared service: upload limits checked before decoding (sizes, decompression bombs, truncated
files, HTML and SVG named .png, many-page TIFFs), each session's files deleted, logins (``--auth``,
``--auth-file``) and the warning of an open server, no file outside the app's folder served through any route, a
full queue answered with a message, and the load benchmark in a short form."""

from __future__ import annotations

import http.client
import json
import os
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import BENCHMARKS, assert_one_line_error
from cugan_lightning.apps.app import main as app_main
from cugan_lightning.webapp import DEMO_PHOTOS, Workbench
from cugan_lightning.webapp.allocator import ALLOCATOR_VARIABLE, find_jemalloc
from cugan_lightning.webapp.service import (
    Service,
    is_loopback,
    open_warning,
    parse_credentials,
    read_auth_file,
)
from test_webapp import (
    CHROMEDRIVER,
    CHROMIUM,
    _browser_missing,
    free_port,
    save_png,
    smooth_image,
    start_app,
    text_of,
    wait_for,
)

SECRET = "the-secret-only-the-server-knows"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def hostile_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files a stranger may upload, each with the message it must get."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    idat = png_chunk(b"IDAT", zlib.compress(b"\0" * 100_000, 9)) + png_chunk(b"IEND", b"")
    for name, side in (
        ("bomb.png", 100_000),
        ("medium.png", 3000),
    ):  # a few hundred bytes, many pixels claimed
        header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + idat)
    whole = save_png(smooth_image(64, 64), folder / "whole.png").read_bytes()
    truncated = folder / "truncated.png"
    truncated.write_bytes(whole[: len(whole) // 2])
    html = folder / "page.png"
    html.write_text("<!DOCTYPE html><html><script>fetch('/steal?'+document.cookie)</script></html>")
    svg = folder / "vector.png"
    svg.write_text(
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
    )
    for name, count in (("pages.tif", 5), ("many.tif", 1200)):
        with tifffile.TiffWriter(folder / name) as tiff:
            for _ in range(count):
                tiff.write(np.zeros((16, 16), np.uint8))
    return {
        "bomb": (
            folder / "bomb.png",
            "'bomb.png': it claims more pixels than the 178956970 this reader accepts",
        ),
        "medium": (
            folder / "medium.png",
            "'medium.png' is 3000x3000 = 9,000,000 pixels, more than this page's",
        ),
        "truncated": (truncated, "'truncated.png'"),
        "html": (html, "'page.png': not an image, it holds text (HTML, SVG or XML)"),
        "svg": (svg, "'vector.png': not an image, it holds text (HTML, SVG or XML)"),
        "pages": (folder / "pages.tif", "'pages.tif' is a TIFF of 5 pages"),
        "many": (folder / "many.tif", "'many.tif' is a TIFF of more than 999 pages"),
    }


# ------------------------------------------------------------------------------------------------- limits
def test_hostile_uploads_are_refused_before_decoding(ckpts, tmp_path, monkeypatch):
    bench = Workbench(ckpts["mse"], max_pixels=20_000, workdir=tmp_path / "work")
    monkeypatch.setattr("cugan_lightning.webapp.workbench.read_image_raw", _never_decoded)
    for path, message in hostile_files(tmp_path / "in").values():
        with pytest.raises(ValueError) as err:
            bench.open_upload(path)
        assert (
            message in str(err.value) and "\n" not in str(err.value) and str(tmp_path) not in str(err.value)
        )
    huge = tmp_path / "in" / "huge.png"  # 1 GiB, sparse: a PNG signature and zeros
    with open(huge, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(2**30)
    with pytest.raises(
        ValueError, match=r"'huge.png' is 1.00 GB, more than this page's limit of 100.0 MB; .* 1025$"
    ):
        bench.open_upload(huge)
    assert list((tmp_path / "work").iterdir()) == []  # nothing written for any of them


def _never_decoded(path):
    raise AssertionError(f"{path} was decoded")


def test_a_single_page_tiff_within_the_limits_opens(ckpts, tmp_path):
    import tifffile

    bench = Workbench(ckpts["mse"], workdir=tmp_path / "work")
    image = smooth_image(20, 24)
    tifffile.imwrite(tmp_path / "one.tif", image, photometric="rgb")
    np.testing.assert_array_equal(bench.open_upload(tmp_path / "one.tif").array, image)


def test_each_session_keeps_only_its_latest_files(ckpts, tmp_path):
    bench = Workbench(ckpts["mse"], ckpts["gan"], preview_side=32, workdir=tmp_path / "work")
    for index in range(4):
        photo = bench.open_upload(save_png(smooth_image(40, 48, seed=index), tmp_path / f"p{index}.png"))
        bench.files.keep("a", "photo", photo.display)
        for noise in (5, 10, 15):
            list(bench.render("a", photo, bench.settings({"noise": noise + index})))
    files = sorted(p.name for p in (tmp_path / "work").rglob("*") if p.is_file())
    assert files == ["input-0012-p3.png", "p3_restored.png"]  # 4 photos and 12 results written, 2 left
    bench.forget("a")
    assert [p for p in (tmp_path / "work").rglob("*")] == []
    old = save_png(smooth_image(8, 8), tmp_path / "work" / "old.png")
    stray = tmp_path / "work" / "tmpupload"
    stray.write_bytes(b"partial")
    recent = save_png(smooth_image(8, 8), tmp_path / "work" / "recent.png")
    for path in (old, stray):
        os.utime(path, (time.time() - 120, time.time() - 120))
    assert bench.files.sweep(max_age=300, stray_age=60) == 1 and not stray.exists() and old.exists()
    assert bench.files.sweep(max_age=100) == 1 and not old.exists() and recent.exists()


# ------------------------------------------------------------------------------------------ logins, warning
def test_credentials_and_their_one_line_errors(tmp_path, capsys):
    assert parse_credentials("ana:pa:ss") == ("ana", "pa:ss")
    logins = tmp_path / "team.txt"
    logins.write_text("# the lab\nana:one\n\nbob:two:three\n")
    assert read_auth_file(logins) == (("ana", "one"), ("bob", "two:three"))
    logins.write_text("ana:s3cr3t-a\nbob\n:s3cr3t-b\ncid:\n")
    with pytest.raises(ValueError, match=r"line\(s\) 2, 3, 4 are not USER:PASSWORD") as err:
        read_auth_file(logins)
    assert "s3cr3t" not in str(err.value)
    for argv, expected in (
        (["--auth", "ana"], "--auth must be USER:PASSWORD"),
        (["--auth", "ana:secret-word", "--auth-file", str(logins)], "give --auth or --auth-file, not both"),
        (["--auth-file", str(logins)], "line(s) 2, 3, 4 are not USER:PASSWORD"),
        (["--auth-file", str(tmp_path / "gone.txt")], "--auth-file"),
        (["--concurrency", "0"], "--concurrency must be at least 1, got 0"),
        (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
    ):
        assert app_main(argv) == 2
        err = capsys.readouterr().err
        assert_one_line_error(err, expected)
        assert "secret-word" not in err


def test_an_open_server_warns_once(ckpts, capsys, monkeypatch):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("")
    assert open_warning("127.0.0.1", Service()) is None
    assert open_warning("0.0.0.0", Service(credentials=(("ana", "one"),))) is None

    def refuse(*args, **kwargs):
        raise OSError("address in use")

    monkeypatch.setattr("cugan_lightning.webapp.page.launch", refuse)
    base = ["--model", str(ckpts["mse"]), "--device", "cpu", "--host", "0.0.0.0"]
    assert app_main(base) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("warning: the page listens on 0.0.0.0 without a password") and len(err) == 2
    assert "--auth USER:PASSWORD" in err[0] and err[1].startswith("error: cannot listen on 0.0.0.0")
    assert app_main([*base, "--auth", "ana:one"]) == 2
    assert "warning" not in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def team_server(ckpts, tmp_path_factory):
    """The app in its own process with logins from a file, a 1 MB upload limit and its temporary folder under
    ``root`` (the folder also holds a secret next to the app's folder, and is the app's working folder)."""
    if (reason := _browser_missing()) is not None:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("team")
    (root / "secret.txt").write_text(SECRET)
    (root / "logins.txt").write_text("# the lab\nana:pass-one\nbob:pass-two\n")
    port = free_port()
    command = [sys.executable, "-m", "cugan_lightning.apps.app", "--model", str(ckpts["mse"]), "--gan"]
    command += [str(ckpts["gan"]), "--port", str(port), "--device", "cpu", "--max-pixels", "20000"]
    command += ["--auth-file", str(root / "logins.txt"), "--max-upload-mb", "1", "--preview-side", "48"]
    env = {**os.environ, "TMPDIR": str(root)}
    proc, url = start_app(command, port, root / "server.log", cwd=root, env=env)
    (workdir,) = root.glob("cugan-app-*")
    yield {"url": url, "root": root, "workdir": workdir, "port": port, "proc": proc}
    proc.terminate()
    proc.wait(timeout=30)


def restores(url: str, photo: Path, auth=("ana", "pass-one")) -> str:
    """Upload ``photo`` through the API and move a slider: the restored file (the client's download)."""
    from gradio_client import Client, handle_file

    client = Client(url, auth=auth, verbose=False)
    shown = client.predict(handle_file(str(photo)), 0.0, 0.5, api_name="/on_upload")
    assert shown[3] == "", shown
    result, _, status, _ = client.predict(1.0, 20.0, 0.0, 0.5, api_name="/restore")
    assert status.startswith("Restored"), status
    return result


@pytest.mark.slow
def test_logins_guard_the_page_and_the_api(team_server, tmp_path):
    from gradio_client import Client

    url = team_server["url"]
    for route in ("config", "gradio_api/info"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + route, timeout=30)
        assert err.value.code == 401
    with pytest.raises(Exception, match="credentials were not provided"):
        Client(url, verbose=False)
    with pytest.raises(Exception, match="Could not login"):
        Client(url, auth=("ana", "wrong"), verbose=False)
    photo = save_png(smooth_image(40, 48), tmp_path / "photo.png")
    for user in (("ana", "pass-one"), ("bob", "pass-two")):
        assert Path(restores(url, photo, user)).is_file()


@pytest.mark.slow
def test_hostile_uploads_get_a_message_and_the_server_goes_on(team_server, tmp_path):
    import httpx
    from gradio_client import Client, handle_file

    url = team_server["url"]
    client = Client(url, auth=("ana", "pass-one"), verbose=False)
    client.predict(DEMO_PHOTOS[0].label, 0.0, 0.5, api_name="/on_demo")  # a photo to load maps onto
    for path, message in hostile_files(tmp_path).values():
        said = client.predict(handle_file(str(path)), 0.0, 0.5, api_name="/on_upload")[3]
        assert said.startswith("**Error:**") and message in said, said
        said = client.predict(handle_file(str(path)), "noise", 0, 20, 0, 0.5, api_name="/on_upload_1")[-1]
        assert said.startswith("**Error:**"), said  # the paint panel's map upload: the same limits
    # 1 GB sent to the upload route: refused once 1 MB has arrived
    web = httpx.Client(base_url=url, timeout=120)
    assert web.post("login", data={"username": "ana", "password": "pass-one"}).status_code == 200

    def gigabyte():
        yield b'--B\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n\r\n\x89PNG\r\n\x1a\n'
        for _ in range(1024):
            yield bytes(2**20)
        yield b"\r\n--B--\r\n"

    refused = web.post(
        "gradio_api/upload", content=gigabyte(), headers={"Content-Type": "multipart/form-data; boundary=B"}
    )
    assert refused.status_code == 413 and "maximum allowed size of 1048576 bytes" in refused.text
    assert team_server["proc"].poll() is None
    assert Path(restores(url, save_png(smooth_image(40, 48, seed=1), tmp_path / "after.png"))).is_file()
    workdir_mb = sum(p.stat().st_size for p in team_server["workdir"].rglob("*") if p.is_file()) / 2**20
    assert workdir_mb < 5  # no partial gigabyte left behind


@pytest.mark.slow
def test_no_file_outside_the_apps_folder_is_served(team_server, tmp_path):
    import httpx

    url, workdir, port = team_server["url"], team_server["workdir"], team_server["port"]
    web = httpx.Client(base_url=url, timeout=30)
    assert web.post("login", data={"username": "ana", "password": "pass-one"}).status_code == 200
    result = restores(url, save_png(smooth_image(40, 48), tmp_path / "photo.png"))
    served = [p for p in workdir.rglob("*_restored.png")]
    assert (
        served and web.get(f"gradio_api/file={served[0]}").content[:8] == b"\x89PNG\r\n\x1a\n"
    )  # the check bites
    assert Path(result).is_file()
    secret, parent = str(team_server["root"] / "secret.txt"), f"{workdir}/.."
    targets = [
        "/etc/passwd", "../../../../../../etc/passwd", "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd", "%252Fetc%252Fpasswd", secret, "secret.txt", "./secret.txt", f"{parent}/secret.txt",
        f"{workdir}/..%2Fsecret.txt", f"{workdir}%2F..%2Fsecret.txt", f"{workdir}/%2e%2e/secret.txt",
        f"file://{secret}", f"http://127.0.0.1:{port}/gradio_api/file={secret}", "~/.bashrc", "/proc/self/environ",
    ]  # fmt: skip
    routes = [f"gradio_api/file={t}" for t in targets] + [f"gradio_api/file/{t.lstrip('/')}" for t in targets]
    routes += [
        f"{prefix}/{dots}{tail}"
        for prefix in ("static", "assets", "svelte", "gradio_api/custom_component/a/b/c")
        for dots in ("../" * 8, "%2e%2e/" * 8, "..%2f" * 8, "%2e%2e%2f" * 8)
        for tail in ("etc/passwd", secret.lstrip("/"))
    ]
    routes += [
        "gradio_api/proxy=file:///etc/passwd",
        f"gradio_api/proxy={secret}",
        "gradio_api/stream/x/0/1/..%2f..%2fsecret.txt",
    ]
    for route in routes:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # the path sent as written
        connection.request(
            "GET", "/" + route, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in web.cookies.items())}
        )
        body = connection.getresponse().read()
        connection.close()
        assert SECRET.encode() not in body and b"root:x:0:0" not in body and b"PATH=" not in body, route


@pytest.mark.slow
def test_a_full_queue_answers_busy_on_the_page(ckpts, tmp_path, monkeypatch):
    """One restoration runs (held), one waits: the queue (``--concurrency 1``) is full, so a third request and a
    page opened meanwhile get "busy" at once; once the first ends, all is served again."""
    from gradio_client import Client
    from gradio_client.utils import Status
    from selenium import webdriver

    from cugan_lightning.webapp.page import build_page, launch

    if (reason := _browser_missing()) is not None:
        pytest.skip(reason)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # build_page points it at the workbench's folder
    bench = Workbench(ckpts["mse"], ckpts["gan"], workdir=tmp_path / "work")
    entered, release = threading.Event(), threading.Event()
    render = bench.render

    def held(*args, **kwargs):
        entered.set()
        release.wait(120)
        yield from render(*args, **kwargs)

    bench.render = held
    page = build_page(bench, Service(concurrency=1))
    url = launch(page, bench, "127.0.0.1", free_port(), Service(concurrency=1))
    driver = None
    try:
        users = [Client(url, verbose=False) for _ in range(3)]
        for user in users:
            user.predict(DEMO_PHOTOS[0].label, 0.0, 0.5, api_name="/on_demo")
        running = users[0].submit(1.0, 10.0, 0.0, 0.5, api_name="/restore")
        assert entered.wait(60)
        waiting = users[1].submit(1.0, 20.0, 0.0, 0.5, api_name="/restore")
        deadline = time.monotonic() + 60
        while waiting.status().code != Status.IN_QUEUE and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(Exception, match="(?i)queue is full"):
            users[2].predict(1.0, 30.0, 0.0, 0.5, api_name="/restore")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
        driver.get(url)
        busy = "This application is currently busy. Please try again."
        wait_for(driver, lambda d: busy in d.find_element("tag name", "body").text, 60, "the busy message")
        release.set()
        for job in (running, waiting):
            assert job.result(timeout=120)[2].startswith("Restored")
        assert users[2].predict(1.0, 30.0, 0.0, 0.5, api_name="/restore")[2].startswith("Restored")
        driver.get(url)
        wait_for(
            driver, lambda d: text_of(d, "status").startswith("Restored"), 120, "the page after the rush"
        )
    finally:
        release.set()
        if driver is not None:
            driver.quit()
        page.close()


@pytest.mark.slow
def test_the_load_benchmark_in_short(ckpts, tmp_path):
    """3 API users and one Chromium user for 25 s (the Chromium user's page, upload and first restoration take
    10 s or more of it on 2 shared cores): no errors, a bounded folder, memory that does not grow with
    every request. (How fast is measured by the full run for the docs, never asserted.)"""
    if (reason := _browser_missing()) is not None:
        pytest.skip(reason)
    out = tmp_path / "load.json"
    command = [
        sys.executable,
        str(BENCHMARKS / "bench_app_load.py"),
        "--users",
        "3",
        "--seconds",
        "25",
        "--warm-up",
        "0.5",
    ]
    command += ["--model", str(ckpts["mse"]), "--size", "96", "--keep-files", "5", "--json", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] >= 4 and result["browser_requests"] >= 1
    assert result["files_max"] <= 4 * (3 + 1) + 8  # a few files per page, whatever the number of requests
    # memory: bounded by what the server holds, not by the requests served (the network's first runs on each
    # of the server's threads take their share early: compared after the first half of the run); under jemalloc
    # (docs/webapp.md) flat, under the C library's allocator it keeps freed buffers
    limit = 100 if result["allocator"] == "jemalloc" else 400
    assert result["allocator"] == (
        "jemalloc" if find_jemalloc() and os.environ.get(ALLOCATOR_VARIABLE) != "system" else "system"
    )
    assert result["rss_end_mb"] - result["rss_warm_mb"] < limit, result["samples"]
    assert "| errors | 0 |" in proc.stdout
