"""``cugan-restore``: restore image files with a generator file (and a DNI pair)::

    cugan-restore photo.png -o restored.png --model mse.ckpt --blur 2 --noise 30
    cugan-restore photos/ -o out/ --model mse.ckpt --gan gan.ckpt --alpha 0.3 --noise 25
    cugan-restore photo.jpg -o restored.png --auto                 # levels estimated from the photo
    cugan-restore photo.png -o grid.png --model mse.ckpt --gan gan.ckpt --sweep
    cugan-restore photo.png -o restored.png --blur 1 --map noise=noise.png    # a level per pixel (docs/restore.md)

Every input and output is checked before anything is written, and each output is written atomically, so a bad
input means no output at all. The restoration itself is :class:`cugan_lightning.inference.Restorer`.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data.io import (
    OUTPUT_FORMATS,
    check_writable_as,
    list_images,
    read_image_raw,
    write_image,
)
from ..data.layouts import split_channels
from ..degradations import GRID_FACTORS, lookup
from ..figures import render_rows, save_png, slider_rows
from ..inference import DEFAULT_TILE_OVERLAP, MIN_TILE, Restorer, check_tile, load_restorer, resolve_device
from ..inference.images import model_input
from ..inference.maps import MapError, check_maps, read_level_map, read_z_map
from .common import (
    CliArgumentParser,
    CliError,
    add_device_arguments,
    add_model_arguments,
    check_model_arguments,
    check_output_path,
    keep_freed_memory,
    run_cli,
)

FACTORS = GRID_FACTORS
"""A ``--<factor>`` flag for every registered factor (blur, noise, jpeg, poisson, motion, ...)."""


def build_parser() -> CliArgumentParser:
    parser = CliArgumentParser(
        prog="cugan-restore",
        description="Restore images with a CUnet / CUGAN checkpoint under chosen degradation levels "
        "(and, with a GAN checkpoint, a chosen MSE-to-GAN balance).",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files and/or folders")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, help="output file (one input) or folder (created)"
    )
    add_model_arguments(parser, required=False)
    for name in FACTORS:  # one flag per registered factor; a model refuses the ones it lacks, by name
        factor = lookup(name)()
        parser.add_argument(
            f"--{name}",
            type=_level,
            metavar="Q" if name == "jpeg" else "LEVEL",
            help=f"{factor.unit} of the input (models with a {name} factor; default range "
            f"{factor.describe().replace('%', '%%')}), or auto",
        )
    parser.add_argument(
        "--auto",
        action="store_true",
        help="estimate every level not given from each image (printed; docs/estimation.md)",
    )
    parser.add_argument(
        "--estimator",
        default="auto",
        metavar="FILE",
        help="the learned level estimator (a file or zoo:NAME; default: the zoo's one for the model's codec)",
    )
    parser.add_argument("--z", type=float, nargs="+", metavar="Z", help="raw condition vector in [0, 1]")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FACTOR=FILE",
        help="a level per pixel for blur or noise: a gray 16-bit PNG / TIFF spanning the factor's range, a float "
        "TIFF or .npy of levels, or auto (the estimator's map); replaces that factor's level",
    )
    parser.add_argument(
        "--z-map", type=Path, metavar="FILE", help="levels of every factor per pixel: a .npy (D, H, W)"
    )
    parser.add_argument(
        "--tile", type=int, help=f"restore in tiles of this size (>= {MIN_TILE}) to save memory"
    )
    parser.add_argument(
        "--tile-overlap", type=int, default=DEFAULT_TILE_OVERLAP, help="overlap of neighbouring tiles"
    )
    add_device_arguments(parser)
    parser.add_argument("--ext", default="png", help="output extension when -o is a folder (default png)")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="write a modulation grid (one row per slider) instead of one result",
    )
    return parser


def _level(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got '{text}'") from None


@dataclass
class _Job:
    source: Path
    target: Path


def _expand_inputs(inputs: Sequence[Path]) -> tuple[list[Path], bool]:
    """Input files (folders expanded, top level only) and whether any folder was given."""
    files: list[Path] = []
    any_folder = False
    for item in inputs:
        if item.is_dir():
            any_folder = True
            files.extend(list_images(item))
        elif item.is_file():
            files.append(item)
        else:
            raise CliError(f"input '{item}' does not exist")
    seen: set[Path] = set()
    unique = []
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique, any_folder


def _plan(args: argparse.Namespace, files: list[Path], any_folder: bool) -> list[_Job]:
    output: Path = args.output
    ext = "png" if args.sweep else args.ext.lower().lstrip(".")
    if f".{ext}" not in OUTPUT_FORMATS:
        raise CliError(
            f"unsupported --ext '{args.ext}'; use one of {', '.join(e[1:] for e in OUTPUT_FORMATS)}"
        )
    folder_mode = len(files) > 1 or any_folder or output.is_dir() or output.suffix == ""
    if not folder_mode:
        if args.sweep and output.suffix.lower() != ".png":
            raise CliError(f"a sweep is written as PNG; give an output ending in .png, not '{output}'")
        jobs = [_Job(files[0], output)]
    else:
        if output.suffix.lower() in OUTPUT_FORMATS and not output.is_dir():
            raise CliError(
                f"-o '{output}' looks like a file but there are {len(files)} inputs; give a folder"
            )
        if output.exists() and not output.is_dir():
            raise CliError(f"-o '{output}' exists and is not a folder")
        jobs = [_Job(file, output / f"{file.stem}.{ext}") for file in files]
    targets: dict[Path, Path] = {}
    sources = {job.source.resolve() for job in jobs}
    for job in jobs:
        key = job.target.resolve()
        if key in targets:
            raise CliError(
                f"inputs '{targets[key]}' and '{job.source}' would both be written to '{job.target}'"
            )
        if key in sources:
            raise CliError(f"output '{job.target}' would overwrite an input image")
        targets[key] = job.source
        check_output_path(job.target)
    return jobs


KEEP_DECODED_BYTES = 1 << 30


def _run(args: argparse.Namespace) -> None:
    keep_freed_memory()
    # 1. arguments that need no file
    check_model_arguments(args, alpha_needed=not args.sweep)  # a sweep has a row over alpha
    fixed = {n: getattr(args, n) for n in FACTORS if getattr(args, n) not in (None, "auto")}
    asked_auto = {n for n in FACTORS if getattr(args, n) == "auto"}
    if args.z is not None and (fixed or asked_auto or args.auto):
        raise CliError(
            "give either levels (--blur / --noise / --jpeg ..., physical units, or auto) or --z, not both"
        )
    map_files = _map_arguments(args)
    if map_files and args.sweep:
        raise CliError("--sweep moves one level over the whole image; it takes no --map / --z-map")
    if args.z is None and not (fixed or asked_auto or args.auto or args.sweep or map_files):
        raise CliError(
            "give the input's degradation: --blur SIGMA, --noise SIGMA (and --jpeg QUALITY), --auto to estimate "
            "them, or --z Z..."
        )
    for name, value in fixed.items():
        if not math.isfinite(value):
            raise CliError(f"--{name} must be a finite number, got {value}")
    if args.tile is not None:
        check_tile(args.tile, args.tile_overlap)
    device = resolve_device(args.device)

    # 2. inputs and outputs, all checked before anything is written
    files, any_folder = _expand_inputs(args.inputs)
    jobs = _plan(args, files, any_folder)
    decoded: dict[Path, np.ndarray] = {}  # kept for step 4 while they fit, so small runs read each file once
    budget = KEEP_DECODED_BYTES
    for job in jobs:
        array = read_image_raw(job.source)
        if not args.sweep:
            check_writable_as(array.shape, job.target)
        if array.nbytes <= budget:
            decoded[job.source] = array
            budget -= array.nbytes

    # 3. the model and the condition
    restorer = load_restorer(args.model, args.gan, device, args.precision, estimator=args.estimator)
    names = restorer.codec.names
    unknown = sorted(asked_auto - set(names))
    if unknown:
        raise CliError(
            f"--{unknown[0]} auto: this model has no {unknown[0]} slider; its factors are {list(names)}"
        )
    auto = (set(names) - set(fixed)) if args.auto else asked_auto
    lacking = [name for name in fixed if name not in names]
    if lacking:
        name = lacking[0]
        raise CliError(f"this model has no {name} slider: it conditions on {list(names)}, not on {name}")
    given = {name: fixed.get(name) for name in names}
    z = restorer.z_for(z=args.z, **given) if args.z is not None or not auto else None
    maps, map_levels = _read_maps(restorer, map_files)
    given.update({name: level for name, level in map_levels.items() if given.get(name) is None})

    # 4. restore and write (each file atomically)
    for job in jobs:
        array = decoded.pop(job.source, None)
        if array is None:
            array = read_image_raw(job.source)
        if (note := restorer.channel_note(array)) is not None:
            print(f"{job.source}: {note}")
        if z is None:  # levels estimated from this image
            estimates = restorer.estimate(array, source=job.source, factors=auto)
            print(f"{job.source}: estimated " + "; ".join(str(estimates[n]) for n in names if n in auto))
            levels = {n: estimates[n].value or 0.0 for n in auto}
        try:
            job_z = z if z is not None else restorer.z_for(levels=levels, **given)
            job_z = _with_maps(restorer, job, array, job_z, maps)
            _restore_job(restorer, job, array, job_z, args)
        except torch.cuda.OutOfMemoryError:  # the CPU allocator raises plain RuntimeError
            size = "x".join(str(n) for n in array.shape[:2])
            hint = "use a smaller --tile" if args.tile else "use --tile 512 (or smaller)"
            raise CliError(f"out of memory restoring '{job.source}' ({size}) on {device}; {hint}") from None
        print(f"wrote {job.target}")


def _map_arguments(args: argparse.Namespace) -> dict[str, Path | str]:
    """``--map FACTOR=FILE`` entries (and ``--z-map``, as the key ``*``) by factor name, checked for form."""
    files: dict[str, Path | str] = {}
    for entry in args.map:
        name, sep, file = entry.partition("=")
        if not sep or not name or not file:
            raise CliError(f"--map takes FACTOR=FILE (e.g. noise=noise.png), got '{entry}'")
        if name in files:
            raise CliError(f"--map {name}= is given twice")
        if name in FACTORS and getattr(args, name) is not None:
            raise CliError(f"--{name} and --map {name}= both set the {name} level; give one")
        files[name] = file if file == "auto" else Path(file)
    if args.z_map is not None:
        files["*"] = args.z_map
    return files


def _read_maps(
    restorer: Restorer, files: dict[str, Path | str]
) -> tuple[dict[str, object], dict[str, float]]:
    """The maps read and checked (values, factors) before anything is written; ``auto`` stays a marker."""
    codec, maps, levels = restorer.codec, {}, {}
    auto = [name for name, file in files.items() if file == "auto"]
    if auto and restorer.estimator is None:  # checked before any file is written
        raise CliError(
            f"--map {auto[0]}=auto needs a learned level estimator for this model's factors {list(codec.names)}, "
            "and the zoo has none; give --estimator FILE or a map file"
        )
    try:
        if "*" in files:
            maps, levels = read_z_map(files["*"], codec)
        for name, file in files.items():
            if name != "*":
                maps[name] = file if file == "auto" else read_level_map(file, codec, name)
        for name, level in maps.items():  # factor and values checked at the map's own size
            shape = (1, 1) if isinstance(level, str) else level.shape
            check_maps(
                codec, {name: 0.0 if isinstance(level, str) else level}, torch.zeros(1, codec.cond_dim), shape
            )
    except MapError as err:
        raise CliError(str(err)) from None
    return maps, levels


def _with_maps(
    restorer: Restorer, job: _Job, array: np.ndarray, z: Tensor, maps: dict[str, object]
) -> Tensor:
    if not maps:
        return z
    if any(isinstance(level, str) for level in maps.values()):
        estimated = restorer.estimate_maps(array)
        missing = [name for name, level in maps.items() if level == "auto" and name not in estimated]
        if missing:  # no learned estimator, or an image under its 16-pixel minimum: never a silent level 0
            raise CliError(
                f"--map {missing[0]}=auto: no estimated map for '{job.source}' (the model has no learned level "
                "estimator, or the image is under 16 pixels on a side); give a map file or --estimator FILE"
            )
        maps = {name: estimated[name] if level == "auto" else level for name, level in maps.items()}
    z, notes = check_maps(restorer.codec, maps, z, array.shape[:2])
    for note in notes:
        print(f"{job.source}: {note}")
    return z


def _restore_job(
    restorer: Restorer, job: _Job, array: np.ndarray, z: Tensor, args: argparse.Namespace
) -> None:
    if args.sweep:
        rgb, _, gray = split_channels(array)
        lq = model_input(rgb, gray, restorer.channels)

        def restore(x: Tensor, zs: Tensor, alpha: float | None) -> Tensor:
            return restorer.restore_tensor(x, zs, alpha, args.tile, args.tile_overlap)

        rows = slider_rows(restore, lq, z, restorer.codec, with_alpha=restorer.blender is not None)
        save_png(render_rows(rows), job.target)
    else:
        restored = restorer.restore_array(array, z, args.alpha, args.tile, args.tile_overlap)
        write_image(restored, job.target)


def main(argv: Sequence[str] | None = None) -> int:
    """``cugan-restore INPUT... -o OUT --model X.ckpt ...``; returns the exit status."""
    return run_cli(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
