"""What the web page does, free of Gradio: the model it serves, photos in, previews and results out, and the
restore command that reproduces a result.

One :class:`Workbench` serves every open page. It holds one :class:`~cugan_lightning.inference.Restorer` (so a
slider move recomputes only the condition weights, or the DNI blend for alpha) and runs one restoration at a
time under a lock. Each page (a Gradio session) tells it of every slider release as it happens
(:meth:`Workbench.request`); a restoration that a newer request of its page has made stale stops at the next
network layer (a forward pre-hook raises :class:`Superseded`), so dragging faster than the network runs
computes the latest position only. A large photo is restored as a preview first (long side at most
``preview_side``), then at full resolution.
"""

from __future__ import annotations

import itertools
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data import degraded_embedded_image
from ..data.io import ImageReadError, read_image_raw, to_uint8, write_image
from ..inference import (
    DEFAULT_TILE_OVERLAP,
    PREVIEW_SIDE,
    Restorer,
    check_tile,
    load_restorer,
    preview_size,
)
from ..inference.session import Settings, Sliders, SliderSpec, restore_in_steps
from ..zoo import is_zoo_reference
from .demos import DEMO_PHOTOS, DemoPhoto
from .files import SessionFiles
from .limits import DEFAULT_MAX_UPLOAD_MB, check_upload

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEMO_PHOTOS",
    "DemoPhoto",
    "Frame",
    "Photo",
    "Settings",
    "Superseded",
    "Workbench",
]

DEFAULT_MAX_PIXELS = 4096 * 4096
"""Largest photo the page accepts by default (16.8 megapixels); ``--max-pixels`` changes it."""


class Superseded(Exception):
    """A restoration stopped because its page asked for newer settings (or another photo) meanwhile."""


@dataclass
class Photo:
    """A photo on the page: the pixels as read (uint8 / uint16, gray or RGB, with alpha or not) and its names."""

    array: np.ndarray
    name: str
    """File name shown on the page and in the command (an upload's own name)."""
    display: Path
    """An 8-bit PNG of the input for the browser."""
    source: Path | None = None
    """The file the app wrote for a demo photo (the input view offers it for download); None for an upload."""
    levels: dict[str, float] = field(default_factory=dict)
    """Where the sliders start: a demo photo's true levels, an upload's blind estimate."""
    estimates: dict[str, Any] = field(default_factory=dict)
    """An upload's blind estimate per factor (:class:`~cugan_lightning.estimation.Estimate`), shown on the page."""
    token: str = ""
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    """Level maps ``(H, W)`` painted or loaded on the page (:mod:`.painting`); they replace those sliders."""
    maps_version: int = 0

    def describe(self, note: str | None = None) -> str:
        """Name, size, bits and layout; then ``note`` (how the photo meets the model: :meth:`Workbench.describe`)."""
        height, width = self.array.shape[:2]
        channels = 1 if self.array.ndim == 2 else self.array.shape[2]
        layout = {1: "gray", 2: "gray + alpha", 3: "RGB", 4: "RGBA"}[channels]
        bits = 16 if self.array.dtype == np.uint16 else 8
        return f"{self.name}: {width}x{height}, {bits}-bit {layout}" + (f"; {note}" if note else "")


@dataclass(frozen=True)
class Frame:
    """One image a restoration shows: a ``preview`` (shrunk) or the ``full`` result (with its download file)."""

    kind: str
    display: Path
    size: tuple[int, int]
    seconds: float
    download: Path | None = None
    cached: bool = False
    """The result the page already shows (the same settings again): nothing was computed."""


@contextmanager
def _stoppable(net: nn.Module, stop: Callable[[], bool]) -> Iterator[None]:
    """Raise :class:`Superseded` from the next layer ``net`` runs once ``stop()`` is true."""

    def check(module: nn.Module, args: object) -> None:
        if stop():
            raise Superseded

    handles = [module.register_forward_pre_hook(check) for module in net.modules()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _reference(model: str | Path) -> Path | str:
    """A model as the page keeps it: ``zoo:NAME`` as it is, a file as its absolute path."""
    return str(model) if is_zoo_reference(model) else Path(model).resolve()


def shown_path(path: Path | str) -> str:
    """A model as the page shows it: ``zoo:NAME``, or a file relative to the folder the app was started in
    when it lies below it (what the person typed), else as given."""
    if isinstance(path, str):
        return path
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def map_name(photo: Photo, factor: str) -> str:
    """What a map downloaded from the page is called, as the restore command names it."""
    return f"{Path(photo.name).stem}_{factor}_map.png"


def _display_png(array: np.ndarray, path: Path) -> Path:
    """An 8-bit PNG for the browser (quick to write: light compression)."""
    Image.fromarray(to_uint8(array)).save(path, format="PNG", compress_level=1)
    return path


class Workbench:
    """The model the page serves and everything a page event does with it.

    Args:
        model: the generator file (the MSE end of a DNI pair).
        gan: optional GAN model file; adds the alpha slider.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        max_pixels: the largest photo accepted (width x height).
        preview_side: photos with a longer side than this are shown as a preview of that size first.
        tile: restore the full result in tiles of this size (memory); the command then says ``--tile``.
        workdir: where photos and results are written (a new temporary folder by default).
        max_upload_mb: the largest upload accepted, in megabytes.
    """

    def __init__(
        self,
        model: str | Path,
        gan: str | Path | None = None,
        *,
        device: str | torch.device = "cpu",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        preview_side: int = PREVIEW_SIDE,
        tile: int | None = None,
        workdir: str | Path | None = None,
        precision: str = "auto",
        max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    ) -> None:
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
        preview_size(1, 1, preview_side)  # checks it
        if tile is not None:
            check_tile(tile, DEFAULT_TILE_OVERLAP)
        self.device = device
        self.precision = precision
        self.max_pixels = max_pixels
        self.preview_side = preview_side
        self.tile = tile
        self.max_upload_bytes = int(max_upload_mb * 2**20)
        self._lock = threading.Lock()  # one restoration at a time: the network's weights are shared
        self._requests: dict[str, tuple[tuple, float]] = {}
        self._results: dict[str, tuple[tuple, Frame]] = {}
        self._count = itertools.count()
        self.model: Path | str
        self.gan: Path | str | None
        self.restorer: Restorer
        self.load_model(model, gan)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="cugan-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.files = SessionFiles(self.workdir)

    def close(self) -> None:
        """Remove the working folder when the workbench made it (a temporary one)."""
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------------------------------------ model
    def load_model(
        self, model: str | Path, gan: str | Path | None = None, factors: Sequence[str] | None = None
    ) -> None:
        """Serve another checkpoint (pair); on any error the current model stays.

        Raises FileNotFoundError for a missing file and ValueError (CheckpointError) for one that is not a
        usable generator, or that conditions on a factor outside ``factors`` (the sliders a built page holds;
        None: any registered factor).
        """
        refs = [_reference(model)] + ([_reference(gan)] if gan else [])
        for given, ref in zip([model, gan], refs, strict=False):
            if isinstance(ref, Path) and not ref.is_file():
                raise FileNotFoundError(
                    f"checkpoint '{given}' does not exist; give an existing .ckpt or .safetensors file or zoo:NAME "
                    "(`make demo` writes checkpoints under logs/)"
                )
        restorer = load_restorer(refs[0], refs[1] if gan else None, self.device, self.precision)
        lacking = [name for name in restorer.codec.names if factors is not None and name not in factors]
        if lacking:
            raise ValueError(
                f"'{refs[0]}' conditions on {lacking[0]}; this page has sliders for {', '.join(factors)} only "
                "(start the app with this model to get one)"
            )
        sliders = Sliders(restorer)
        with self._lock:
            self.restorer = restorer
            self._sliders = sliders
            self.model = refs[0]
            self.gan = refs[1] if gan else None
            self._results.clear()

    @property
    def has_gan(self) -> bool:
        return self.restorer.blender is not None

    def sliders(self) -> list[SliderSpec]:
        """The page's sliders for this model: one per codec factor, then alpha with a GAN model."""
        return self._sliders.specs()

    def settings(self, values: Mapping[str, float | None], alpha: float | None = None) -> Settings:
        """Slider values snapped to their steps and clamped to their ranges (a factor left out or None is 0;
        alpha 0.5 when None); values of factors this model lacks are ignored."""
        names = self.restorer.codec.names  # the page holds a slider for every factor; hidden ones are ignored
        own = {name: value for name, value in values.items() if name in names}
        return self._sliders.settings(own, alpha if self.has_gan else None, clamp=True)

    def describe_model(self) -> str:
        codec = self.restorer.codec
        gray = ", gray" if self.restorer.channels == 1 else ""
        text = f"model `{shown_path(self.model)}` (factors: {', '.join(codec.names)}{gray})"
        if self.gan is not None:
            text += f", DNI with `{shown_path(self.gan)}`"
        return text

    # ----------------------------------------------------------------------------------------------- photos
    def _new_token(self, stem: str) -> str:
        return f"{next(self._count):04d}-{stem}"

    def open_upload(self, path: str | Path, name: str | None = None) -> Photo:
        """An uploaded file as a :class:`Photo`: ValueError (naming ``name``) for a file that is not an image or
        has more than ``max_pixels`` pixels (checked from the header, before decoding) or breaks a limit of
        :func:`~.limits.check_upload` (bytes, image kind, TIFF pages)."""
        path = Path(path)
        name = name or path.name
        check_upload(path, name, self.max_upload_bytes, self.max_pixels)
        try:
            array = read_image_raw(path)
        except ImageReadError as err:
            raise ImageReadError(str(err).replace(f"'{path}'", f"'{name}'")) from None
        token = self._new_token(Path(name).stem)
        display = _display_png(array, self.workdir / f"input-{token}.png")
        found = self.restorer.estimate(array, source=path)  # the sliders open at the estimate
        levels = {factor: e.value for factor, e in found.items() if e.value is not None}
        return Photo(array, name, display, token=token, levels=levels, estimates=found)

    def describe(self, photo: Photo) -> str:
        """The photo's line on the page, with how it meets the model served now (a gray model and a colour photo,
        or the reverse), so that it follows a change of model."""
        return photo.describe(self.restorer.channel_note(photo.array))

    def open_demo(self, label: str) -> Photo:
        """A demo photograph (by its label or name), degraded at its levels and written as a PNG that the
        restore command can read."""
        demo = next((d for d in DEMO_PHOTOS if label in (d.label, d.name)), None)
        if demo is None:
            raise ValueError(
                f"unknown demo photograph '{label}'; choose from {[d.label for d in DEMO_PHOTOS]}"
            )
        gray = self.restorer.channels == 1  # a gray model's demo is degraded in gray, at its true levels
        _, array = degraded_embedded_image(demo.name, demo.blur, demo.noise, channels=self.restorer.channels)
        source = self.workdir / (demo.file_name.replace(".png", "_gray.png") if gray else demo.file_name)
        if not source.is_file():
            write_image(array, source)
        token = self._new_token(demo.name)
        return Photo(
            array=array,
            name=source.name,
            display=source,
            source=source,
            levels={"blur": demo.blur, "noise": demo.noise},
            token=token,
        )

    # -------------------------------------------------------------------------------------------- the command
    def output_name(self, photo: Photo) -> str:
        return f"{Path(photo.name).stem}_restored.png"

    def command(self, photo: Photo, settings: Settings) -> str:
        """The restore command line that writes the same full-resolution result as the page, run in the folder
        that holds the photo: it names the photo by its own file name (an upload's, or the demo photo's as
        downloaded from the input view), never a path on the server, and the models as :func:`shown_path` does."""
        parts = ["cugan-restore", photo.name]
        parts += ["-o", self.output_name(photo), "--model", shown_path(self.model)]
        if self.gan is not None:
            parts += ["--gan", shown_path(self.gan), "--alpha", f"{settings.alpha:g}"]
        for name, value in settings.levels:  # a painted factor is its map file, as downloaded from the page
            parts += (
                [f"--{name}", f"{value:g}"]
                if name not in photo.maps
                else ["--map", f"{name}={map_name(photo, name)}"]
            )
        if self.tile is not None:
            parts += ["--tile", str(self.tile)]
        if self.precision != "auto":
            parts += ["--precision", self.precision]
        parts += ["--device", self.restorer.device.type]
        return shlex.join(parts)

    # ------------------------------------------------------------------------------------------- restoring
    def request(self, session: str, photo: Photo | None, settings: Settings) -> None:
        """Note that ``session`` now wants ``settings`` on ``photo``: its older restorations still running stop."""
        key = (photo.token, photo.maps_version, settings) if photo else (None, 0, settings)
        self._requests[session] = (key, time.monotonic())

    def _superseded(self, session: str, key: tuple, started: float) -> bool:
        # Only a request made after this restoration started counts: its own request may arrive late.
        wanted = self._requests.get(session)
        return wanted is not None and wanted[1] > started and wanted[0] != key

    def forget(self, session: str) -> None:
        """Drop what ``session`` left behind (its page closed): its files, its last request and result."""
        self._requests.pop(session, None)
        self._results.pop(session, None)
        self.files.forget(session)

    def render(self, session: str, photo: Photo, settings: Settings) -> Iterator[Frame]:
        """Restore ``photo`` under ``settings`` for ``session``: a preview first when the photo is larger than
        ``preview_side``, then the full result written as PNG (16-bit and alpha kept). Yields nothing more once
        a newer request of the session makes it stale; the same settings again give the last result at once."""
        key = (photo.token, photo.maps_version, settings)
        last = self._results.get(session)
        if last is not None and last[0] == key and last[1].display.is_file():
            yield replace(last[1], cached=True)
            return
        started = time.monotonic()

        def stale() -> bool:
            return self._superseded(session, key, started)

        sliders = self._sliders
        restorer = sliders.restorer

        @contextmanager
        def guard() -> Iterator[None]:  # one network run at a time; a stale one stops at its next layer
            with self._lock, _stoppable(restorer.net_g, stale):
                yield

        stem = f"{photo.token}-{next(self._count):05d}"
        steps = restore_in_steps(
            restorer, photo.array, restorer.with_maps(photo.array, sliders.z(settings), photo.maps), settings.alpha,
            preview_side=self.preview_side, tile=self.tile, guard=guard,
        )  # fmt: skip
        try:
            for step in steps:
                if step.kind == "preview":
                    path = _display_png(step.array, self.workdir / f"preview-{stem}.png")
                    self.files.keep(session, "result", path)
                    yield Frame("preview", path, step.array.shape[:2], step.seconds)
                else:
                    full = step
        except Superseded:
            return
        path = self.workdir / stem / self.output_name(photo)
        path.parent.mkdir()
        write_image(full.array, path)
        frame = Frame("full", path, full.array.shape[:2], full.seconds, download=path)
        self.files.keep(session, "result", path)
        self._results[session] = (key, frame)
        yield frame
