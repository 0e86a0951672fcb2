"""The web app: the workbench behind the page (photos, limits, previews, stale work, the command), its command
line, and the real page driven in headless Chromium (upload, slider, download, errors) against the Python API."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from bench_app_load import free_port, wait_until_answers  # the load benchmark starts the app alike
from PIL import Image

from conftest import assert_one_line_error
from cugan_lightning.apps.app import main as app_main
from cugan_lightning.apps.restore import main as restore_main
from cugan_lightning.data.io import read_image_raw
from cugan_lightning.inference import load_restorer
from cugan_lightning.webapp import DEMO_PHOTOS, Workbench


@pytest.fixture
def bench(ckpts, tmp_path) -> Workbench:
    return Workbench(ckpts["mse"], ckpts["gan"], preview_side=32, workdir=tmp_path / "work")


def smooth_image(height: int, width: int, seed: int = 0, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """A photo-like test image: smooth gradients plus a little texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    planes = [np.sin(3 * xx + c) * np.cos(2 * yy - c) for c in range(channels)]
    image = (np.stack(planes, axis=-1) + 1) / 2 * 0.8 + rng.random((height, width, channels)) * 0.2
    scale = 65535 if dtype == np.uint16 else 255
    return np.round(image * scale).astype(dtype)


def save_png(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(array).save(path)
    return path


# ------------------------------------------------------------------------------------------------ workbench
def test_sliders_follow_the_checkpoint_codec(ckpts, tmp_path):
    pair = Workbench(ckpts["mse"], ckpts["gan"], workdir=tmp_path)
    assert [s.name for s in pair.sliders()] == ["blur", "noise", "alpha"]
    blur = pair.sliders()[0]
    assert (blur.minimum, blur.maximum, blur.step) == (0.0, 4.0, 0.1) and "pixels" in blur.info
    single = Workbench(ckpts["mse3"], workdir=tmp_path)
    assert [s.name for s in single.sliders()] == ["blur", "noise", "jpeg"]  # no GAN: no alpha
    assert "JPEG quality" in single.sliders()[2].info


def test_settings_snap_to_the_slider_steps(bench, ckpts, tmp_path):
    settings = bench.settings({"blur": 1.2300001, "noise": 29.6}, alpha=0.52)
    assert settings.levels == (("blur", 1.2), ("noise", 30.0)) and settings.alpha == 0.5
    assert bench.settings({"blur": 9.0, "noise": -3}).levels == (("blur", 4.0), ("noise", 0.0))
    jpeg = Workbench(ckpts["mse3"], workdir=tmp_path).settings({"jpeg": 4})
    assert jpeg.level("jpeg") == 10.0 and jpeg.alpha is None  # qualities below the lowest snap up to it


def test_the_command_reproduces_the_page_result(bench, tmp_path):
    image = smooth_image(40, 56)
    source = save_png(image, tmp_path / "my photo.png")
    photo = bench.open_upload(source, "my photo.png")
    settings = bench.settings({"blur": 0.5, "noise": 20}, alpha=0.3)
    *_, full = bench.render("s", photo, settings)
    command = bench.command(photo, settings)
    assert "'my photo.png'" in command and "--alpha 0.3 --blur 0.5 --noise 20" in command
    run = subprocess.run(
        [str(Path(sys.executable).with_name("cugan-restore")), *shlex.split(command)[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    written = read_image_raw(tmp_path / "my photo_restored.png")
    np.testing.assert_array_equal(written, read_image_raw(full.download))


def test_uploads_keep_16_bits_and_alpha(bench, tmp_path):
    import imagecodecs

    image = smooth_image(24, 20, channels=4, dtype=np.uint16)
    path = tmp_path / "deep.png"
    path.write_bytes(imagecodecs.png_encode(image))
    photo = bench.open_upload(path)
    assert photo.describe() == "deep.png: 20x24, 16-bit RGBA"
    *_, full = bench.render("s", photo, bench.settings({"noise": 10}))
    result = read_image_raw(full.download)
    assert result.dtype == np.uint16 and result.shape == image.shape
    np.testing.assert_array_equal(result[..., 3], image[..., 3])
    expected = bench.restorer.restore(image, blur=0.0, noise=10.0, alpha=0.5)
    np.testing.assert_array_equal(result, expected)


def test_bad_uploads_are_named_in_one_line(bench, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    with pytest.raises(ValueError, match="'notes.png': not an image") as err:
        bench.open_upload(text)
    assert str(tmp_path) not in str(err.value)  # the upload's name, not the server's temporary path
    small = Workbench(bench.model, max_pixels=1000, workdir=tmp_path / "w")
    big = save_png(smooth_image(40, 30), tmp_path / "big.png")
    with pytest.raises(
        ValueError, match=r"'big.png' is 30x40 = 1,200 pixels, more than .* --max-pixels 1200"
    ):
        small.open_upload(big)


def test_a_missing_checkpoint_keeps_the_current_model(bench, tmp_path):
    before = bench.restorer
    with pytest.raises(FileNotFoundError, match="'nowhere.ckpt' does not exist.*make demo"):
        bench.load_model("nowhere.ckpt")
    assert bench.restorer is before and bench.has_gan


def test_demo_photos_start_the_sliders_at_their_levels(bench):
    photo = bench.open_demo(DEMO_PHOTOS[1].label)
    assert photo.levels == {"blur": DEMO_PHOTOS[1].blur, "noise": DEMO_PHOTOS[1].noise}
    assert photo.source is not None and np.array_equal(read_image_raw(photo.source), photo.array)
    assert photo.array.dtype == np.uint8 and photo.array.shape[2] == 3
    with pytest.raises(ValueError, match="unknown demo photograph"):
        bench.open_demo("lena")


def test_an_upload_opens_the_sliders_at_its_estimated_levels(bench, tmp_path):
    from skimage import data

    clean = data.astronaut()[100:164, 200:280].astype(float)
    noisy = np.clip(np.round(clean + np.random.default_rng(1).normal(0, 20, clean.shape)), 0, 255).astype(
        np.uint8
    )
    path = save_png(noisy, tmp_path / "noisy.png")
    photo = bench.open_upload(path)
    estimates = bench.restorer.estimate(noisy, source=path)
    assert photo.estimates == estimates
    assert photo.levels == {name: e.value for name, e in estimates.items() if e.value is not None}
    assert photo.levels["noise"] == pytest.approx(20, abs=3)
    settings = bench.settings(photo.levels)  # the page snaps them onto the sliders
    assert settings.level("noise") == round(photo.levels["noise"])


def test_a_large_photo_shows_a_preview_first_then_the_full_result(bench, tmp_path):
    image = smooth_image(48, 80)
    photo = bench.open_upload(save_png(image, tmp_path / "wide.png"))
    settings = bench.settings({"blur": 1.0, "noise": 30}, alpha=0.5)
    frames = bench.render("s", photo, settings)
    preview = next(frames)
    assert (preview.kind, preview.size, preview.download) == ("preview", (19, 32), None)
    expected_preview = bench.restorer.preview(image, blur=1.0, noise=30.0, alpha=0.5, max_side=32)
    np.testing.assert_array_equal(read_image_raw(preview.display), expected_preview)
    (full,) = frames
    assert full.kind == "full" and full.size == (48, 80)
    assert (
        not preview.display.exists()
    )  # the page keeps its own copy; the workbench keeps the latest files only
    np.testing.assert_array_equal(
        read_image_raw(full.download), bench.restorer.restore(image, 1.0, 30.0, 0.5)
    )

    calls = dict(bench.restorer.stats)
    (again,) = bench.render("s", photo, settings)  # the same settings: the same result, nothing computed
    assert again.cached and again.download == full.download and bench.restorer.stats == calls


def test_a_newer_request_stops_a_running_restoration(bench, tmp_path):
    photo = bench.open_upload(save_png(smooth_image(48, 80), tmp_path / "wide.png"))
    old, new = bench.settings({"noise": 10}), bench.settings({"noise": 40})
    bench.request("s", photo, old)
    frames = bench.render("s", photo, old)
    assert next(frames).kind == "preview"

    # the person releases the slider again while the full-resolution pass runs: it stops at the next layer
    middle = bench.restorer.net_g.get_submodule("downs.1")  # a layer half-way through the base network
    release = middle.register_forward_pre_hook(lambda *_: bench.request("s", photo, new))
    forwards = bench.restorer.stats["forward_calls"]
    try:
        assert list(frames) == []
    finally:
        release.remove()
    assert bench.restorer.stats["forward_calls"] == forwards + 1  # it had started, and did not finish

    # another page's request does not stop this one; the newest settings restore in full
    bench.request("other", photo, old)
    assert [f.kind for f in bench.render("s", photo, new)] == ["preview", "full"]


# ---------------------------------------------------------------------------------------------- command line
def test_cli_missing_checkpoint_is_one_line(capsys, tmp_path):
    assert app_main(["--model", str(tmp_path / "gone.ckpt")]) == 2
    assert_one_line_error(capsys.readouterr().err, f"--model '{tmp_path / 'gone.ckpt'}' does not exist")


def test_cli_without_a_model_opens_on_the_zoos_default(capsys, tmp_path, monkeypatch):
    from cugan_lightning.apps.app import _checkpoints, build_parser
    from cugan_lightning.zoo import default_model

    monkeypatch.chdir(tmp_path)  # no logs/ here: nothing trained, and nothing needed
    assert _checkpoints(build_parser().parse_args([])) == (f"zoo:{default_model()}", None)
    assert f"model: zoo:{default_model()}" in capsys.readouterr().out
    bench = Workbench(f"zoo:{default_model()}", workdir=tmp_path / "w")
    assert bench.describe_model().startswith(f"model `zoo:{default_model()}`")
    photo = bench.open_demo(DEMO_PHOTOS[0].label)
    assert f"--model zoo:{default_model()}" in bench.command(photo, bench.settings(photo.levels))
    assert app_main(["--gan", str(tmp_path)]) == 2
    assert "error: --gan" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- the real page
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    try:
        import gradio  # noqa: F401
    except ImportError:
        return "gradio is not installed (pip install -e '.[app]')"
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "no chromium / chromedriver on PATH (apt-get install chromium chromium-driver)"
    return None


def start_app(command: list[str], port: int, log: Path, **popen: object) -> tuple[subprocess.Popen, str]:
    """Start the app (``command``, its output into ``log``) and wait until it answers on ``port``: the process
    and the page's address; the test fails with the log's end when the app exits or stays silent for 3 minutes."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True, **popen)
    url = f"http://127.0.0.1:{port}/"
    reason = wait_until_answers(proc, url, log, 180)
    if reason is not None:
        pytest.fail(reason)
    return proc, url


@pytest.fixture(scope="module")
def server(ckpts, tmp_path_factory):
    """The app in its own process, as a person starts it, on a free port of 127.0.0.1."""
    reason = _browser_missing()
    if reason:
        print(f"skipping the browser test: {reason}")
        pytest.skip(reason)
    port = free_port()
    command = [sys.executable, "-m", "cugan_lightning.apps.app", "--model", str(ckpts["mse"])]
    command += ["--gan", str(ckpts["gan"]), "--port", str(port), "--device", "cpu"]
    command += ["--preview-side", "48", "--max-pixels", "20000"]
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc, url = start_app(command, port, log)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    from selenium import webdriver

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout: float = 120, what: str = "the page"):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except TimeoutException:
        page = {name: text_of(driver, name) for name in ("status", "message", "photo-info", "model-info")}
        raise AssertionError(f"timed out waiting for {what}; the page says {page}") from None


def text_of(driver, elem_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, elem_id).text


def shown(driver, elem_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return any(element.is_displayed() for element in driver.find_elements(By.ID, elem_id))


def output_src(driver) -> str | None:
    from selenium.webdriver.common.by import By

    images = driver.find_elements(By.CSS_SELECTOR, "#output img")
    return images[0].get_attribute("src") if images else None


def wait_for_result(driver, previous_src: str | None, what: str) -> str:
    """Wait until the output shows a new full-resolution result; returns its address. (The status line still says
    "Restored" from the previous result while a new preview shows: a preview's file is ``preview-*.png``.)"""

    def full_result(d) -> bool:
        src = output_src(d)
        return (
            src not in (None, previous_src)
            and "preview-" not in src
            and text_of(d, "status").startswith("Restored")
        )

    wait_for(driver, full_result, what=what)
    return output_src(driver)


def fetch_image(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=30) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())))


def slider_value(driver, name: str) -> float:
    from selenium.webdriver.common.by import By

    return float(
        driver.find_element(By.CSS_SELECTOR, f"#slider-{name} input[type=number]").get_attribute("value")
    )


def click_slider(driver, name: str, fraction: float) -> float:
    """Click the slider's track at ``fraction`` of its width, as a person would (press and release)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    track = driver.find_element(By.CSS_SELECTOR, f"#slider-{name} input[type=range]")
    offset = int((fraction - 0.5) * track.size["width"])
    ActionChains(driver).move_to_element_with_offset(track, offset, 0).click().perform()
    return slider_value(driver, name)


def upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    for clear in driver.find_elements(By.CSS_SELECTOR, "#upload button[aria-label=Clear]"):
        clear.click()  # the previous file leaves the box first, as a person would remove it
    field = wait_for(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"), 30, "upload"
    )
    field[0].send_keys(str(path))


def restored_by_api(ckpts, image, noise, blur, alpha) -> np.ndarray:
    restorer = load_restorer(ckpts["mse"], ckpts["gan"], device="cpu")
    return restorer.restore(image, blur=blur, noise=noise, alpha=alpha)


@pytest.mark.slow
def test_the_page_in_a_real_browser(server, browser, ckpts, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server)
    first = wait_for_result(browser, None, "the demo photograph's restoration")
    assert "chelsea" in text_of(browser, "photo-info")

    # upload a photo: it is larger than the preview side (48), so a preview shows first
    image = smooth_image(72, 96, seed=3)
    photo_path = save_png(image, tmp_path / "photo.png")
    upload(browser, photo_path)
    wait_for(browser, lambda d: "photo.png: 96x72" in text_of(d, "photo-info"), what="the upload")
    before_src = wait_for_result(browser, first, "the upload's restoration")
    before = fetch_image(before_src)
    # the sliders open at the photo's estimated levels, and the page says so
    estimates = load_restorer(ckpts["mse"], device="cpu").estimate(image, source=photo_path)
    estimated_noise = round(estimates["noise"].value)
    wait_for(
        browser, lambda d: slider_value(d, "noise") == estimated_noise, 30, "the sliders at the estimate"
    )
    wait_for(
        browser, lambda d: text_of(d, "estimate").startswith("Estimated from the photo: blur"), 30, "it said"
    )
    blur, alpha = slider_value(browser, "blur"), slider_value(browser, "alpha")
    np.testing.assert_array_equal(
        before, restored_by_api(ckpts, image, slider_value(browser, "noise"), blur, alpha)
    )

    # move the noise slider: the output changes and equals the Python API's result, pixel for pixel (8-bit PNG)
    noise = click_slider(browser, "noise", 0.15)
    assert noise != 30.0
    after_src = wait_for_result(browser, before_src, "the restoration after the slider move")
    after = fetch_image(after_src)
    assert after.shape == image.shape and not np.array_equal(after, before)
    expected = restored_by_api(ckpts, image, noise, blur, alpha)
    np.testing.assert_array_equal(after, expected)  # tolerance: none
    command = browser.find_element(By.CSS_SELECTOR, "#command textarea").get_attribute("value")
    assert f"--noise {noise:g}" in command and command.startswith("cugan-restore photo.png")
    browser.save_screenshot(str(tmp_path / "page.png"))

    # the download is the full-resolution result
    browser.find_element(By.ID, "download").click()
    target = browser.downloads / "photo_restored.png"
    wait_for(browser, lambda d: target.is_file() and target.stat().st_size > 0, 30, "the download")
    np.testing.assert_array_equal(read_image_raw(target), expected)

    # two quick moves: the page ends on the last position
    click_slider(browser, "noise", 0.9)
    last = click_slider(browser, "noise", 0.6)
    final_src = wait_for_result(browser, after_src, "the last slider position")
    wait_for(browser, lambda d: "Restored" in text_of(d, "status"), what="the final result")
    time.sleep(0.5)  # a stale result, if any, would land now
    final_src = output_src(browser)
    np.testing.assert_array_equal(fetch_image(final_src), restored_by_api(ckpts, image, last, blur, alpha))

    # Auto: the sliders go back to the estimate
    browser.find_element(By.ID, "auto").click()
    wait_for(browser, lambda d: slider_value(d, "noise") == estimated_noise, what="the Auto button")

    # bad input: a message on the page, and the page keeps working
    fake = tmp_path / "fake.png"
    fake.write_text("hello")
    upload(browser, fake)
    wait_for(
        browser, lambda d: "'fake.png': not an image" in text_of(d, "message"), what="the non-image message"
    )
    upload(browser, save_png(smooth_image(150, 150), tmp_path / "huge.png"))
    wait_for(
        browser, lambda d: "'huge.png' is 150x150 = 22,500 pixels" in text_of(d, "message"), what="the limit"
    )
    (accordion,) = [
        b for b in browser.find_elements(By.CSS_SELECTOR, "button.label-wrap") if b.text.startswith("Model")
    ]
    accordion.click()
    box = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#model textarea, #model input"))
    box.clear()
    box.send_keys(str(tmp_path / "missing.ckpt"))
    browser.find_element(By.ID, "load-model").click()
    wait_for(
        browser,
        lambda d: "missing.ckpt' does not exist" in text_of(d, "message"),
        what="the checkpoint message",
    )
    noise = click_slider(browser, "noise", 0.3)
    wait_for(browser, lambda d: text_of(d, "message") == "", what="the message to clear")
    src = wait_for_result(browser, final_src, "a restoration after the errors")
    np.testing.assert_array_equal(fetch_image(src), restored_by_api(ckpts, image, noise, blur, alpha))

    # another model from the Model panel: a JPEG factor and no GAN, so a JPEG slider shows and alpha goes
    box.clear()
    box.send_keys(str(ckpts["mse3"]))
    gan_box = browser.find_element(By.CSS_SELECTOR, "#gan textarea, #gan input")
    gan_box.send_keys(Keys.CONTROL, "a")
    gan_box.send_keys(Keys.DELETE)  # typed away, so the page hears it (clear() fires no input event)
    browser.find_element(By.ID, "load-model").click()
    wait_for(browser, lambda d: "mse3.ckpt" in text_of(d, "model-info"), what="the new model")
    wait_for(browser, lambda d: shown(d, "slider-jpeg") and not shown(d, "slider-alpha"), what="the sliders")
    src = wait_for_result(browser, src, "the new model's restoration")
    jpeg_model = load_restorer(ckpts["mse3"], device="cpu")
    expected = jpeg_model.restore(image, blur=blur, noise=noise, jpeg=slider_value(browser, "jpeg"))
    np.testing.assert_array_equal(fetch_image(src), expected)
    assert "--gan" not in browser.find_element(By.CSS_SELECTOR, "#command textarea").get_attribute("value")

    # nothing was fetched from anywhere but the app itself
    hosts = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            address = message["params"]["request"]["url"]
            if address.startswith(("http:", "https:", "ws:", "wss:")):
                hosts.add(address.split("/")[2])
    assert hosts == {server.split("/")[2]}
    browser.save_screenshot(str(tmp_path / "after_errors.png"))
    assert os.path.getsize(tmp_path / "page.png") > 10_000


@pytest.mark.slow
def test_painting_a_region_in_a_real_browser(server, browser, ckpts, tmp_path, monkeypatch):
    """Brush over the left of the photo in the page's editor and give it the top noise level: the region changes
    more than the rest, the map downloads as a 16-bit PNG, and the page's command (which names the map) writes the
    page's result, pixel for pixel."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from cugan_lightning.inference.maps import read_level_map

    browser.get(server)
    first = wait_for_result(browser, None, "the demo photograph's restoration")
    image = smooth_image(40, 48, seed=5)  # under the preview side: one full result per move
    upload(browser, save_png(image, tmp_path / "paint.png"))
    wait_for(browser, lambda d: "paint.png: 48x40" in text_of(d, "photo-info"), what="the upload")
    before = wait_for_result(browser, first, "the upload's restoration")
    uniform = fetch_image(before).astype(float)  # now: a page's earlier results are deleted once superseded
    (panel,) = [
        b for b in browser.find_elements(By.CSS_SELECTOR, "button.label-wrap") if b.text.startswith("Paint")
    ]
    panel.click()
    canvas = wait_for(
        browser,
        lambda d: [c for c in d.find_elements(By.CSS_SELECTOR, "#paint canvas") if c.size["width"] > 0],
    )
    time.sleep(1.0)  # the photo loads into the editor
    width = canvas[0].size["width"]
    chain = ActionChains(browser).move_to_element_with_offset(canvas[0], -width // 8, -60).click_and_hold()
    for _ in range(6):
        chain = chain.move_by_offset(0, 20)
    chain.release().perform()
    track = browser.find_element(By.CSS_SELECTOR, "#paint-level input[type=range]")
    ActionChains(browser).move_to_element_with_offset(
        track, track.size["width"] // 2 - 1, 0
    ).click().perform()
    level = float(
        browser.find_element(By.CSS_SELECTOR, "#paint-level input[type=number]").get_attribute("value")
    )
    assert level > 45  # the level slider's right end: the codec's maximum noise
    browser.find_element(By.ID, "apply-paint").click()
    after = wait_for_result(browser, before, "the restoration under the painted map")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#map-view img"), 30, "the map overlay")
    command = browser.find_element(By.CSS_SELECTOR, "#command textarea").get_attribute("value")
    assert "--map noise=paint_noise_map.png" in command and "--noise" not in command

    browser.find_element(By.ID, "map-download").click()
    target = browser.downloads / "paint_noise_map.png"
    wait_for(browser, lambda d: target.is_file() and target.stat().st_size > 0, 30, "the map download")
    noise = read_level_map(target, load_restorer(ckpts["mse"], device="cpu").codec, "noise")
    painted = np.abs(noise - level) < 0.01
    assert noise.shape == (40, 48) and 0 < painted.mean() < 0.8  # a region, not the whole photo
    assert painted[:, :24].sum() > painted[:, 24:].sum()  # where the brush went
    # the page's command, run where the photo and the downloaded map lie, writes the page's result
    shutil.copy(tmp_path / "paint.png", browser.downloads / "paint.png")
    monkeypatch.chdir(browser.downloads)
    parts = shlex.split(command)
    assert restore_main([parts[1], "-o", str(tmp_path / "cli.png"), *parts[4:]]) == 0
    np.testing.assert_array_equal(fetch_image(after), read_image_raw(tmp_path / "cli.png"))
    change = np.abs(fetch_image(after).astype(float) - uniform).mean(axis=2)
    assert change[painted].mean() > 3 * change[~painted].mean()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#split img"), 30, "the before / after view")
