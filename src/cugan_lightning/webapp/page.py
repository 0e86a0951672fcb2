"""The web page (Gradio): a photo, a slider per degradation factor (and alpha), the restored image beside the
input, a download of the full-resolution result and the restore command that reproduces it.

Events, and why they are wired so:

- A slider fires on release. Two listeners hear it: a quick one outside the queue tells the
  :class:`~cugan_lightning.webapp.workbench.Workbench` what the page now wants (a restoration of older settings
  still running then stops) and shows the command; the restoration itself runs in the queue, one at a time,
  with ``trigger_mode="always_last"``: while one runs, further releases of the page collapse into the latest.
- Uploading a photo, picking a demo photograph or loading another model restores right after.
- A problem (not an image, too many pixels, a missing checkpoint) shows in the message line and the page keeps
  what it had; the next successful action clears it. The server goes on either way.

Nothing is fetched from the internet: analytics are off, the theme uses the system's fonts, there are no share
links, and Gradio's scripts and styles are served by the app itself.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before Gradio is imported: no telemetry, no version check

import gradio as gr  # noqa: E402

from .paint_panel import build_paint_panel  # noqa: E402
from .service import MAX_SESSIONS, Service  # noqa: E402
from .workbench import DEMO_PHOTOS, Frame, Photo, Settings, Workbench  # noqa: E402

__all__ = ["LAUNCH_OPTIONS", "build_page", "launch"]

log = logging.getLogger(__name__)

TITLE = "CUGAN: interactive restoration"
IMAGE_HEIGHT = 420
DEFAULT_VALUES = {"blur": DEMO_PHOTOS[0].blur, "noise": DEMO_PHOTOS[0].noise, "jpeg": 0.0, "alpha": 0.5}
"""Where the sliders start before the first photo (any other factor at 0)."""
PAGE_FACTORS = ("blur", "noise", "jpeg")
"""Factors every page has a slider for, hidden where the model lacks them (so the page's handlers take the same
values for the two- and three-factor models); a model's other factors follow them."""
KEPT_WHEN_UNKNOWN = ("jpeg",)
"""Factors whose slider stays where it is when a new photo gives it no level (a PNG says nothing of JPEG); any
other factor without a level goes to 0."""
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
CSS = "#message { color: #b91c1c; } #input img, #output img { object-fit: contain !important; }"

LAUNCH_OPTIONS: dict[str, Any] = {
    "share": False,
    "inbrowser": False,
    "footer_links": [],
    "enable_monitoring": False,
    "ssr_mode": False,
    "mcp_server": False,
    "pwa": False,
    "run_history": False,
}
"""What keeps the page local: no share link, no monitoring endpoint, nothing rendered by an outside server."""

USER_ERRORS = (ValueError, OSError)
"""Problems the person at the page can fix (a file, a limit, a checkpoint); anything else is a bug."""


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, USER_ERRORS):
        return f"**Error:** {text}"
    log.error("error on the page", exc_info=err)
    return f"**Internal error:** {type(err).__name__}: {text} (the traceback is in the app's console)"


def slider_factors(workbench: Workbench) -> tuple[str, ...]:
    """The factors the page holds a slider for: the model's, in its codec's order, then those of
    :data:`PAGE_FACTORS` it lacks (hidden). Another model loaded on the page must have no other factor."""
    names = tuple(workbench.restorer.codec.names)
    return names + tuple(name for name in PAGE_FACTORS if name not in names)


def build_page(workbench: Workbench, service: Service | None = None) -> gr.Blocks:
    """The Gradio ``Blocks`` of the page, serving ``workbench``'s model; ``service`` sets the queue limit and the
    files' lifetime. Gradio's uploads go to the workbench's folder (set for the whole process, before any
    component is made), so the app serves one folder and results are never copied.

    The handlers take the slider values as one variable-length list: the factors of :func:`slider_factors` (the
    model's in codec order first), then alpha."""
    service = service or Service()
    os.environ["GRADIO_TEMP_DIR"] = str(Path(workbench.workdir).resolve())
    factor_names = slider_factors(workbench)
    slider_names = (*factor_names, "alpha")
    kept_names = (*(name for name in factor_names if name in KEPT_WHEN_UNKNOWN), "alpha")

    def slider_updates(values: dict[str, float] | None = None) -> list[Any]:
        """One update per slider: range, labels and visibility for the current model (and a value)."""
        specs = {spec.name: spec for spec in workbench.sliders()}
        updates = []
        for name in slider_names:
            spec = specs.get(name)
            if spec is None:
                updates.append(gr.Slider(visible=False))
                continue
            value = {"value": values[name]} if values and name in values else {}
            updates.append(
                gr.Slider(
                    minimum=spec.minimum,
                    maximum=spec.maximum,
                    step=spec.step,
                    label=spec.label,
                    info=spec.info,
                    visible=True,
                    **value,
                )
            )
        return updates

    def settings_of(*values: float) -> Settings:
        """Settings of the slider values: one per factor of ``factor_names``, then alpha."""
        *levels, alpha = values
        return workbench.settings(dict(zip(factor_names, levels, strict=True)), alpha)

    def command_of(photo: Photo | None, settings: Settings) -> str:
        return workbench.command(photo, settings) if photo is not None else ""

    def session_of(request: gr.Request) -> str:
        return request.session_hash or "local"

    # ------------------------------------------------------------------------------------------- handlers
    # Gradio passes the request to the parameter annotated gr.Request only before the variable-length values
    def note(request: gr.Request, photo: Photo | None, *values: float):
        settings = settings_of(*values)
        workbench.request(session_of(request), photo, settings)
        return command_of(photo, settings), ""

    def show(photo: Photo, settings: Settings, request: gr.Request) -> tuple[Any, ...]:
        """The values of the ``shown`` outputs: photo, display, description, command, message."""
        workbench.request(session_of(request), photo, settings)
        if photo.source is None:  # an upload's display (a demo photo's file is shared by every page)
            workbench.files.keep(session_of(request), "photo", photo.display)
        return photo, str(photo.display), workbench.describe(photo), command_of(photo, settings), ""

    def at_levels(photo: Photo, levels: Mapping[str, float], values: Sequence[float], request: gr.Request):
        """Show ``photo`` with the factor sliders at ``levels``; those not named go to 0, except the factors of
        :data:`KEPT_WHEN_UNKNOWN`, which keep their position in ``values`` (those sliders', then alpha)."""
        current = dict(zip(kept_names, values, strict=True))
        wanted = {name: levels.get(name, current.get(name, 0.0)) for name in factor_names}
        settings = settings_of(*wanted.values(), current["alpha"])
        snapped = dict(settings.levels)
        return (*show(photo, settings, request), *(snapped.get(n, wanted[n]) for n in factor_names))

    def estimate_text(estimates: Mapping[str, Any]) -> str:
        shown = "; ".join(str(e) for e in estimates.values())
        return f"Estimated from the photo: {shown}" if shown else ""

    def on_upload(request: gr.Request, path: str | None, *values: float):
        if path is None:  # the file was removed from the box
            return (gr.skip(),) * (len(shown) + len(factor_names) + 2)  # shown, the sliders, demo, estimate
        photo = workbench.open_upload(path)  # estimated: the sliders open at the estimate
        at_estimate = at_levels(photo, photo.levels, values, request)
        return (*at_estimate, None, estimate_text(photo.estimates))  # no demo photo chosen

    def on_auto(request: gr.Request, photo: Photo | None, *values: float):
        if photo is None:
            raise ValueError("upload a photo or pick a demo photograph first")
        estimates = photo.estimates or workbench.restorer.estimate(photo.array)
        levels = {name: e.value for name, e in estimates.items() if e.value is not None}
        return (*at_levels(photo, levels, values, request), estimate_text(estimates))

    def on_demo(request: gr.Request, label: str, *values: float):
        photo = workbench.open_demo(label)
        return (*at_levels(photo, photo.levels, values, request), "")

    def on_model(model: str, gan: str, photo: Photo | None, *values: float):
        workbench.load_model(model.strip(), gan.strip() or None, factors=factor_names)
        settings = settings_of(*values)
        current = dict(zip(slider_names, values, strict=True))
        return (*slider_updates(current), workbench.describe_model(), command_of(photo, settings), "")

    def on_load(request: gr.Request):
        photo = workbench.open_demo(DEMO_PHOTOS[0].label)
        values = {**dict.fromkeys(slider_names, 0.0), **DEFAULT_VALUES, **photo.levels}
        settings = settings_of(*(values[name] for name in slider_names))
        return (
            *show(photo, settings, request),
            *slider_updates(values),
            workbench.describe_model(),
            str(workbench.model),
            str(workbench.gan or ""),
        )

    def frame_outputs(frame: Frame) -> tuple[Any, Any, str]:
        height, width = frame.size
        if frame.kind == "preview":
            return (
                str(frame.display),
                gr.DownloadButton(label="Download (restoring the full resolution…)", interactive=False),
                f"Preview {width}x{height} in {frame.seconds:.1f} s; restoring the full resolution…",
            )
        return (
            str(frame.display),
            gr.DownloadButton(
                label=f"Download the result ({width}x{height} PNG)",
                value=str(frame.download),
                interactive=True,
            ),
            f"Restored {width}x{height} in {frame.seconds:.1f} s.",
        )

    def restore(request: gr.Request, photo: Photo | None, *values: float) -> Iterator[tuple[Any, ...]]:
        if photo is None:
            yield gr.skip(), gr.skip(), "Upload a photo or pick a demo photograph.", gr.skip()
            return
        try:
            for frame in workbench.render(session_of(request), photo, settings_of(*values)):
                yield (*frame_outputs(frame), gr.skip())
        except Exception as err:  # noqa: BLE001 - the page stays up and says what went wrong
            yield gr.skip(), gr.skip(), "Not restored.", _one_line(err)

    # ---------------------------------------------------------------------------------------------- layout
    specs = {spec.name: spec for spec in workbench.sliders()}
    every = min(60, service.keep_seconds)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(every, service.keep_seconds)) as page:
        gr.Markdown(
            f"## {TITLE}\nDrop a photo (or pick a demo photograph), then move the sliders to the degradation it "
            "shows; the restored image follows. Levels are in the physical units of the checkpoint's codec."
        )
        photo = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                upload = gr.File(label="Photo (drop an image here)", type="filepath", elem_id="upload")
                demo = gr.Dropdown(
                    choices=[d.label for d in DEMO_PHOTOS],
                    value=DEMO_PHOTOS[0].label,
                    label="…or a demo photograph (degraded at the levels named)",
                    elem_id="demo",
                )
                sliders = {}
                for name in slider_names:
                    spec = specs.get(name)
                    sliders[name] = gr.Slider(
                        minimum=spec.minimum if spec else 0.0,
                        maximum=spec.maximum if spec else 100.0,
                        step=spec.step if spec else None,
                        value=DEFAULT_VALUES.get(name, 0.0),
                        label=spec.label if spec else name,
                        info=spec.info if spec else None,
                        visible=spec is not None,
                        elem_id=f"slider-{name}",
                    )
                auto = gr.Button("Auto: the sliders to the photo's estimated levels", elem_id="auto")
                estimate = gr.Markdown(elem_id="estimate")
                status = gr.Markdown("Loading…", elem_id="status")
                message = gr.Markdown(elem_id="message")
                info = gr.Markdown(elem_id="photo-info")
            with gr.Column(scale=2):
                with gr.Row():
                    input_view = gr.Image(
                        label="input",
                        type="filepath",
                        interactive=False,
                        buttons=["download", "fullscreen"],  # a demo photo, for the command below
                        height=IMAGE_HEIGHT,
                        elem_id="input",
                    )
                    output_view = gr.Image(
                        label="restored",
                        type="filepath",
                        interactive=False,
                        buttons=["fullscreen"],
                        height=IMAGE_HEIGHT,
                        elem_id="output",
                    )
                download = gr.DownloadButton(
                    label="Download the result", interactive=False, elem_id="download"
                )
                command = gr.Textbox(
                    label="The same restoration from the command line",
                    lines=2,
                    interactive=False,
                    buttons=["copy"],
                    elem_id="command",
                )
        with gr.Accordion("Model", open=False):
            model_info = gr.Markdown(elem_id="model-info")
            with gr.Row():
                ckpt_box = gr.Textbox(label="model (the MSE end)", elem_id="model")
                gan_box = gr.Textbox(label="GAN model (optional: adds alpha)", elem_id="gan")
            load_model = gr.Button("Load model", elem_id="load-model")

        # ------------------------------------------------------------------------------------------ events
        levels = [sliders[name] for name in slider_names]
        restoration: dict[str, Any] = {
            "fn": restore,
            "inputs": [photo, *levels],
            "outputs": [output_view, download, status, message],
            "concurrency_limit": 1,
            "concurrency_id": "restore",
            "trigger_mode": "always_last",
            "show_progress": "minimal",
        }
        shown = [photo, input_view, info, command, message]

        def guarded(fn: Callable[..., Any], outputs: Sequence[Any]) -> Callable[..., Any]:
            """``fn`` whose errors go to the message line, every other output unchanged."""
            where = next(i for i, out in enumerate(outputs) if out is message)

            @functools.wraps(fn)  # Gradio reads the signature (the gr.Request parameter)
            def run(*args: Any, **kwargs: Any) -> Any:
                try:
                    return fn(*args, **kwargs)
                except Exception as err:  # noqa: BLE001 - the page stays up and says what went wrong
                    return tuple(_one_line(err) if i == where else gr.skip() for i in range(len(outputs)))

            return run

        def wire(trigger: Any, fn: Callable[..., Any], inputs: list[Any], outputs: list[Any]) -> Any:
            return trigger(guarded(fn, outputs), inputs, outputs).then(**restoration)

        releases = [slider.release for slider in levels]
        gr.on(
            releases,
            guarded(note, [command, message]),
            [photo, *levels],
            [command, message],
            queue=False,
            trigger_mode="multiple",
            show_progress="hidden",
        )
        gr.on(releases, **restoration)
        wire(page.load, on_load, [], [*shown, *levels, model_info, ckpt_box, gan_box])
        factors, kept = levels[:-1], [sliders[name] for name in kept_names]
        wire(upload.upload, on_upload, [upload, *kept], [*shown, *factors, demo, estimate])
        wire(auto.click, on_auto, [photo, *kept], [*shown, *factors, estimate])
        wire(demo.input, on_demo, [demo, *kept], [*shown, *factors, estimate])
        build_paint_panel(
            workbench, photo, levels, output_view, command, message, settings_of, command_of, wire
        )
        wire(
            load_model.click,
            on_model,
            [ckpt_box, gan_box, photo, *levels],
            [*levels, model_info, command, message],
        )

        def on_unload(request: gr.Request) -> None:  # the tab closed: its files and last result go
            workbench.forget(session_of(request))

        page.unload(on_unload)
    page.queue(default_concurrency_limit=1, max_size=service.concurrency)  # a full queue: "busy" on the page
    return page


def launch(
    page: gr.Blocks, workbench: Workbench, host: str, port: int, service: Service | None = None
) -> str:
    """Start serving ``page`` on ``host:port`` in the background (files from the workbench's folder only) and
    return the page's address; ``page.block_thread()`` then waits until Ctrl+C, ``page.close()`` stops it.
    ``service`` adds the login (its credentials); uploads stop at the workbench's byte limit."""
    service = service or Service()
    page.launch(
        auth=list(service.credentials) or None,
        max_file_size=workbench.max_upload_bytes,  # Gradio stops reading an upload past it (413)
        state_session_capacity=MAX_SESSIONS,
        server_name=host,
        server_port=port,
        quiet=True,
        allowed_paths=[str(Path(workbench.workdir).resolve())],
        prevent_thread_lock=True,
        theme=gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO),
        css=CSS,
        **LAUNCH_OPTIONS,
    )
    every = min(60, service.keep_seconds)

    def sweep() -> None:  # old files go even when no page event comes (a background thread of the server)
        while workbench.workdir.is_dir():
            time.sleep(every)
            workbench.files.sweep(service.keep_seconds)

    threading.Thread(target=sweep, name="cugan-app-sweep", daemon=True).start()
    return page.local_url
