"""The web app under load, as a team uses it: the app in its own process on a free port of 127.0.0.1, simulated
users that each upload a photo and move the sliders through the app's own API (``gradio_client``), and one person in
headless Chromium. It stops by itself after ``--seconds`` and prints a table: requests, errors, the time from a
slider release to the image (p50 / p95), the server's memory over the run, and the files in its folder.

    python benchmarks/bench_app_load.py [--users 8] [--seconds 60] [--no-browser] [--model zoo:NAME] [--json out]

A user's request is a slider release: the quick listener (``/note``) and the restoration (``/restore``), whose image
the client downloads. The Chromium user clicks the noise slider's track and waits for the new image to load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from cugan_lightning.data import load_embedded_image

WATCH_OUTPUT = """
const out = document.querySelector('#output');
window.cuganTimes = {shown: [], failed: []};
let last = null;
function watch() {
  const img = out.querySelector('img');
  if (!img || img.src === last) return;
  last = img.src;
  const done = () => window.cuganTimes.shown.push(performance.now());
  const failed = () => window.cuganTimes.failed.push(img.src);
  if (img.complete && img.naturalWidth) done();
  else { img.addEventListener('load', done, {once: true}); img.addEventListener('error', failed, {once: true}); }
}
new MutationObserver(watch).observe(out, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
document.querySelector('#slider-noise input[type=range]').addEventListener(
  'pointerup', () => { window.cuganTimes.release = performance.now(); window.cuganTimes.shown = []; window.cuganTimes.failed = []; }, true);
"""


@dataclass
class Tally:
    """What the users saw, shared by their threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"api": [], "browser": []})
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def done(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)

    def failed(self, what: str) -> None:
        with self.lock:
            self.errors.append(" ".join(what.split())[:300])

    @property
    def requests(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.latencies.values()) + len(self.errors)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answers(proc: subprocess.Popen, url: str, log: Path, seconds: float) -> str | None:
    """None once the app started as ``proc`` answers on ``url``; otherwise why not, with the end of its ``log``
    (it exited, or stayed silent for ``seconds``: then it is killed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"the app exited with status {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return None
        except OSError:
            time.sleep(0.5)
    proc.kill()
    return f"the app did not answer on {url} within {seconds:g} s:\n{log.read_text()[-3000:]}"


def start_app(args: argparse.Namespace, tmp: Path) -> tuple[subprocess.Popen, str]:
    """The app as a person starts it; its temporary folder (results, uploads) under ``tmp``, its output in
    ``server.log`` beside it."""
    port = free_port()
    command = [sys.executable, "-m", "cugan_lightning.apps.app", "--port", str(port), "--device", "cpu"]
    command += ["--keep-files", str(args.keep_files), "--concurrency", str(args.concurrency)]
    command += ["--model", args.model] if args.model else []
    env = {**os.environ, "TMPDIR": str(tmp)}
    log = tmp.parent / "server.log"
    with open(log, "w") as out:  # the server writes to its own copy of the handle
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    reason = wait_until_answers(proc, url, log, 300)
    if reason is not None:
        raise SystemExit(reason)
    return proc, url


def allocator_served(log: Path) -> str:
    """Which allocator the server said it serves with (its ``memory:`` line): ``jemalloc`` or ``system``."""
    line = next((line for line in log.read_text().splitlines() if line.startswith("memory: ")), "")
    return "jemalloc" if line.startswith("memory: jemalloc") else "system"


def photo(path: Path, size: int, seed: int) -> Path:
    """The embedded astronaut photograph at ``size``, with noise of its own per user."""
    image = Image.fromarray(load_embedded_image("astronaut")).resize((size, size), Image.Resampling.BICUBIC)
    noisy = np.asarray(image, dtype=np.float32) + np.random.default_rng(seed).normal(0, 15, (size, size, 3))
    Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8)).save(path)
    return path


def api_user(url: str, image: Path, deadline: float, tally: Tally, seed: int) -> None:
    from gradio_client import Client, handle_file

    rng = random.Random(seed)
    try:
        client = Client(url, verbose=False)
        client.predict(handle_file(str(image)), 0.0, 0.5, api_name="/on_upload")
    except Exception as err:  # noqa: BLE001 - counted and reported
        tally.failed(f"upload: {type(err).__name__}: {err}")
        return
    while time.monotonic() < deadline:
        blur, noise, alpha = (
            round(rng.uniform(0, 3), 1),
            float(rng.randint(0, 50)),
            round(rng.uniform(0, 1), 2),
        )
        start = time.perf_counter()
        try:
            client.predict(blur, noise, 0.0, alpha, api_name="/note")
            shown, _, status, message = client.predict(blur, noise, 0.0, alpha, api_name="/restore")
            said = message if isinstance(message, str) else ""  # an unchanged message line comes as an update
            if not (shown and Path(shown).is_file() and str(status).startswith("Restored")) or said:
                raise RuntimeError(f"status {status!r}, message {message!r}")
        except Exception as err:  # noqa: BLE001 - counted and reported
            tally.failed(f"restore: {type(err).__name__}: {err}")
            continue
        tally.done("api", time.perf_counter() - start)
    client.close()


def browser_user(url: str, image: Path, deadline: float, tally: Tally) -> None:
    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome") or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
    wait = WebDriverWait(driver, 60, poll_frequency=0.05)

    def text(elem_id: str) -> str:
        return driver.find_element(By.ID, elem_id).text

    try:
        driver.get(url)
        wait.until(lambda d: text("status").startswith("Restored"))
        driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(image))
        wait.until(lambda d: image.name in text("photo-info") and text("status").startswith("Restored"))
        driver.execute_script(WATCH_OUTPUT)
        track = driver.find_element(By.CSS_SELECTOR, "#slider-noise input[type=range]")
        index = 0
        while time.monotonic() < deadline:
            index += 1
            offset = int(((0.2 if index % 2 else 0.8) - 0.5) * track.size["width"])
            ActionChains(driver).move_to_element_with_offset(track, offset, 0).click().perform()
            try:
                wait.until(lambda d: d.execute_script("return window.cuganTimes.shown.length") > 0)
            except Exception:  # noqa: BLE001 - counted and reported
                tally.failed(
                    f"browser: no image within 60 s; status {text('status')!r}, message {text('message')!r}"
                )
                continue
            times = driver.execute_script("return window.cuganTimes")
            if text("message"):
                tally.failed(f"browser: {text('message')}")
                continue
            tally.done("browser", (times["shown"][0] - times["release"]) / 1000)
    except Exception as err:  # noqa: BLE001 - counted and reported
        tally.failed(f"browser: {type(err).__name__}: {err}")
    finally:
        driver.quit()


def folder_size(folder: Path) -> tuple[int, int]:
    """Files under ``folder`` and their bytes (files the app deletes meanwhile are skipped)."""
    count = size = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                size += os.stat(os.path.join(root, name)).st_size
                count += 1
            except OSError:
                pass
    return count, size


def rss_mb(pid: int) -> float:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100)) if values else float("nan")


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-app-load-") as root:
        tmp = Path(root) / "tmp"
        tmp.mkdir()
        proc, url = start_app(args, tmp)
        tally, samples = Tally(), []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append((time.monotonic(), rss_mb(proc.pid), *folder_size(tmp), tally.requests))
                stop.wait(0.5)

        try:
            images = [photo(Path(root) / f"user{i}.png", args.size, i) for i in range(args.users + 1)]
            sampler = threading.Thread(target=sample)
            sampler.start()
            start = time.monotonic()
            deadline = start + args.seconds
            threads = [
                threading.Thread(target=api_user, args=(url, images[i], deadline, tally, i))
                for i in range(args.users)
            ]
            if args.browser:
                threads.append(threading.Thread(target=browser_user, args=(url, images[-1], deadline, tally)))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=args.seconds + 300)
            stop.set()
            sampler.join()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        allocator = allocator_served(Path(root) / "server.log")
    warm = next((s for s in samples if s[0] >= start + args.seconds * args.warm_up), samples[-1])
    end = samples[-1]
    per_100 = (end[1] - warm[1]) / max(end[4] - warm[4], 1) * 100
    api, web = tally.latencies["api"], tally.latencies["browser"]
    return {
        "users": args.users,
        "browser": args.browser,
        "seconds": args.seconds,
        "size": args.size,
        "allocator": allocator,
        "requests": tally.requests,
        "errors": len(tally.errors),
        "error_samples": tally.errors[:5],
        "api_p50_s": percentile(api, 0.5),
        "api_p95_s": percentile(api, 0.95),
        "browser_requests": len(web),
        "browser_p50_s": percentile(web, 0.5),
        "browser_p95_s": percentile(web, 0.95),
        "rss_start_mb": samples[0][1],
        "rss_warm_mb": warm[1],
        "rss_end_mb": end[1],
        "rss_max_mb": max(s[1] for s in samples),
        "rss_growth_mb_per_100_requests": per_100,
        "requests_after_warm_up": end[4] - warm[4],
        "files_max": max(s[2] for s in samples),
        "files_end": end[2],
        "folder_max_mb": max(s[3] for s in samples) / 2**20,
        "samples": [  # seconds since the start, RSS MB, files, requests: every 5th sample
            (round(s[0] - start, 1), round(s[1]), s[2], s[4]) for s in samples[::5]
        ],
    }


def print_table(result: dict) -> None:
    rows = [
        ("users", f"{result['users']} API" + (" + 1 Chromium" if result["browser"] else "")),
        ("run", f"{result['seconds']} s, {result['size']}x{result['size']} photos"),
        ("requests (slider releases)", f"{result['requests']} ({result['browser_requests']} from Chromium)"),
        ("errors", str(result["errors"])),
        ("release to image, API p50 / p95", f"{result['api_p50_s']:.2f} s / {result['api_p95_s']:.2f} s"),
        ("release to image, Chromium p50 / p95", f"{result['browser_p50_s']:.2f} s / {result['browser_p95_s']:.2f} s"),
        ("server RSS start / after warm-up / end", f"{result['rss_start_mb']:.0f} / {result['rss_warm_mb']:.0f} / {result['rss_end_mb']:.0f} MB"),
        ("RSS growth after warm-up", f"{result['rss_growth_mb_per_100_requests']:+.1f} MB per 100 requests"),
        ("files in the app's folder, max / end", f"{result['files_max']} / {result['files_end']} ({result['folder_max_mb']:.1f} MB max)"),
    ]  # fmt: skip
    print("| what | measured |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")
    for error in result["error_samples"]:
        print(f"error: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="simulated users through the API (default 8)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they move sliders (default 60)")
    parser.add_argument("--no-browser", dest="browser", action="store_false", help="no Chromium user")
    parser.add_argument("--model", help="the app's --model (default: the zoo's default model)")
    parser.add_argument("--size", type=int, default=256, help="the photos' side in pixels (default 256)")
    parser.add_argument("--keep-files", type=int, default=20, help="the app's --keep-files (default 20 s)")
    parser.add_argument("--concurrency", type=int, default=64, help="the app's --concurrency (default 64)")
    parser.add_argument(
        "--warm-up", type=float, default=0.25, help="share of the run before memory is compared"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = run(args)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
