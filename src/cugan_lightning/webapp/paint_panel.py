"""The page's "Paint levels" panel (Gradio): a brush over the photo, the level its region gets, the map shown over
the photo, the estimator's map as a start, the map to download and to load again, and a before / after split
view. What each button does is :mod:`.painting`; a painted photo restores through the page's usual chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from .limits import check_size, check_upload
from .painting import MAP_FACTORS, auto_maps, clear_maps, load_map, overlay, paint, painted_mask, save_map
from .workbench import Photo, Workbench

__all__ = ["build_paint_panel"]


def build_paint_panel(
    workbench: Workbench,
    photo: gr.State,
    levels: list[Any],
    output_view: gr.Image,
    command: gr.Textbox,
    message: gr.Markdown,
    settings_of: Callable[..., Any],
    command_of: Callable[..., str],
    wire: Callable[..., Any],
) -> None:
    """Add the panel to the open ``Blocks`` and wire it (``levels``: the slider components in the page's order,
    whose values ``settings_of`` takes; ``wire(trigger, fn, inputs, outputs)`` runs ``fn`` then restores)."""
    names = [n for n in MAP_FACTORS if n in workbench.restorer.codec.names]
    with gr.Accordion(
        "Paint levels: a different blur or noise per region", open=False, elem_id="paint-panel"
    ):
        with gr.Row():
            editor = gr.ImageEditor(
                label="brush the region, then apply a level to it",
                type="numpy",
                brush=gr.Brush(default_size=24, colors=["#e02020"], color_mode="fixed"),
                layers=False,
                transforms=(),
                sources=(),
                height=360,
                elem_id="paint",
            )
            map_view = gr.Image(
                label="the map over the photo (red: the factor's maximum)", height=360, elem_id="map-view"
            )
        with gr.Row():
            factor = gr.Radio(
                names, value=names[-1] if names else None, label="factor", elem_id="paint-factor"
            )
            level = gr.Slider(
                0.0, 50.0, value=40.0, step=1.0, label="level of the painted region", elem_id="paint-level"
            )
        with gr.Row():
            apply = gr.Button(
                "Apply the level to the painted region", variant="primary", elem_id="apply-paint"
            )
            start = gr.Button("Start from the estimated map", elem_id="auto-map")
            clear = gr.Button("Clear the maps (back to the sliders)", elem_id="clear-maps")
        with gr.Row():
            download = gr.DownloadButton(
                "Download the map (16-bit PNG)", interactive=False, elem_id="map-download"
            )
            upload = gr.File(label="…or use a saved map", type="filepath", elem_id="map-upload")
        split = gr.ImageSlider(label="before / after", type="filepath", elem_id="split")

    def views(photo_now: Photo | None, name: str) -> tuple[Any, Any]:
        if photo_now is None or name not in photo_now.maps:
            return None, gr.DownloadButton(interactive=False)
        folder = workbench.workdir
        shown = overlay(
            photo_now,
            workbench.restorer,
            name,
            folder / f"overlay-{photo_now.token}-{photo_now.maps_version}.png",
        )
        saved = save_map(photo_now, workbench.restorer, name, folder)
        workbench.files.keep(photo_now.token, f"map-{name}", *(p for p in (shown, saved) if p is not None))
        return str(shown), gr.DownloadButton(value=str(saved), interactive=True)

    def changed(new: Photo, name: str, *values: float) -> tuple[Any, ...]:
        return (new, *views(new, name), command_of(new, settings_of(*values)), "")

    def on_apply(value: Any, photo_now: Photo | None, name: str, amount: float, *values: float):
        if photo_now is None:
            raise ValueError("upload a photo or pick a demo photograph first")
        mask = painted_mask(value, photo_now.array.shape[:2])
        if mask is None:
            raise ValueError("nothing is painted: brush over the region first")
        settings = settings_of(*values)
        return changed(paint(photo_now, workbench.restorer, settings, name, amount, mask), name, *values)

    def on_start(photo_now: Photo | None, name: str, *values: float):
        if photo_now is None:
            raise ValueError("upload a photo or pick a demo photograph first")
        return changed(auto_maps(photo_now, workbench.restorer), name, *values)

    def on_clear(photo_now: Photo | None, name: str, *values: float):
        return changed(clear_maps(photo_now), name, *values) if photo_now is not None else (gr.skip(),) * 5

    def on_upload(path: str | None, photo_now: Photo | None, name: str, *values: float):
        if path is None or photo_now is None:
            return (gr.skip(),) * 5
        file_name = path.rsplit("/", 1)[-1]
        if not file_name.lower().endswith(".npy"):  # an image map: the page's limits before decoding
            check_upload(path, file_name, workbench.max_upload_bytes, workbench.max_pixels)
        else:
            check_size(path, file_name, workbench.max_upload_bytes)
        return changed(load_map(photo_now, workbench.restorer, name, path, file_name), name, *values)

    def on_factor(photo_now: Photo | None, name: str):
        codec = workbench.restorer.codec
        low, high, step = codec.slider(codec.names.index(name))
        return (*views(photo_now, name), gr.Slider(minimum=low, maximum=high, step=step, value=high * 0.8))

    def on_photo(photo_now: Photo | None, name: str):
        if photo_now is None:
            return gr.skip(), gr.skip(), gr.skip()
        background = {"background": str(photo_now.display), "layers": [], "composite": None}
        return background, *views(photo_now, name)

    outputs = [photo, map_view, download, command, message]
    wire(apply.click, on_apply, [editor, photo, factor, level, *levels], outputs)
    wire(start.click, on_start, [photo, factor, *levels], outputs)
    wire(clear.click, on_clear, [photo, factor, *levels], outputs)
    wire(upload.upload, on_upload, [upload, photo, factor, *levels], outputs)
    factor.change(on_factor, [photo, factor], [map_view, download, level], queue=False)
    photo.change(on_photo, [photo, factor], [editor, map_view, download], queue=False)
    output_view.change(
        lambda p, out: (str(p.display), out) if p is not None and out else gr.skip(),
        [photo, output_view],
        split,
        queue=False,
    )
