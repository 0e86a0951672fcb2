"""A preview against the full restoration of a large photo, and the web page's time from slider release to image.

1. ``Restorer.preview`` (long side ``--max-side``) and ``Restorer.restore`` on a ``--size`` square photo with the
   demo-size generator: the newest stage-1 checkpoint under logs/ (``make demo``), else random weights of the
   same architecture (conf/model/generator/cunet_small.yaml, 16/32/64 channels: the same time). Interleaved
   rounds, medians, absolute times and the ratio.
2. With ``--browser``: the web app in its own process on a free port, with the same checkpoints, driven by
   headless Chromium. For a 512x512 and a ``--size`` photo, the time from releasing the noise slider to the
   preview and to the full result shown in the page (the image loaded), measured in the page itself.

``--screenshot PATH`` saves the page on the demo photograph (docs/app.png, shown by the README: taken with
``--model zoo:cunet-blur-noise``, so the page names no path of any machine). Usage:
    python benchmarks/bench_preview.py [--size 2048] [--rounds 3] [--browser] [--screenshot docs/app.png]
        [--model FILE|zoo:NAME]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.checkpoint.find import find_checkpoints
from cugan_lightning.data import load_embedded_image
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.inference import load_restorer
from cugan_lightning.networks import CUnet

DEMO_CHANNELS = (16, 32, 64)  # conf/model/generator/cunet_small.yaml, the quickstart experiments' generator

WATCH_OUTPUT = """
const out = document.querySelector('#output');
window.cuganTimes = {shown: []};
let last = null;
function watch() {
  const img = out.querySelector('img');
  if (!img || img.src === last) return;
  last = img.src;
  const done = () => window.cuganTimes.shown.push({t: performance.now(), width: img.naturalWidth});
  if (img.complete && img.naturalWidth) done(); else img.addEventListener('load', done, {once: true});
}
new MutationObserver(watch).observe(out, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
document.querySelector('#slider-noise input[type=range]').addEventListener(
  'pointerup', () => { window.cuganTimes.release = performance.now(); window.cuganTimes.shown = []; }, true);
"""


def checkpoints(folder: Path, model: str | None) -> tuple[Path | str, Path | None, str]:
    """``model`` (a file or zoo:NAME) when given; else the demo's checkpoints under logs/, else random demo-size
    weights written to ``folder``."""
    if model is not None:
        return model, None, f"the model {model}"
    mse, gan = find_checkpoints()
    if isinstance(mse, Path):
        return mse, gan, f"trained checkpoint {mse}" + (" and its GAN pair" if gan else "")
    torch.manual_seed(0)
    net = CUnet(channels=DEMO_CHANNELS).eval()
    path = save_generator_checkpoint(folder / "random.ckpt", net, LevelCodec(), kind="cunet")
    return path, None, "random weights of the demo's size (no checkpoint under logs/)"


def photo(size: int) -> np.ndarray:
    """The embedded 512x512 astronaut photograph, resized to ``size`` and made noisy (uint8 RGB)."""
    image = Image.fromarray(load_embedded_image("astronaut")).resize((size, size), Image.Resampling.BICUBIC)
    noisy = np.asarray(image, dtype=np.float32) + np.random.default_rng(0).normal(0, 20, (size, size, 3))
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def bench_api(ckpt: Path | str, gan: Path | None, size: int, max_side: int, rounds: int) -> None:
    restorer = load_restorer(ckpt, gan, device="cpu")
    image = photo(size)
    alpha = 0.5 if gan else None
    restorer.preview(image, noise=20, alpha=alpha, max_side=max_side)  # warm-up (and the blend)
    times: dict[str, list[float]] = {"preview": [], "full": []}
    for index in range(rounds):
        noise = 10 + index  # a new setting each round, as a slider move gives
        for name in times:
            start = time.perf_counter()
            if name == "preview":
                restorer.preview(image, noise=noise, alpha=alpha, max_side=max_side)
            else:
                restorer.restore(image, noise=noise, alpha=alpha)
            times[name].append(time.perf_counter() - start)
    preview, full = (statistics.median(times[name]) for name in ("preview", "full"))
    print(
        f"\nRestorer on a {size}x{size} photo, CPU, {torch.get_num_threads()} threads, median of {rounds} rounds"
    )
    print(f"{'what':<34} {'seconds':>9} {'x preview':>10}")
    print(f"{f'preview (long side {max_side})':<34} {preview:9.2f} {1.0:10.2f}")
    print(f"{'full resolution':<34} {full:9.2f} {full / preview:10.2f}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(ckpt: Path | str, gan: Path | None, max_side: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "cugan_lightning.apps.app", "--model", str(ckpt), "--port", str(port)]
    command += ["--device", "cpu", "--preview-side", str(max_side)] + (["--gan", str(gan)] if gan else [])
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the app exited with status {proc.returncode}") from None
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the app did not answer")


def bench_page(
    ckpt: Path | str, gan: Path | None, size: int, max_side: int, rounds: int, screenshot: Path | None
) -> None:
    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome") or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    proc, url = start_app(ckpt, gan, max_side)
    driver = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
    wait = WebDriverWait(driver, 600, poll_frequency=0.05)

    def restored() -> bool:
        return driver.find_element(By.ID, "status").text.startswith("Restored")

    try:
        driver.get(url)
        wait.until(lambda d: restored() and d.find_elements(By.CSS_SELECTOR, "#output img"))
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(screenshot))
            print(f"\nwrote {screenshot}")
        track = driver.find_element(By.CSS_SELECTOR, "#slider-noise input[type=range]")
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for side in (512, size):
                path = Path(tmp) / f"photo{side}.png"
                Image.fromarray(photo(side)).save(path)
                for clear in driver.find_elements(By.CSS_SELECTOR, "#upload button[aria-label=Clear]"):
                    clear.click()
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
                driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(path))
                wait.until(lambda d, side=side: f"{side}x{side}" in d.find_element(By.ID, "photo-info").text)
                wait.until(
                    lambda d, side=side: (
                        restored() and f"{side}x{side}" in d.find_element(By.ID, "status").text
                    )
                )
                driver.execute_script(WATCH_OUTPUT)
                previews, fulls = [], []
                for index in range(rounds):
                    fraction = 0.3 if index % 2 else 0.7  # a new setting each round
                    offset = int((fraction - 0.5) * track.size["width"])
                    ActionChains(driver).move_to_element_with_offset(track, offset, 0).click().perform()
                    wait.until(
                        lambda d, side=side: any(
                            s["width"] == side for s in d.execute_script("return window.cuganTimes.shown")
                        )
                    )
                    times = driver.execute_script("return window.cuganTimes")
                    shown = [(s["t"] - times["release"]) / 1000 for s in times["shown"] if s["width"] < side]
                    previews.extend(shown[:1])
                    fulls.append(
                        next((s["t"] - times["release"]) / 1000 for s in times["shown"] if s["width"] == side)
                    )
                preview = f"{statistics.median(previews):9.2f}" if previews else f"{'-':>9}"
                rows.append((side, preview, statistics.median(fulls)))
        print(f"\nthe page: slider release to image shown (loaded), median of {rounds} releases, CPU")
        print(f"{'photo':<12} {'preview s':>9} {'full s':>9}")
        for side, preview, full in rows:
            print(f"{f'{side}x{side}':<12} {preview} {full:9.2f}")
        print(f"(a preview shows for photos longer than {max_side} pixels)")
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="side of the large square photo")
    parser.add_argument("--max-side", type=int, default=512, help="long side of the preview")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="CPU threads of the Restorer measurement")
    parser.add_argument("--browser", action="store_true", help="also time the web page in headless Chromium")
    parser.add_argument("--skip-api", action="store_true", help="only the page (with --browser)")
    parser.add_argument("--screenshot", type=Path, help="save a screenshot of the page here (with --browser)")
    parser.add_argument("--model", help="a model file or zoo:NAME (default: the demo's, else random weights)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, gan, what = checkpoints(Path(tmp), args.model)
        print(f"generator: {what}")
        if not args.skip_api:
            bench_api(ckpt, gan, args.size, args.max_side, args.rounds)
        if args.browser:
            bench_page(ckpt, gan, args.size, args.max_side, args.rounds, args.screenshot)


if __name__ == "__main__":
    main()
