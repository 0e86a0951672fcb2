"""Image files in and out: the readers and writers that know bit depths and alpha.

- reading: any PNG / JPEG / BMP / TIFF as stored (uint8 or uint16; gray, gray + alpha, RGB, RGBA), or as float
  RGB in [0, 1] for training (:func:`read_image_raw`, :func:`read_image_array`, :func:`read_image`);
- writing: :func:`write_image`, atomically, 16-bit PNG and TIFF kept at 16 bits (PNG through imagecodecs'
  libpng, TIFF through tifffile), alpha kept where the format can store it;
- conversions for display and 8-bit files: :func:`to_float`, :func:`to_uint8`, :func:`tensor_to_uint8` (the
  one place images change bit depth);
- array layouts (float RGB and back, PIL images) are in :mod:`.layouts`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_write

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and the reason."""


def list_images(folder: str | Path, *, config_key: str | None = None) -> list[Path]:
    """The entries with an image extension directly inside ``folder`` (not inside its subfolders), sorted for a
    reproducible order. Broken links are listed too, so that whoever reads the folder names them.

    Subfolders are not searched on purpose: benchmark folders often keep noisy or downscaled copies in them.

    ``config_key`` names the setting that gave the folder, so that the error says what to change.
    """
    where = f" (set `{config_key}`)" if config_key else ""
    if folder is None or str(folder) in ("", "None", "???"):
        raise FileNotFoundError(f"no image folder given{where}")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist{where}")
    files = sorted(
        p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and (p.is_file() or p.is_symlink())
    )
    if not files:
        raise FileNotFoundError(
            f"image folder '{root}' holds no images ({', '.join(IMAGE_EXTENSIONS)}){where}"
        )
    return files


def to_rgb_array(image: np.ndarray) -> np.ndarray:
    """Any image array to ``(H, W, 3)`` keeping its integer type: gray is repeated, alpha is dropped.

    Boolean and float arrays are converted to uint8 / float32 respectively.
    """
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 2:  # gray + alpha
        array = np.repeat(array[:, :, :1], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f"unsupported image shape {np.shape(image)}; expected (H, W), (H, W, 3) or (H, W, 4)"
        )
    return np.ascontiguousarray(array)


def to_float(array: np.ndarray) -> np.ndarray:
    """Integer or float image array to float32 in [0, 1] (uint16 is scaled by 65535)."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(array.astype(np.float32) / 255.0, 0.0, 1.0)
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """An image array for an 8-bit display or file: uint16 rounded to 8 bits (``/ 257``), floats in [0, 1]
    clipped, scaled and rounded, uint8 unchanged; the layout (gray, alpha) is kept."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return np.round(array / 257.0).astype(np.uint8)
    return np.round(np.clip(np.asarray(array, dtype=np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def tensor_to_uint8(image: torch.Tensor) -> np.ndarray:
    """A ``(3, H, W)`` (or gray ``(1, H, W)``, repeated) float tensor in [0, 1] (clamped) to a uint8 ``(H, W, 3)``
    array, rounded as the evaluation rounds outputs."""
    image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    return image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    with open(path, "rb") as handle:
        head = handle.read(24)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return head[24]


def _read_png16(path: Path) -> np.ndarray:
    """A 16-bit PNG of any colour type, bit-exact (PIL keeps only the high bytes of 16-bit colour PNGs)."""
    import torch
    from torchvision.io import ImageReadMode, decode_png

    try:
        data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
        image = decode_png(data, mode=ImageReadMode.UNCHANGED)
    except RuntimeError as err:
        raise ImageReadError(
            f"cannot read image '{path}': {' '.join(str(err).split())} (truncated or corrupt)"
        ) from None
    array = image.permute(1, 2, 0).numpy()
    return np.ascontiguousarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _read_tiff(path: Path) -> np.ndarray | None:
    """A TIFF as stored (8 / 16 bit, gray / RGB / with alpha) or None when tifffile cannot decode it."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            shape = tiff.pages[0].shape
    except Exception:  # not a TIFF tifffile can parse: let PIL try (and name the problem)
        return None
    height, width = (
        (shape[1], shape[2]) if len(shape) == 3 and shape[0] in (1, 2, 3, 4) and shape[2] > 4 else shape[:2]
    )
    _check_pixels(path, int(width), int(height))  # before anything is allocated
    try:
        array = tifffile.imread(path, key=0)
    except Exception:  # compressions tifffile needs extra codecs for: let PIL try
        return None
    if array.dtype not in (np.uint8, np.uint16):
        return None
    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[2] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, 2)  # planar (C, H, W) storage
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (2, 3, 4)):
        return np.ascontiguousarray(array)
    return None


def _read_with_pil(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        img.load()
        mode = img.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            return np.clip(np.asarray(img).astype(np.int64), 0, 65535).astype(np.uint16)
        if mode == "F":
            return (np.clip(np.asarray(img), 0.0, 1.0) * 65535).round().astype(np.uint16)
        if mode in ("L", "LA", "RGB", "RGBA"):
            return np.asarray(img)
        if mode == "La":
            return np.asarray(img.convert("LA"))
        if mode == "1":
            return np.asarray(img.convert("L"))
        if mode in ("PA", "RGBa") or (mode == "P" and "transparency" in img.info):
            return np.asarray(img.convert("RGBA"))
        return np.asarray(img.convert("RGB"))  # P, CMYK, YCbCr, LAB, HSV


def max_image_pixels() -> int:
    """The most pixels an image may claim: Pillow's decompression-bomb limit (twice its warning threshold,
    about 179 million; an 8K photograph has 33 million)."""
    return 2 * int(Image.MAX_IMAGE_PIXELS or 89478485)


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot be an image before it is even opened (None when it might be one)."""
    if path.is_symlink() and not path.exists():
        return f"broken symbolic link (to {os.readlink(path)})"
    if path.is_dir():
        return "a folder, not an image file"
    if not path.exists():
        return "no such file"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    return None


def _check_pixels(path: Path, width: int, height: int) -> None:
    if width * height > max_image_pixels():
        raise ImageReadError(
            f"cannot read image '{path}': it claims {width}x{height} pixels, more than the {max_image_pixels()} "
            "this reader accepts (a decompression bomb?)"
        )


def image_header(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the file's header, without decoding pixels; Pillow's ``verify`` also checks
    the file's structure (PNG: every chunk's checksum). Raises :class:`ImageReadError` naming the reason."""
    path = Path(path)
    if (problem := _problem(path)) is not None:
        raise ImageReadError(f"cannot read image '{path}': {problem}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                size = img.size
                img.verify()
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for broken files
        raise ImageReadError(f"cannot read image '{path}': {_reason(err)}") from None
    _check_pixels(path, *size)
    return size


def _reason(err: BaseException) -> str:
    if isinstance(err, Image.DecompressionBombError):
        return (
            f"it claims more pixels than the {max_image_pixels()} this reader accepts (a decompression bomb?)"
        )
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, UnidentifiedImageError):
        return "not an image (no known image format)"
    return " ".join(str(err).split()) or type(err).__name__


def read_image_raw(path: str | Path) -> np.ndarray:
    """Read an image file as stored: uint8 or uint16, ``(H, W)`` gray, ``(H, W, 2)`` gray + alpha,
    ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA. 16-bit colour PNG and TIFF keep all 16 bits.

    Raises :class:`ImageReadError` naming the file and the reason (empty, truncated, not an image, a broken
    link, unreadable, or claiming more pixels than :func:`max_image_pixels`).
    """
    path = Path(path)
    if (problem := _problem(path)) is not None:
        raise ImageReadError(f"cannot read image '{path}': {problem}")
    try:
        suffix = path.suffix.lower()
        if suffix in (".tif", ".tiff"):
            array = _read_tiff(path)
            if array is not None:
                return array
        if suffix == ".png" and _png_bit_depth(path) == 16:
            _check_pixels(path, *_png_size(path))
            return _read_png16(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return np.ascontiguousarray(_read_with_pil(path))
    except ImageReadError:
        raise
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for broken files
        raise ImageReadError(f"cannot read image '{path}': {_reason(err)}") from None


def read_image_array(path: str | Path, *, keep_alpha: bool = False) -> np.ndarray:
    """Read an image file as an integer array ``(H, W, C)`` at its own bit depth (uint8 or uint16).

    The result is RGB; with ``keep_alpha`` an image with an alpha channel comes back RGBA.
    """
    array = read_image_raw(path)
    if keep_alpha and array.ndim == 3 and array.shape[2] in (2, 4):
        if array.shape[2] == 2:  # gray + alpha
            array = np.concatenate([np.repeat(array[:, :, :1], 3, axis=2), array[:, :, 1:]], axis=2)
        return np.ascontiguousarray(array)
    return to_rgb_array(array)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 RGB ``(H, W, 3)`` in [0, 1]."""
    return to_float(read_image_array(path))


# ------------------------------------------------------------------------------------------------------ writing

OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
"""Output file extensions and the format each is written in."""


def output_format(path: str | Path) -> str:
    """The format ``path``'s extension asks for ("PNG", "JPEG", "BMP", "TIFF"); ValueError for any other."""
    path = Path(path)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"unsupported output extension '{path.suffix}' for '{path}'; use {', '.join(OUTPUT_FORMATS)}"
        )
    return fmt


def check_writable_as(shape: tuple[int, ...], path: str | Path) -> None:
    """Refuse, before anything is written, an image layout that ``path``'s format cannot store (alpha in
    JPEG / BMP) and an unsupported extension."""
    fmt = output_format(path)
    if len(shape) == 3 and shape[2] in (2, 4) and fmt in ("JPEG", "BMP"):
        raise ValueError(f"'{path}': {fmt} cannot store the alpha channel of the input; write .png or .tif")


def _write_tiff(array: np.ndarray, tmp: Path) -> None:
    import tifffile

    photometric = "minisblack" if array.ndim == 2 or array.shape[2] == 2 else "rgb"
    extrasamples = ["unassalpha"] if array.ndim == 3 and array.shape[2] in (2, 4) else None
    with open(tmp, "wb") as handle:
        tifffile.imwrite(handle, array, photometric=photometric, extrasamples=extrasamples)


def _write_png16(array: np.ndarray, tmp: Path) -> None:
    # PIL cannot write 16-bit colour PNGs; libpng (through imagecodecs) writes every 16-bit layout
    import imagecodecs

    tmp.write_bytes(imagecodecs.png_encode(np.ascontiguousarray(array)))


def write_image(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 / uint16 image (layouts as :func:`read_image_raw`) atomically, format from the extension.

    16-bit data stays 16-bit in PNG and TIFF; JPEG (quality 95) and BMP get 8 bits.
    """
    path = Path(path)
    fmt = output_format(path)
    check_writable_as(array.shape, path)
    if array.dtype == np.uint16 and fmt in ("JPEG", "BMP"):
        array = to_uint8(array)
    if fmt == "TIFF":
        return atomic_write(path, lambda tmp: _write_tiff(array, tmp))
    if fmt == "PNG" and array.dtype == np.uint16:
        return atomic_write(path, lambda tmp: _write_png16(array, tmp))
    options = {"quality": 95} if fmt == "JPEG" else {}
    return atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format=fmt, **options))
