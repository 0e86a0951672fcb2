"""Image files in and out, and the array layouts between them: the one place that knows bit depths and alpha.

- reading: any PNG / JPEG / BMP / TIFF as stored (uint8 or uint16; gray, gray + alpha, RGB, RGBA), or as float
  RGB in [0, 1] for training (:func:`read_image_raw`, :func:`read_image_array`, :func:`read_image`);
- writing: :func:`write_image`, atomically, 16-bit PNG and TIFF kept at 16 bits (PNG through imagecodecs'
  libpng, TIFF through tifffile), alpha kept where the format can store it;
- layouts: an image of any layout to float RGB plus its alpha channel and back (:func:`split_channels`,
  :func:`merge_channels`), PIL images to arrays and back (:func:`pil_to_array`, :func:`array_to_pil`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_write

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and the reason."""


def list_images(folder: str | Path, *, config_key: str | None = None) -> list[Path]:
    """The image files directly inside ``folder`` (not its subfolders), sorted for a reproducible order.

    Subfolders are ignored on purpose: benchmark folders often keep noisy or downscaled copies in them.

    ``config_key`` names the setting that gave the folder, so that the error says what to change.
    """
    where = f" (set `{config_key}`)" if config_key else ""
    if folder is None or str(folder) in ("", "None", "???"):
        raise FileNotFoundError(f"no image folder given{where}")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist{where}")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
        raise ImageReadError(f"cannot read image '{path}': {' '.join(str(err).split())}") from None
    array = image.permute(1, 2, 0).numpy()
    return np.ascontiguousarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _read_tiff(path: Path) -> np.ndarray | None:
    """A TIFF as stored (8 / 16 bit, gray / RGB / with alpha) or None when tifffile cannot decode it."""
    import tifffile

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


def read_image_raw(path: str | Path) -> np.ndarray:
    """Read an image file as stored: uint8 or uint16, ``(H, W)`` gray, ``(H, W, 2)`` gray + alpha,
    ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA. 16-bit colour PNG and TIFF keep all 16 bits.

    Raises :class:`ImageReadError` naming the file and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"cannot read image '{path}': no such file")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        array = _read_tiff(path)
        if array is not None:
            return array
    if suffix == ".png" and _png_bit_depth(path) == 16:
        return _read_png16(path)
    try:
        return np.ascontiguousarray(_read_with_pil(path))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ImageReadError(f"cannot read image '{path}': {err}") from None


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
        array = np.round(array / 257.0).astype(np.uint8)
    if fmt == "TIFF":
        return atomic_write(path, lambda tmp: _write_tiff(array, tmp))
    if fmt == "PNG" and array.dtype == np.uint16:
        return atomic_write(path, lambda tmp: _write_png16(array, tmp))
    options = {"quality": 95} if fmt == "JPEG" else {}
    return atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format=fmt, **options))


# ------------------------------------------------------------------------------------------------------ layouts


def split_channels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """``(H, W)`` or ``(H, W, 1|2|3|4)`` (uint8, uint16 or float in [0, 1]) -> float32 RGB ``(H, W, 3)`` in
    [0, 1], the alpha channel (None without one) and whether the image is gray (its value repeated)."""
    if array.dtype == bool or not (
        array.dtype in (np.uint8, np.uint16) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(f"image arrays must be uint8, uint16 or float in [0, 1], got dtype {array.dtype}")
    if array.ndim == 2:
        color, alpha = array[:, :, None], None
    elif array.ndim == 3 and array.shape[2] in (1, 2, 3, 4):
        channels = array.shape[2]
        color = array[:, :, : 1 if channels <= 2 else 3]
        alpha = array[:, :, channels - 1] if channels in (2, 4) else None
    else:
        raise ValueError(
            f"unsupported image shape {array.shape}; expected (H, W) or (H, W, C) with C in 1, 2, 3, 4"
        )
    if min(array.shape[:2]) < 1:
        raise ValueError(f"image is empty: shape {array.shape}")
    gray = color.shape[2] == 1
    rgb = to_float(np.repeat(color, 3, axis=2) if gray else color)
    return np.ascontiguousarray(rgb, dtype=np.float32), alpha, gray


def from_float(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float values in [0, 1] (clipped) to ``dtype``: rounded to 8 or 16 bits, or kept as floats."""
    values = np.clip(values, 0.0, 1.0)
    if dtype == np.uint8:
        return np.round(values * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(values * 65535.0).astype(np.uint16)
    return values.astype(dtype)


def merge_channels(rgb: np.ndarray, alpha: np.ndarray | None, gray: bool, template: np.ndarray) -> np.ndarray:
    """Float RGB ``(H, W, 3)`` back to ``template``'s layout and dtype, with ``alpha`` put back untouched."""
    # Gray: the three outputs differ only by what the network does to a neutral input; their mean is the
    # least-squares gray value.
    color = from_float(rgb.mean(axis=2, keepdims=True) if gray else rgb, template.dtype)
    if template.ndim == 2:
        return color[:, :, 0]
    if alpha is not None:
        return np.concatenate([color, alpha[:, :, None].astype(template.dtype)], axis=2)
    return color


_PIL_DIRECT = ("RGB", "RGBA", "L", "LA")


def pil_to_array(image: Image.Image) -> tuple[np.ndarray, str]:
    """A PIL image as an array plus the mode to give the result (the input's, where PIL can store it)."""
    mode = image.mode
    if mode in _PIL_DIRECT:
        return np.asarray(image), mode
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16), "I;16"
    if mode == "I":
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16), "I"
    if mode == "F":
        return np.asarray(image, dtype=np.float32), "F"
    if mode == "1":
        return np.asarray(image.convert("L")), "L"
    if mode in ("PA", "La") or "transparency" in image.info:
        return np.asarray(image.convert("RGBA")), "RGBA"
    return np.asarray(image.convert("RGB")), "RGB"


def array_to_pil(array: np.ndarray, mode: str) -> Image.Image:
    """Inverse of :func:`pil_to_array` for a result of the same layout."""
    if mode == "I":
        return Image.fromarray(array.astype(np.int32))
    return Image.fromarray(array)
