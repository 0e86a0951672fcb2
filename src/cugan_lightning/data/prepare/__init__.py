"""Preparing the data sets the paper uses: download (resumable), verify, extract, and for DIV2K cut sub-images.

``cugan-prepare {div2k,cbsd68,live1,...} --root data/`` leaves, under ``--root``, the layout
the ``data=div2k`` / ``cbsd68`` / ``live1`` / ... configs read (``paths.data_dir`` is ``data/`` by default)::

    DIV2K/DIV2K_train_HR/      800 images     DIV2K/DIV2K_train_HR_sub/   480x480 crops, step 240 (training)
    DIV2K/DIV2K_valid_HR/      100 images     CBSD68/original_png/        68 images
    LIVE1/                     29 images (the reference images of LIVE IQA release 2)
    BSD68/  68 gray images     Train400/  400 gray 180x180 images     Set12/  12 gray images

A data set is built in a hidden staging folder and renamed into place only when it is complete, with a
``.prepared.json`` record; running the tool again checks that record and the image counts and returns.
Archives are downloaded to ``<root>/.downloads/`` (a ``.part`` file resumes with an HTTP range request) and
verified: by the published SHA-256 where a source publishes one, else by size (where published) and by reading
the whole archive; the tool says which. A file that fails is deleted, with the command to run again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import IMAGE_EXTENSIONS, read_image_raw

__all__ = ["DATASETS", "Archive", "DatasetSpec", "PrepareError", "prepare", "subimage_starts"]

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 60.0
RECORD = ".prepared.json"


class PrepareError(OSError):
    """A data set could not be prepared; the message says what happened and what to do."""


@dataclass(frozen=True)
class Archive:
    """One downloadable file. ``sha256`` and ``size`` are filled only from a published source (named in a
    comment beside the table); empty, the tool checks what it can and says so."""

    file_name: str
    url: str
    sha256: str = ""
    size: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: its archives, its folder under the root, and the image folders it must end up with.

    ``folders`` maps a folder name (relative to the data set's folder, ``""`` for the folder itself) to the
    name of the folder inside the archives that holds its images and their expected number.
    """

    name: str
    folder: str
    archives: tuple[Archive, ...]
    folders: dict[str, tuple[str, int]]
    subimages: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    """Sub-image folders: ``{new folder: (source folder, crop size, step)}``."""


# Locations, and checksums only as published (each value with its source). Empty: none was found published.
DATASETS: dict[str, DatasetSpec] = {
    "div2k": DatasetSpec(
        "div2k",
        "DIV2K",
        (
            # https://data.vision.ee.ethz.ch/cvl/DIV2K/ (the data set's page, NTIRE 2017). SHA-256 and size as
            # published in tensorflow/datasets, tensorflow_datasets/url_checksums/div2k.txt (lines 1 and 3)
            Archive(
                "DIV2K_train_HR.zip",
                "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
                "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
                3530603713,
            ),
            Archive(
                "DIV2K_valid_HR.zip",
                "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
                "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
                448993893,
            ),
        ),
        {"DIV2K_train_HR": ("DIV2K_train_HR", 800), "DIV2K_valid_HR": ("DIV2K_valid_HR", 100)},
        {"DIV2K_train_HR_sub": ("DIV2K_train_HR", 480, 240)},  # as the authors' data scripts cut them
    ),
    "cbsd68": DatasetSpec(
        "cbsd68",
        "CBSD68",
        # https://github.com/clausmichele/CBSD68-dataset (the colour BSD68 test set as PNG files,
        # CBSD68/original_png/0000.png .. 0067.png); GitHub's archives carry no published checksum
        (
            Archive(
                "CBSD68-dataset-master.zip",
                "https://github.com/clausmichele/CBSD68-dataset/archive/refs/heads/master.zip",
            ),
        ),
        {"original_png": ("original_png", 68)},
    ),
    "live1": DatasetSpec(
        "live1",
        "LIVE1",
        # The official LIVE IQA release 2 (https://live.ece.utexas.edu/research/quality/subjective.htm) is a
        # password-protected zip fetched by hand; restoration codebases (mmagic's LIVE1 guide, KAIR) take the 29
        # reference images from the DnCNN repository's testsets/LIVE1: https://github.com/cszn/DnCNN
        (Archive("DnCNN-master.zip", "https://github.com/cszn/DnCNN/archive/refs/heads/master.zip"),),
        {"": ("LIVE1", 29)},
    ),
    # The gray sets of the DnCNN repository (same archive as live1): BSD68, the 68 gray test images of the
    # Berkeley set (BT.601 luma of CBSD68's photographs); Train400, DnCNN's 400 gray 180x180 training images
    # (Berkeley images other than BSD68's); Set12, 12 classic gray images (none of them Berkeley's), to validate on.
    "bsd68": DatasetSpec(
        "bsd68",
        "BSD68",
        (Archive("DnCNN-master.zip", "https://github.com/cszn/DnCNN/archive/refs/heads/master.zip"),),
        {"": ("BSD68", 68)},
    ),
    "train400": DatasetSpec(
        "train400",
        "Train400",
        (Archive("DnCNN-master.zip", "https://github.com/cszn/DnCNN/archive/refs/heads/master.zip"),),
        {"": ("Train400", 400)},
    ),
    "set12": DatasetSpec(
        "set12",
        "Set12",
        (Archive("DnCNN-master.zip", "https://github.com/cszn/DnCNN/archive/refs/heads/master.zip"),),
        {"": ("testsets/Set12", 12)},  # the training codes' folders hold copies of it
    ),
    "cbsd432": DatasetSpec(
        "cbsd432",
        "CBSD432",
        # The colour Berkeley images other than the 68 of CBSD68 (BSDS500's 500 minus them), the training set of
        # colour denoisers such as CDnCNN, as JPEG files named by BSD image id, from the repository of
        # "Extended SURE" (Dataset/CBSD432): https://github.com/Magauiya/Extended_SURE. Checked here: none of its
        # 432 images is one of CBSD68's or LIVE1's (thumbnails compared in every flip and rotation).
        (
            Archive(
                "Extended_SURE-master.zip",
                "https://github.com/Magauiya/Extended_SURE/archive/refs/heads/master.zip",
            ),
        ),
        {"": ("CBSD432", 432)},
    ),
    "mcmaster": DatasetSpec(
        "mcmaster",
        "McMaster",
        # McMaster18 (18 colour 500x500 crops, TIFF), a validation set that overlaps neither CBSD68 nor LIVE1
        # (Kodak24 would: many LIVE1 images are Kodak photographs), from the FFDNet repository's testsets:
        # https://github.com/cszn/FFDNet
        (Archive("FFDNet-master.zip", "https://github.com/cszn/FFDNet/archive/refs/heads/master.zip"),),
        {"": ("McMaster", 18)},
    ),
}


# ---------------------------------------------------------------------------------------------------- download


def _download(archive: Archive, folder: Path, mirror: str | None, say: Callable[[str], None]) -> Path:
    """The archive in ``folder``, downloaded (or resumed from its ``.part`` file) when it is not there."""
    target = folder / archive.file_name
    if target.is_file():
        return target
    url = f"{mirror.rstrip('/')}/{archive.file_name}" if mirror else archive.url
    part = target.with_name(target.name + ".part")
    folder.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    say(f"downloading {url}" + (f" (resuming at {have} bytes)" if have else ""))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            if have and response.status != 206:  # the server ignored the range: start again
                have = 0
            expected = response.headers.get("Content-Length")
            expected = int(expected) + have if expected is not None else None
            with open(part, "ab" if have else "wb") as handle:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise PrepareError(
            f"the download of {url} was interrupted ({err}); {part.stat().st_size if part.exists() else 0} bytes "
            f"are kept in {part}: run the same command again to resume"
        ) from None
    if expected is not None and part.stat().st_size != expected:
        raise PrepareError(
            f"the download of {url} stopped at {part.stat().st_size} of {expected} bytes; run the same command "
            "again to resume"
        )
    part.replace(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, archive: Archive, say: Callable[[str], None]) -> None:
    """Published SHA-256 where there is one; else size (where published) and a full read of the archive."""

    def fail(reason: str) -> PrepareError:
        path.unlink(missing_ok=True)
        return PrepareError(
            f"{path.name}: {reason}; the file was deleted: run the same command again to fetch it anew"
        )

    if archive.size is not None and path.stat().st_size != archive.size:
        raise fail(f"{path.stat().st_size} bytes where {archive.size} are published")
    if archive.sha256:
        actual = _sha256(path)
        if actual != archive.sha256:
            raise fail(f"SHA-256 {actual} does not match the published {archive.sha256}")
        say(f"{path.name}: SHA-256 matches the published value")
        return
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as handle:
                bad = handle.testzip()
            if bad is not None:
                raise fail(f"the archive member {bad} is corrupt")
        else:
            with tarfile.open(path) as handle:
                for member in handle:
                    if member.isfile():
                        handle.extractfile(member).read()
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise fail(f"not a readable archive ({err})") from None
    checked = "its published size and " if archive.size is not None else ""
    say(f"{path.name}: no published checksum, so {checked}every member of the archive was read back")


# ----------------------------------------------------------------------------------------------- sub-images


def subimage_starts(length: int, crop: int, step: int) -> list[int]:
    """Crop offsets along one side: every ``step`` pixels, plus one flush with the far edge."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, step))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


def _cut(source: Path, target: Path, crop: int, step: int) -> int:
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
        array = read_image_raw(path)
        height, width = array.shape[:2]
        index = 0
        for top in subimage_starts(height, crop, step):
            for left in subimage_starts(width, crop, step):
                index += 1
                tile = np.ascontiguousarray(array[top : top + crop, left : left + crop])
                Image.fromarray(tile).save(target / f"{path.stem}_s{index:03d}.png", compress_level=1)
                count += 1
    return count


# ------------------------------------------------------------------------------------------------- prepare


def _unpack(archive: Path, folder: Path) -> None:
    """Extract with the "data" filter: no member may land outside ``folder`` or be a device or link out."""
    try:
        shutil.unpack_archive(str(archive), str(folder), filter="data")
    except TypeError:  # a Python without extraction filters: zip members are sanitised by zipfile itself
        if not zipfile.is_zipfile(archive):
            raise PrepareError(
                f"{archive.name}: extracting tar archives safely needs Python 3.10.12 or newer"
            ) from None
        shutil.unpack_archive(str(archive), str(folder))


def _images(folder: Path) -> list[Path]:
    return (
        [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if folder.is_dir()
        else []
    )


def _check_counts(spec: DatasetSpec, folder: Path) -> list[str]:
    problems = []
    for name, (_, count) in spec.folders.items():
        found = len(_images(folder / name))
        if found != count:
            problems.append(f"{folder / name} holds {found} images, not {count}")
    return problems


def _find_folder(tree: Path, name: str, count: int) -> Path:
    """The folder called ``name`` (at any depth of the extracted archives, the shallowest where there are
    copies; ``name`` may hold parent folders) holding ``count`` images."""
    matches = [p for p in tree.rglob(name) if p.is_dir() and len(_images(p)) == count]
    if len(matches) > 1:  # copies deeper in the tree (a repository's training codes) give way to the top one
        depth = min(len(p.parts) for p in matches)
        matches = [p for p in matches if len(p.parts) == depth]
    if len(matches) != 1:
        found = {str(p.relative_to(tree)): len(_images(p)) for p in tree.rglob(name) if p.is_dir()}
        raise PrepareError(
            f"the archives hold no single folder '{name}' with {count} images (found: {found or 'none'})"
        )
    return matches[0]


def prepare(
    spec: DatasetSpec,
    root: str | Path,
    *,
    mirror: str | None = None,
    keep_archives: bool = True,
    say: Callable[[str], None] = print,
) -> Path:
    """Prepare ``spec`` under ``root``; returns its folder. See the module docstring."""
    root = Path(root)
    final = root / spec.folder
    record = final / RECORD
    if record.is_file():
        problems = _check_counts(spec, final)
        if problems:
            raise PrepareError(
                f"{final} was prepared but has changed: {'; '.join(problems)}; delete it and run again"
            )
        say(f"{spec.name}: already prepared in {final}")
        return final
    if final.exists():
        raise PrepareError(
            f"{final} exists but was not made by this tool (no {RECORD}); move it away and run again"
        )
    downloads = root / ".downloads"
    archives = []
    for archive in spec.archives:
        path = _download(archive, downloads, mirror, say)
        _verify(path, archive, say)
        archives.append(path)
    for stale in root.glob(f".{spec.folder}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)  # a run killed while extracting
    staging = root / f".{spec.folder}.staging-{os.getpid()}"
    try:
        extracted = staging / ".extracted"
        for path in archives:
            say(f"extracting {path.name}")
            _unpack(path, extracted)
        for name, (inside, count) in spec.folders.items():
            found = _find_folder(extracted, inside, count)
            destination = staging / name if name else staging / ".images"
            shutil.move(str(found), str(destination))
            if not name:  # the images belong in the data set's folder itself
                for image in _images(destination):
                    shutil.move(str(image), str(staging / image.name))
                shutil.rmtree(destination)
        shutil.rmtree(extracted)
        cut = {}
        for name, (source, crop, step) in spec.subimages.items():
            say(f"cutting {source} into {crop}x{crop} sub-images every {step} pixels")
            cut[name] = _cut(staging / source, staging / name, crop, step)
        details = {
            "dataset": spec.name,
            "archives": [{"file": p.name, "bytes": p.stat().st_size, "sha256": _sha256(p)} for p in archives],
            "images": {name or ".": count for name, (_, count) in spec.folders.items()},
            "from": mirror or [archive.url for archive in spec.archives],
            "subimages": cut,
        }
        (staging / RECORD).write_text(json.dumps(details, indent=2) + "\n")
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_archives:
        for path in archives:
            path.unlink(missing_ok=True)
    say(f"{spec.name}: prepared in {final}")
    return final


def dataset_names() -> Sequence[str]:
    return sorted(DATASETS)
