"""Interactive modulation: the logic behind ``notebooks/interactive_modulation.ipynb``, importable and testable.

A :class:`ModulationSession` holds one degraded image and a :class:`~cugan_lightning.inference.Restorer` and
recomputes only what a slider move needs: a blur / noise move evaluates the condition network for the new ``z``
(cached per ``(alpha, z)``), an alpha move re-blends the DNI pair in place (C_G is blended too, so the condition
weights of the new alpha are computed, or taken from the cache), and every new setting runs the base network once.
``stats`` counts each of the three, and :meth:`ModulationSession.widgets` wires ipywidgets sliders to
:meth:`ModulationSession.set`. For a large image :meth:`ModulationSession.preview` restores it shrunk first (the
widgets show that, then the full-resolution result). Slider positions, their snapping and the preview-first
steps are :mod:`cugan_lightning.inference.session`, which the web page shares.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .data import degraded_embedded_image
from .data.io import read_image_raw, to_uint8
from .dni import ALPHA_HELP
from .estimation import Estimate
from .inference import PREVIEW_SIDE, Restorer, load_restorer
from .inference.session import ALPHA_STEP, Settings, Sliders, restore_in_steps

__all__ = ["DEFAULT_DEGRADATION", "ModulationSession", "default_image"]

DEFAULT_IMAGE = "chelsea"
DEFAULT_DEGRADATION = (2.0, 30.0)
"""(blur sigma, noise sigma) of the default demo input: one of the paper's settings."""


def default_image(
    blur: float = DEFAULT_DEGRADATION[0],
    noise: float = DEFAULT_DEGRADATION[1],
    crop: int | None = 256,
    channels: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """The embedded "chelsea" photo (center ``crop`` square) and its degraded copy, both uint8 ``(H, W, 3)``
    (``(H, W)`` for ``channels=1``: degraded in gray, as a gray model's inputs are).

    The degradation is the fixed evaluation one (blur, then noise, then 8-bit quantisation) with a fixed seed.
    """
    return degraded_embedded_image(DEFAULT_IMAGE, blur, noise, channels=channels, crop=crop)


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(array)).save(buffer, format="PNG")
    return buffer.getvalue()


class ModulationSession:
    """One degraded image restored under slider-controlled conditions.

    Args:
        model: the generator file (the MSE end of a DNI pair).
        gan: optional GAN model file; enables the alpha slider.
        image: a numpy array / PIL image / image path, whose sliders open at its blind estimate (``estimates``,
            docs/estimation.md); default: the embedded photo degraded at :data:`DEFAULT_DEGRADATION` (the
            sliders then start at the true levels).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        alpha: starting DNI weight with a GAN checkpoint (0 = GAN, 1 = MSE).
        preview_side: the widgets show a preview of at most this many pixels on the long side before the
            full-resolution result, for images larger than that (None: never).
        precision: ``auto`` (bfloat16 where it is native), ``float32`` or ``bf16``, as :class:`Restorer`.
    """

    def __init__(
        self,
        model: str | Path,
        gan: str | Path | None = None,
        image: np.ndarray | Image.Image | str | Path | None = None,
        device: str | torch.device = "cpu",
        *,
        alpha: float = 0.5,
        crop: int | None = 256,
        preview_side: int | None = PREVIEW_SIDE,
        precision: str = "auto",
    ) -> None:
        self.restorer: Restorer = load_restorer(model, gan, device, precision)
        self.sliders = Sliders(self.restorer)
        self.preview_side = preview_side
        self.codec = self.restorer.codec
        self.clean: np.ndarray | None = None
        start: dict[str, float | None] = {}
        if image is None:
            channels = self.restorer.channels  # a gray model's photo is degraded in gray, at its true levels
            self.clean, self.image = default_image(*DEFAULT_DEGRADATION, crop=crop, channels=channels)
            start = {
                n: v
                for n, v in zip(("blur", "noise"), DEFAULT_DEGRADATION, strict=True)
                if n in self.codec.names
            }
        elif isinstance(image, (str, Path)):
            self.image = read_image_raw(image)
        elif isinstance(image, Image.Image):
            self.image = np.asarray(image.convert("RGBA" if "A" in image.mode else "RGB"))
        else:
            self.image = np.asarray(image)
        self.estimates: dict[str, Estimate] = {}
        if image is not None:  # a photo of unknown degradation: the sliders open at its blind estimate
            source = image if isinstance(image, (str, Path, Image.Image)) else None
            self.estimates = self.restorer.estimate(self.image, source=source)
            start = {name: e.value for name, e in self.estimates.items() if e.value is not None}
        self.current: Settings = self.sliders.settings(start, alpha if self.has_gan else None, clamp=True)
        self._last: tuple[Settings, np.ndarray] | None = None
        self.controls: dict[str, Any] = {}
        self.maps: dict[str, Any] = {}
        """Level maps ``(H, W)`` by factor that replace those sliders' levels (:meth:`set_maps`)."""

    @property
    def stats(self) -> dict[str, int]:
        """``condition_calls``, ``blend_calls`` and ``forward_calls`` so far."""
        return self.restorer.stats

    @property
    def has_gan(self) -> bool:
        return self.restorer.blender is not None

    @property
    def levels(self) -> dict[str, float]:
        """The factor sliders' positions (physical units)."""
        return dict(self.current.levels)

    @property
    def alpha(self) -> float | None:
        """The alpha slider's position (None without a GAN model)."""
        return self.current.alpha

    def _move(self, blur: float | None, noise: float | None, alpha: float | None, levels: dict) -> Settings:
        """The slider positions after a move (None leaves one where it is), validated before anything changes."""
        return self.sliders.settings({"blur": blur, "noise": noise, **levels}, alpha, current=self.current)

    def set(
        self,
        blur: float | None = None,
        noise: float | None = None,
        alpha: float | None = None,
        **levels: float,
    ) -> np.ndarray:
        """Move any sliders (physical units; None leaves one where it is) and return the restored image.

        Returns the same layout and dtype as the input image. Only what changed is recomputed; an unchanged
        setting returns the previous result without running the network.
        """
        *_, full = self._steps(self._move(blur, noise, alpha, levels), preview_side=None)
        return full

    def auto(self) -> np.ndarray:
        """The sliders moved to the image's blind estimate (docs/estimation.md), and the restored image."""
        self.estimates = self.estimates or self.restorer.estimate(self.image)
        return self.set(**{name: e.value for name, e in self.estimates.items() if e.value is not None})

    def set_maps(self, maps: Mapping[str, Any] | None) -> np.ndarray:
        """Give blur and / or noise as level maps ``(H, W)`` in physical units (docs/restore.md, "Level maps"),
        e.g. ``session.set_maps(session.restorer.estimate_maps(session.image))`` to start from the estimator's
        map, then paint on it; those sliders no longer apply while a map is set. None clears them. A bad map is a
        ValueError and changes nothing. Returns the restored image."""
        maps = dict(maps or {})
        self.restorer.with_maps(
            self.image, self.sliders.z(self.current), maps
        )  # checked before anything changes
        self.maps, self._last = maps, None
        return self.set()

    def _steps(self, settings: Settings, preview_side: int | None) -> Iterator[np.ndarray]:
        """The images a move to ``settings`` shows: the cached result when nothing changed, else a preview
        first (images longer than ``preview_side``), then the full result, which becomes the current one."""
        if self._last is None or self._last[0] != settings:
            z = self.restorer.with_maps(self.image, self.sliders.z(settings), self.maps)
            for step in restore_in_steps(
                self.restorer, self.image, z, settings.alpha, preview_side=preview_side
            ):
                if step.kind == "full":
                    self._last = (settings, step.array)
                else:
                    yield step.array
        self.current = settings
        yield self._last[1]

    def preview(
        self,
        blur: float | None = None,
        noise: float | None = None,
        alpha: float | None = None,
        max_side: int | None = None,
        **levels: float,
    ) -> np.ndarray:
        """A quick look at what :meth:`set` with the same arguments returns: the image shrunk so that its long
        side is at most ``max_side`` pixels (default ``preview_side``), restored (blur and noise levels scaled
        with it, see :meth:`Restorer.preview_tensor`). The sliders do not move; :meth:`set` gives the full result.
        """
        settings = self._move(blur, noise, alpha, levels)
        max_side = max_side or self.preview_side or PREVIEW_SIDE
        z = self.restorer.with_maps(self.image, self.sliders.z(settings), self.maps)
        return self.restorer.preview_array(self.image, z, settings.alpha, max_side)

    def needs_preview(self) -> bool:
        """Whether the image is larger than ``preview_side`` (the widgets then show a preview first)."""
        return self.preview_side is not None and max(self.image.shape[:2]) > self.preview_side

    def output(self) -> np.ndarray:
        """The restoration at the current slider positions."""
        return self.set()

    def widgets(self) -> Any:
        """ipywidgets controls: one slider per codec factor (physical units), alpha, and input / output images.

        Sliders update on release (``continuous_update=False``): on a CPU one restoration can take a second.
        On an image larger than ``preview_side`` a move shows a preview first, then the full result.
        The widgets are also kept in ``self.controls`` by name (``blur``, ``noise``, ``alpha``, ``output``, ...).
        """
        import ipywidgets as widgets

        rows = []
        sliders: dict[str, Any] = {}
        for spec in self.sliders.specs():
            if spec.name == "alpha":
                continue
            name, step = spec.name, spec.step
            slider = widgets.FloatSlider(
                value=self.levels[name],
                min=spec.minimum,
                max=spec.maximum,
                step=step,
                description=name,
                readout_format=".1f" if step < 1 else ".0f",
                continuous_update=False,
                style={"description_width": "70px"},
                layout=widgets.Layout(width="420px"),
            )
            sliders[name] = slider
            rows.append(widgets.HBox([slider, widgets.Label(f"{spec.label}: {spec.info}")]))
        alpha_slider = widgets.FloatSlider(
            value=self.alpha if self.alpha is not None else 1.0,
            min=0.0,
            max=1.0,
            step=ALPHA_STEP,
            description="alpha",
            readout_format=".2f",
            continuous_update=False,
            disabled=not self.has_gan,
            style={"description_width": "70px"},
            layout=widgets.Layout(width="420px"),
        )
        alpha_note = ALPHA_HELP if self.has_gan else "needs a GAN checkpoint"
        rows.append(widgets.HBox([alpha_slider, widgets.Label(f"DNI: {alpha_note}")]))

        input_view = widgets.Image(value=_png_bytes(self.image), format="png")
        output_view = widgets.Image(value=_png_bytes(self.output()), format="png")
        status = widgets.Label()

        def show_stats() -> None:
            status.value = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in self.stats.items())

        def on_change(_: Any = None) -> None:
            values = {name: slider.value for name, slider in sliders.items()}
            alpha = alpha_slider.value if self.has_gan else None
            settings = self.sliders.settings(values, alpha, current=self.current, clamp=True)
            for image in self._steps(settings, self.preview_side):
                output_view.value = _png_bytes(image)
            show_stats()

        for slider in (*sliders.values(), alpha_slider):
            slider.observe(on_change, names="value")
        show_stats()
        views = [
            widgets.VBox([widgets.Label("input"), input_view]),
            widgets.VBox([widgets.Label("restored"), output_view]),
        ]
        if self.clean is not None:
            views.append(
                widgets.VBox([widgets.Label("ground truth"), widgets.Image(value=_png_bytes(self.clean))])
            )
        self.controls = {
            **sliders,
            "alpha": alpha_slider,
            "input": input_view,
            "output": output_view,
            "status": status,
        }
        return widgets.VBox([*rows, widgets.HBox(views), status])
