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
import math
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data import load_embedded_image
from ..data.io import ImageReadError, image_header, read_image_raw, write_image
from ..degradations import degrade_fixed
from ..dni import check_alpha
from ..inference import (
    DEFAULT_TILE_OVERLAP,
    PREVIEW_SIDE,
    Restorer,
    check_tile,
    load_restorer,
    preview_size,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEMO_PHOTOS",
    "SLIDER_FACTORS",
    "DemoPhoto",
    "Frame",
    "Photo",
    "Settings",
    "SliderSpec",
    "Superseded",
    "Workbench",
]

DEFAULT_MAX_PIXELS = 4096 * 4096
"""Largest photo the page accepts by default (16.8 megapixels); ``--max-pixels`` changes it."""

SLIDER_FACTORS = {"blur": "blur σ (pixels)", "noise": "noise σ (0-255)", "jpeg": "JPEG quality (0: none)"}
"""The codec factors the page has sliders (and the restore command has flags) for, with their labels."""

ALPHA_STEP = 0.05


@dataclass(frozen=True)
class DemoPhoto:
    """An embedded photograph, degraded reproducibly (the evaluation's fixed degradation) at known levels."""

    name: str
    blur: float
    noise: float

    @property
    def label(self) -> str:
        return f"{self.name} (blur {self.blur:g}, noise {self.noise:g})"

    @property
    def file_name(self) -> str:
        return f"{self.name}_b{self.blur:g}_n{self.noise:g}.png"


# The validation photographs: the demo never trained on them.
DEMO_PHOTOS = (DemoPhoto("chelsea", 2.0, 30.0), DemoPhoto("coffee", 1.0, 15.0))


class Superseded(Exception):
    """A restoration stopped because its page asked for newer settings (or another photo) meanwhile."""


@dataclass(frozen=True)
class SliderSpec:
    """One slider of the page: a codec factor in physical units, or ``alpha``."""

    name: str
    label: str
    minimum: float
    maximum: float
    step: float
    info: str


@dataclass(frozen=True)
class Settings:
    """Slider positions made canonical (snapped to the slider steps), so that the page, the cache keys and the
    printed command all use the same numbers."""

    levels: tuple[tuple[str, float], ...]
    alpha: float | None

    def level(self, name: str) -> float:
        return dict(self.levels)[name]


@dataclass
class Photo:
    """A photo on the page: the pixels as read (uint8 / uint16, gray or RGB, with alpha or not) and its names."""

    array: np.ndarray
    name: str
    """File name shown on the page and in the command (an upload's own name)."""
    display: Path
    """An 8-bit PNG of the input for the browser."""
    source: Path | None = None
    """Where the restore command finds the photo (a demo photo written by the app); None: ``name``."""
    levels: dict[str, float] = field(default_factory=dict)
    """The true levels of a demo photo (the sliders start there)."""
    token: str = ""

    def describe(self) -> str:
        height, width = self.array.shape[:2]
        channels = 1 if self.array.ndim == 2 else self.array.shape[2]
        layout = {1: "gray", 2: "gray + alpha", 3: "RGB", 4: "RGBA"}[channels]
        bits = 16 if self.array.dtype == np.uint16 else 8
        return f"{self.name}: {width}x{height}, {bits}-bit {layout}"


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


def _display_png(array: np.ndarray, path: Path) -> Path:
    """An 8-bit PNG for the browser (quick to write: light compression)."""
    if array.dtype == np.uint16:
        array = np.round(array / 257.0).astype(np.uint8)
    Image.fromarray(array).save(path, format="PNG", compress_level=1)
    return path


def _snap(value: float, minimum: float, maximum: float, step: float) -> float:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    value = min(max(float(value), minimum), maximum)
    return round(round((value - minimum) / step) * step + minimum, decimals)


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
    ) -> None:
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
        preview_size(1, 1, preview_side)  # checks it
        if tile is not None:
            check_tile(tile, DEFAULT_TILE_OVERLAP)
        self.device = device
        self.max_pixels = max_pixels
        self.preview_side = preview_side
        self.tile = tile
        self._lock = threading.Lock()  # one restoration at a time: the network's weights are shared
        self._requests: dict[str, tuple[tuple, float]] = {}
        self._results: dict[str, tuple[tuple, Frame]] = {}
        self._files: dict[str, list[Path]] = {}
        self._count = itertools.count()
        self.model: Path
        self.gan: Path | None
        self.restorer: Restorer
        self.load_model(model, gan)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="cugan-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Remove the working folder when the workbench made it (a temporary one)."""
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------------------------------------ model
    def load_model(self, model: str | Path, gan: str | Path | None = None) -> None:
        """Serve another checkpoint (pair); on any error the current model stays.

        Raises FileNotFoundError for a missing file and ValueError (CheckpointError) for one that is not a
        usable generator, or whose factors the page has no slider for.
        """
        paths = [Path(model)] + ([Path(gan)] if gan else [])
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(
                    f"checkpoint '{path}' does not exist; give an existing .ckpt or .safetensors file "
                    "(`make demo` writes them under logs/)"
                )
        restorer = load_restorer(paths[0], paths[1] if gan else None, self.device)
        unknown = [name for name in restorer.codec.names if name not in SLIDER_FACTORS]
        if unknown:
            raise ValueError(
                f"'{paths[0]}' conditions on {list(restorer.codec.names)}; this page has sliders for "
                f"{', '.join(SLIDER_FACTORS)} only"
            )
        with self._lock:
            self.restorer = restorer
            self.model = paths[0].resolve()
            self.gan = paths[1].resolve() if gan else None
            self._results.clear()

    @property
    def has_gan(self) -> bool:
        return self.restorer.blender is not None

    def sliders(self) -> list[SliderSpec]:
        """The page's sliders for this model: one per codec factor, then alpha with a GAN checkpoint."""
        codec = self.restorer.codec
        specs = []
        for index, name in enumerate(codec.names):
            low, high, step = codec.slider(index)
            specs.append(SliderSpec(name, SLIDER_FACTORS[name], low, high, step, codec.describe(index)))
        if self.has_gan:
            specs.append(
                SliderSpec(
                    "alpha", "alpha (0: GAN, 1: MSE)", 0.0, 1.0, ALPHA_STEP, "DNI blend of the two models"
                )
            )
        return specs

    def settings(self, values: Mapping[str, float | None], alpha: float | None = None) -> Settings:
        """Slider values snapped to their steps (a factor left out or None is 0; alpha 0.5 when None)."""
        codec = self.restorer.codec
        levels = []
        for index, name in enumerate(codec.names):
            low, high, step = codec.slider(index)
            value = values.get(name)
            value = 0.0 if value is None else float(value)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
            levels.append((name, codec.snap(name, _snap(value, low, high, step))))
        if self.has_gan:
            alpha = check_alpha(_snap(0.5 if alpha is None else alpha, 0.0, 1.0, ALPHA_STEP))
        else:
            alpha = None
        return Settings(tuple(levels), alpha)

    def describe_model(self) -> str:
        codec = self.restorer.codec
        text = f"model `{self.model}` (factors: {', '.join(codec.names)})"
        if self.gan is not None:
            text += f", DNI with `{self.gan}`"
        return text

    # ----------------------------------------------------------------------------------------------- photos
    def _new_token(self, stem: str) -> str:
        return f"{next(self._count):04d}-{stem}"

    def open_upload(self, path: str | Path, name: str | None = None) -> Photo:
        """An uploaded file as a :class:`Photo`: ValueError (naming ``name``) for a file that is not an image or
        has more than ``max_pixels`` pixels (checked from the header, before decoding)."""
        path = Path(path)
        name = name or path.name
        try:
            width, height = image_header(path)
            if width * height > self.max_pixels:
                raise ValueError(
                    f"'{name}' is {width}x{height} = {width * height:,} pixels, more than this page's limit of "
                    f"{self.max_pixels:,}; shrink it, or start the app with --max-pixels {width * height}"
                )
            array = read_image_raw(path)
        except ImageReadError as err:
            raise ImageReadError(str(err).replace(f"'{path}'", f"'{name}'")) from None
        token = self._new_token(Path(name).stem)
        display = _display_png(array, self.workdir / f"input-{token}.png")
        return Photo(array=array, name=name, display=display, token=token)

    def open_demo(self, label: str) -> Photo:
        """A demo photograph (by its label or name), degraded at its levels and written as a PNG that the
        restore command can read."""
        demo = next((d for d in DEMO_PHOTOS if label in (d.label, d.name)), None)
        if demo is None:
            raise ValueError(
                f"unknown demo photograph '{label}'; choose from {[d.label for d in DEMO_PHOTOS]}"
            )
        clean = torch.from_numpy(load_embedded_image(demo.name)).permute(2, 0, 1).float() / 255.0
        degraded = degrade_fixed(clean, demo.blur, demo.noise, image_key=demo.name)
        array = np.ascontiguousarray((degraded.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
        source = self.workdir / demo.file_name
        if not source.is_file():
            write_image(array, source)
        token = self._new_token(demo.name)
        return Photo(
            array=array,
            name=demo.file_name,
            display=source,
            source=source,
            levels={"blur": demo.blur, "noise": demo.noise},
            token=token,
        )

    # -------------------------------------------------------------------------------------------- the command
    def output_name(self, photo: Photo) -> str:
        return f"{Path(photo.name).stem}_restored.png"

    def command(self, photo: Photo, settings: Settings) -> str:
        """The restore command line that writes the same full-resolution result as the page."""
        parts = ["cugan-restore", str(photo.source or photo.name)]
        parts += ["-o", self.output_name(photo), "--model", str(self.model)]
        if self.gan is not None:
            parts += ["--gan", str(self.gan), "--alpha", f"{settings.alpha:g}"]
        for name, value in settings.levels:
            parts += [f"--{name}", f"{value:g}"]
        if self.tile is not None:
            parts += ["--tile", str(self.tile)]
        parts += ["--device", self.restorer.device.type]
        return shlex.join(parts)

    # ------------------------------------------------------------------------------------------- restoring
    def request(self, session: str, photo: Photo | None, settings: Settings) -> None:
        """Note that ``session`` now wants ``settings`` on ``photo``: its older restorations still running stop."""
        self._requests[session] = ((photo.token if photo else None, settings), time.monotonic())

    def _superseded(self, session: str, key: tuple, started: float) -> bool:
        # Only a request made after this restoration started counts: its own request may arrive late.
        wanted = self._requests.get(session)
        return wanted is not None and wanted[1] > started and wanted[0] != key

    def _keep(self, session: str, *paths: Path) -> None:
        """Delete the files of ``session``'s previous restoration (the page has its own copies)."""
        for old in self._files.get(session, []):
            if old not in paths:
                old.unlink(missing_ok=True)
                if old.parent != self.workdir:
                    old.parent.rmdir()
        self._files[session] = list(paths)

    def render(self, session: str, photo: Photo, settings: Settings) -> Iterator[Frame]:
        """Restore ``photo`` under ``settings`` for ``session``: a preview first when the photo is larger than
        ``preview_side``, then the full result written as PNG (16-bit and alpha kept). Yields nothing more once
        a newer request of the session makes it stale; the same settings again give the last result at once."""
        key = (photo.token, settings)
        last = self._results.get(session)
        if last is not None and last[0] == key and last[1].display.is_file():
            yield replace(last[1], cached=True)
            return
        started = time.monotonic()

        def stale() -> bool:
            return self._superseded(session, key, started)

        restorer = self.restorer
        z = restorer.z_for(levels=dict(settings.levels))
        stem = f"{photo.token}-{next(self._count):05d}"
        try:
            if max(photo.array.shape[:2]) > self.preview_side:
                begin = time.perf_counter()
                with self._lock, _stoppable(restorer.net_g, stale):
                    small = restorer.preview_array(photo.array, z, settings.alpha, self.preview_side)
                path = _display_png(small, self.workdir / f"preview-{stem}.png")
                self._keep(session, path)
                yield Frame("preview", path, small.shape[:2], time.perf_counter() - begin)
            begin = time.perf_counter()
            with self._lock, _stoppable(restorer.net_g, stale):
                full = restorer.restore_array(photo.array, z, settings.alpha, self.tile)
        except Superseded:
            return
        path = self.workdir / stem / self.output_name(photo)
        path.parent.mkdir()
        write_image(full, path)
        frame = Frame("full", path, full.shape[:2], time.perf_counter() - begin, download=path)
        self._keep(session, path)
        self._results[session] = (key, frame)
        yield frame
